"""Unpaid invoices: one reminder with a fresh invoice, never at night or when not wanted, and
invoices taken out of the chat when they expire or their order is cancelled."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from shop import services as shop_services
from shop.models import Order
from tests.botbridge.test_purchase_flow import ALEX, MASHA, bot_messages, buy

pytestmark = pytest.mark.django_db

# Today's noon (UTC): the invoices below are paid for real, and pre-checkout refuses one older
# than SHOP_INVOICE_TTL (24 h) by the clock, so a fixed date would expire them in a day.
NOON = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def _shop_hours(settings):
    settings.SHOP_TIME_ZONE = "UTC"
    settings.SHOP_QUIET_HOURS = (21, 9)
    settings.SHOP_INVOICE_REMINDER_DELAY = timedelta(hours=2)


@pytest.fixture
def coins(db):
    from tests.factories import ProductFactory

    return ProductFactory(sku="coins", title="500 coins", kind="topup", price=500, currency="USD")


def invoices_in_chat(fake, user) -> list[dict]:
    return [m for m in bot_messages(fake, user["id"]) if "invoice" in m]


def invoiced_at(fake, user, when: datetime) -> Order:
    buy(fake, user, "coins")
    order = Order.objects.filter(customer__telegram_id=user["id"]).latest("pk")
    Order.objects.filter(pk=order.pk).update(created_at=when)
    return order


def remind(now, capture) -> int:
    with capture(execute=True):
        return shop_services.invoices_remind(now=now)


def test_one_reminder_with_a_fresh_invoice_the_old_one_taken_back(
    webhook, fake_telegram, coins, django_capture_on_commit_callbacks
):
    order = invoiced_at(fake_telegram, ALEX, NOON - timedelta(hours=2, minutes=5))
    (old,) = invoices_in_chat(fake_telegram, ALEX)

    assert remind(NOON, django_capture_on_commit_callbacks) == 1
    assert remind(NOON + timedelta(hours=1), django_capture_on_commit_callbacks) == 0

    (fresh,) = invoices_in_chat(fake_telegram, ALEX)
    assert fresh["message_id"] != old["message_id"]
    texts = [m.get("text", "") for m in bot_messages(fake_telegram, ALEX["id"])]
    reminder = next(t for t in texts if "still waiting for payment" in t)
    assert order.reference in reminder and "5.00 USD" in reminder and "/stop_reminders" in reminder
    order.refresh_from_db()
    assert order.reminded_at == NOON
    # The fresh invoice pays the order.
    assert fake_telegram.user_pay(ALEX, fresh["message_id"])["paid"]


def test_never_too_early_at_night_after_stop_reminders_or_after_buying(
    webhook, fake_telegram, coins, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    order = invoiced_at(fake_telegram, ALEX, NOON - timedelta(hours=1))
    assert remind(NOON, capture) == 0  # too early
    assert remind(NOON + timedelta(hours=11, minutes=30), capture) == 0  # 23:30, night
    assert remind(NOON + timedelta(hours=18), capture) == 0  # 06:00, still night
    assert remind(NOON + timedelta(hours=21, minutes=30), capture) == 1  # 09:30, the morning

    # /stop_reminders, answered in the customer's language.
    invoiced_at(fake_telegram, MASHA, NOON - timedelta(hours=3))
    fake_telegram.user_message(MASHA, "/stop_reminders")
    assert "больше не буду напоминать" in bot_messages(fake_telegram, MASHA["id"])[-1]["text"]
    assert remind(NOON, capture) == 0

    # Bought something since: the older invoice is not chased.
    older = invoiced_at(fake_telegram, ALEX, NOON - timedelta(hours=4))
    newer = invoiced_at(fake_telegram, ALEX, NOON - timedelta(hours=3))
    invoice = invoices_in_chat(fake_telegram, ALEX)[-1]
    assert fake_telegram.user_pay(ALEX, invoice["message_id"])["paid"]
    assert Order.objects.get(pk=newer.pk).is_paid
    assert remind(NOON, capture) == 0
    assert Order.objects.get(pk=older.pk).reminded_at is None
    assert order.pk  # the first one was reminded once, above


def test_an_expired_invoice_leaves_the_chat_and_cannot_be_paid(
    webhook, fake_telegram, coins, django_capture_on_commit_callbacks
):
    order = invoiced_at(fake_telegram, ALEX, datetime.now(UTC) - timedelta(hours=25))
    (invoice,) = invoices_in_chat(fake_telegram, ALEX)

    # Before the sweep ran, pre-checkout already refuses it, saying why.
    result = fake_telegram.user_pay(ALEX, invoice["message_id"])
    assert result["pre_checkout"]["ok"] is False
    assert "expired" in result["pre_checkout"]["error_message"]

    with django_capture_on_commit_callbacks(execute=True):
        expired = shop_services.order_expire_stale(older_than=settings.SHOP_INVOICE_TTL)

    assert expired == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED
    assert invoices_in_chat(fake_telegram, ALEX) == []
    deletes = fake_telegram.calls("deleteMessage")
    assert [int(c["params"]["message_id"]) for c in deletes] == [invoice["message_id"]]


def test_a_cancelled_order_takes_its_invoice_back(
    webhook, fake_telegram, coins, django_capture_on_commit_callbacks
):
    order = invoiced_at(fake_telegram, ALEX, NOON)
    with django_capture_on_commit_callbacks(execute=True):
        shop_services.order_cancel(order=order, note="Customer asked")
    assert invoices_in_chat(fake_telegram, ALEX) == []
    assert remind(NOON + timedelta(hours=3), django_capture_on_commit_callbacks) == 0
