"""Unpaid invoices: one reminder with a fresh invoice, and invoices taken back when they lapse.

An order invoiced and not paid after SHOP_INVOICE_REMINDER_DELAY gets one reminder: a short
message and a fresh invoice (the old invoice message is deleted, so only one can be paid).
Never for a customer who asked for none (/stop_reminders), who is blocked or has blocked
the bot, who bought something since, for an order no longer awaiting payment, or during the
shop's quiet hours (SHOP_QUIET_HOURS in SHOP_TIME_ZONE: it waits for the morning). When an
invoice expires or its order is cancelled, its message is deleted from the chat so that it
can no longer be paid (pre-checkout refuses it anyway).
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core import money
from shop import notices, outbox
from shop.models import Customer, Order, OrderEvent
from shop.services.customers import customer_event_add
from shop.services.orders import invoice_retract, order_event_add
from shop.texts import text


def is_quiet(now: datetime) -> bool:
    start, end = settings.SHOP_QUIET_HOURS
    hour = now.astimezone(ZoneInfo(settings.SHOP_TIME_ZONE)).hour
    return (start <= hour or hour < end) if start > end else start <= hour < end


def invoices_due_reminder(*, now: datetime):
    bought_since = Order.objects.filter(
        customer=OuterRef("customer"), paid_at__isnull=False, created_at__gt=OuterRef("created_at")
    )
    return (
        Order.objects.awaiting_payment()
        .filter(
            reminded_at__isnull=True,
            created_at__lte=now - settings.SHOP_INVOICE_REMINDER_DELAY,
            # Not worth it in the invoice's last hour.
            created_at__gt=now - settings.SHOP_INVOICE_TTL + timedelta(hours=1),
            customer__reminders_off_at__isnull=True,
            customer__is_blocked=False,
            customer__has_blocked_bot=False,
        )
        .filter(~Exists(bought_since))
        .order_by("created_at")
    )


def invoices_remind(*, now: datetime | None = None) -> int:
    """Beat, every few minutes: the one reminder for each unpaid invoice that is due."""
    now = now or timezone.now()
    if is_quiet(now):
        return 0
    sent = 0
    for pk in list(invoices_due_reminder(now=now).values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            # Once, however many beats or workers meet here.
            claimed = Order.objects.filter(
                pk=pk, reminded_at__isnull=True, status=Order.Status.INVOICED
            ).update(reminded_at=now)
            if not claimed:
                continue
            order = Order.objects.select_related("customer").get(pk=pk)
            _remind(order, now)
            sent += 1
    return sent


def _remind(order: Order, now: datetime) -> None:
    customer = order.customer
    lang = customer.language
    expires = timezone.localtime(
        order.created_at + settings.SHOP_INVOICE_TTL, ZoneInfo(settings.SHOP_TIME_ZONE)
    )
    invoice_retract(order=order)
    outbox.message_queue(
        customer=customer,
        text=text(
            lang,
            "invoice_reminder",
            reference=order.reference,
            total=money.format_amount(order.total_amount, order.currency, lang),
            expires=f"{expires:%Y-%m-%d %H:%M} ({settings.SHOP_TIME_ZONE})",
        ),
        order=order,
        dedupe_key=f"invoice-reminder:{order.pk}",
    )
    notices.invoice_queue(order=order, dedupe_key=f"invoice:{order.pk}:reminder")
    order_event_add(
        order=order, kind=OrderEvent.Kind.NOTE, message="Reminder sent with a fresh invoice"
    )


@transaction.atomic
def customer_reminders_off(*, customer: Customer) -> Customer:
    """/stop_reminders: no more reminders about unpaid orders (kept in the history once)."""
    now = timezone.now()
    if customer.reminders_off_at is None:
        Customer.objects.filter(pk=customer.pk).update(reminders_off_at=now, updated_at=now)
        customer.reminders_off_at = now
        customer_event_add(
            customer=customer,
            kind="note",
            message="Asked for no reminders about unpaid orders (/stop_reminders)",
        )
    return customer
