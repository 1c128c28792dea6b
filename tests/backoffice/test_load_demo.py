import pytest
from django.core.management import call_command

from payments.models import LedgerEntry, Payment
from shop.models import Order, Product, PromoCode

pytestmark = pytest.mark.django_db

ALL = [s.value for s in Order.Status]
ILLEGAL = [(a, b) for a in ALL for b in ALL if b not in Order.TRANSITIONS[a]]


def test_load_demo_is_idempotent(capsys):
    call_command("load_demo")
    counts = (Product.objects.count(), Order.objects.count(), LedgerEntry.objects.count())
    call_command("load_demo")
    assert (Product.objects.count(), Order.objects.count(), LedgerEntry.objects.count()) == counts
    products = Product.objects.all()
    assert len(products) >= 6
    assert {p.kind for p in products} == {"topup", "digital", "physical", "subscription"}
    assert PromoCode.objects.get(code="DEMO10").percent == 10
    assert {"XTR", "USD", "EUR"} <= {p.currency for p in products}
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {
        "fulfilled",
        "awaiting_shipment",
        "invoiced",
        "cancelled",
        "expired",
        "partially_refunded",
    } <= statuses
    assert "Admin login: admin / admin" in capsys.readouterr().out


def test_load_demo_generates_benchmark_orders_up_to_n():
    call_command("load_demo", orders=120)
    call_command("load_demo", orders=150)
    bench = Order.objects.filter(reference__regex=r"^B[0-9]{7}$")
    assert bench.count() == 150
    assert Payment.objects.filter(order__in=bench).count() == 150
    assert LedgerEntry.objects.filter(order__in=bench, kind="credit").count() == 150


def test_load_demo_refuses_production_settings_unless_told(settings):
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError

    settings.IS_PRODUCTION = True
    with pytest.raises(CommandError, match="Refusing to load demo data under production"):
        call_command("load_demo")
    assert not get_user_model().objects.filter(username="admin").exists()
    call_command("load_demo", "--allow-production")
    assert get_user_model().objects.filter(username="admin").exists()


def test_no_demo_message_stays_queued():
    from shop.models import Message

    call_command("load_demo")
    outbound = Message.objects.filter(direction="out")
    assert outbound.exists()
    assert not outbound.filter(status="queued").exists()
    assert outbound.filter(dedupe_key__startswith="receipt:", status="sent").exists()
