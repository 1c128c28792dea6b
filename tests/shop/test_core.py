import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.errors import DomainError, IllegalTransition
from shop import services
from shop.models import Order, OrderEvent, Product
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

ALL = [s.value for s in Order.Status]
ILLEGAL = [(a, b) for a in ALL for b in ALL if b not in Order.TRANSITIONS[a]]


def order_in(status, customer=None, product=None):
    order = services.order_create(
        customer=customer or CustomerFactory(), product=product or ProductFactory()
    )
    Order.objects.filter(pk=order.pk).update(status=status)
    order.refresh_from_db()
    return order


@pytest.mark.parametrize(("from_status", "to_status"), ILLEGAL)
def test_illegal_transition_is_refused_and_changes_nothing(from_status, to_status):
    order = order_in(from_status)
    events = OrderEvent.objects.count()
    with pytest.raises(IllegalTransition):
        services.order_transition(order=order, to_status=to_status)
    order.refresh_from_db()
    assert order.status == from_status
    assert OrderEvent.objects.count() == events


def test_legal_transition_writes_an_audit_event_with_its_actor(support_user):
    order = order_in("invoiced")
    services.order_transition(
        order=order, to_status="paid", actor=support_user, message="Paid by hand"
    )
    event = order.events.last()
    assert (event.from_status, event.to_status, event.actor, event.source, event.message) == (
        "invoiced",
        "paid",
        support_user,
        "staff",
        "Paid by hand",
    )
    order.refresh_from_db()
    assert order.paid_at is not None


def test_every_status_has_a_transition_row():
    assert set(Order.TRANSITIONS) == set(ALL)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "x" * 33, "at most 32"),
        ("title", "", "cannot be blank"),
        ("description", "x" * 256, "at most 255"),
        ("price", 50, "from 1.00 USD"),
        ("currency", "ABC", "not a valid choice"),
    ],
)
def test_product_validation_follows_telegram_invoice_limits(field, value, message):
    product = Product(sku="p", title="T", description="D", kind="topup", price=500, currency="USD")
    setattr(product, field, value)
    with pytest.raises(ValidationError) as error:
        product.full_clean()
    assert message in str(error.value)


def test_physical_goods_cannot_be_sold_for_stars():
    product = Product(
        sku="p", title="T", description="D", kind="physical", price=50, currency="XTR"
    )
    with pytest.raises(ValidationError, match="digital goods"):
        product.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        product.save()


def test_order_create_snapshots_price_and_refuses_inactive_or_blocked():
    product = ProductFactory(price=700, currency="EUR")
    order = services.order_create(customer=CustomerFactory(), product=product)
    product.price = 900
    product.save()
    item = order.items.get()
    assert (item.unit_price, order.total_amount, order.currency, len(order.reference)) == (
        700,
        700,
        "EUR",
        8,
    )

    product.is_active = False
    product.save()
    with pytest.raises(DomainError):
        services.order_create(customer=CustomerFactory(), product=product)
    with pytest.raises(DomainError):
        services.order_create(customer=CustomerFactory(is_blocked=True), product=ProductFactory())
    assert Order.objects.count() == 1


def test_stock_reservation_never_oversells():
    product = ProductFactory(stock=1)
    first = order_in("invoiced", product=product)
    second = order_in("invoiced", product=product)
    assert services.order_reserve_stock(order=first) is True
    assert services.order_reserve_stock(order=second) is False
    product.refresh_from_db()
    assert product.stock == 0
    services.order_release_stock(order=first)
    product.refresh_from_db()
    assert product.stock == 1


def test_stale_invoices_expire_and_release_stock():
    from datetime import timedelta

    from django.utils import timezone

    product = ProductFactory(stock=5)
    order = order_in("invoiced", product=product)
    services.order_reserve_stock(order=order)
    assert services.order_expire_stale(older_than=timedelta(hours=1)) == 0
    assert (
        services.order_expire_stale(
            older_than=timedelta(hours=1), now=timezone.now() + timedelta(hours=2)
        )
        == 1
    )
    order.refresh_from_db()
    product.refresh_from_db()
    assert (order.status, product.stock) == ("expired", 5)
