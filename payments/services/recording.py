"""Recording what Telegram reports as paid: once per charge id, matched to its order."""

import logging
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import money
from core.errors import DomainError
from payments.models import ChargeConflict, Payment
from shop import alerts, publish
from shop import services as shop_services
from shop.models import Customer, Order, OrderEvent, PaymentMode

CREDIT_TASK = "payments.payment_credit"

logger = logging.getLogger(__name__)


class Recurring(NamedTuple):
    """A Stars subscription's payment: the first one, or a renewal; and until when it runs."""

    first: bool
    expires_at: datetime


def _review_reason(*, order: Order | None, customer: Customer, amount: int, currency: str) -> str:
    if not money.is_known_currency(currency):
        return Payment.Review.UNKNOWN_CURRENCY
    if order is None or order.customer_id != customer.pk:
        return Payment.Review.UNMATCHED
    if order.is_paid:
        return Payment.Review.OVERPAYMENT
    if (amount, currency) != (order.total_amount, order.currency):
        return Payment.Review.AMOUNT_MISMATCH
    if not order.is_awaiting_payment:
        return Payment.Review.ORDER_CLOSED
    return Payment.Review.NONE


def payment_record(
    *,
    customer: Customer,
    order: Order | None,
    telegram_payment_charge_id: str,
    provider_payment_charge_id: str,
    amount: int,
    currency: str,
    raw: dict[str, Any],
    shipping_address: dict[str, Any] | None = None,
    mode: str = PaymentMode.LIVE,
    recurring: Recurring | None = None,
) -> tuple[Payment, bool]:
    """Record money Telegram reports as paid, once per charge id: (payment, created).

    A payment that matches its order moves it to paid and hands crediting to the worker.
    Anything else (no such order, another amount, a second payment) is kept and flagged
    for staff, and nothing is credited. A subscription's renewal (`recurring`, not first) is
    recorded against a new renewal order of the subscription the payload names.
    """
    existing = Payment.objects.filter(telegram_payment_charge_id=telegram_payment_charge_id).first()
    if existing:
        _repeat_or_conflict(existing, amount=amount, currency=currency, raw=raw)
        return existing, False
    try:
        with transaction.atomic():
            if order is not None and recurring is not None and not recurring.first:
                order = shop_services.subscription_renewal_order(order=order)
            if order is not None:
                # Serialises two different payments for the same order.
                order = Order.objects.select_for_update().get(pk=order.pk)
            review = _review_reason(
                order=order, customer=customer, amount=amount, currency=currency
            )
            payment = Payment.objects.create(
                order=order,
                customer=customer,
                telegram_payment_charge_id=telegram_payment_charge_id,
                provider_payment_charge_id=provider_payment_charge_id or "",
                provider=Payment.Provider.STARS
                if currency == money.STARS
                else Payment.Provider.APAY,
                amount=amount,
                currency=currency,
                # What the invoice was sent with wins over what the bot is configured with now.
                mode=(order.payment_mode if order is not None else "") or mode,
                review_reason=review,
                promo_code=order.promo_code.code
                if order is not None and order.promo_code_id
                else "",
                discount_amount=order.discount_amount if order is not None else 0,
                is_recurring=recurring is not None and not recurring.first,
                paid_at=timezone.now(),
                raw=raw,
            )
            if order is not None:
                _apply_payment_to_order(
                    payment=payment,
                    order=order,
                    shipping_address=shipping_address,
                    recurring=recurring,
                )
            elif payment.needs_review:
                _alert_review(payment)
    except IntegrityError:
        # The same charge delivered twice at once: the other delivery recorded it.
        existing = Payment.objects.filter(
            telegram_payment_charge_id=telegram_payment_charge_id
        ).first()
        if existing is None:
            raise
        _repeat_or_conflict(existing, amount=amount, currency=currency, raw=raw)
        return existing, False
    return payment, True


def _alert_review(payment: Payment) -> None:
    alerts.staff_alert(
        key=f"payment:{payment.pk}:review",
        text=f"Payment {payment} held for review: {payment.get_review_reason_display()}.",
        path=f"/admin/payments/payment/{payment.pk}/change/",
    )


def _repeat_or_conflict(
    existing: Payment, *, amount: int, currency: str, raw: dict[str, Any]
) -> ChargeConflict | None:
    """The same charge id again: a true repeat is ignored; other figures are kept for review.

    Telegram never reuses a charge id for another payment, so a second report of it with
    another payload, amount or currency is a problem for a person, not a redelivery.
    """
    payload = str(raw.get("invoice_payload", ""))[:255]
    known = (existing.amount, existing.currency, str(existing.raw.get("invoice_payload", "")))
    if (amount, currency, payload) == known:
        return None
    conflict, created = ChargeConflict.objects.get_or_create(
        telegram_payment_charge_id=existing.telegram_payment_charge_id,
        amount=amount,
        currency=currency[:8],
        invoice_payload=payload,
        defaults={"payment": existing, "raw": raw},
    )
    if created:
        logger.warning(
            "Charge %s reported again with other figures; held for review",
            existing.telegram_payment_charge_id,
        )
    return conflict


def _apply_payment_to_order(
    *,
    payment: Payment,
    order: Order,
    shipping_address: dict[str, Any] | None,
    recurring: Recurring | None = None,
) -> None:
    shown = money.format_amount(payment.amount, payment.currency)
    data = {"payment_id": payment.pk, "charge_id": payment.telegram_payment_charge_id}
    shop_services.order_event_add(
        order=order, kind=OrderEvent.Kind.PAYMENT, message=f"Paid {shown}", data=data
    )
    if payment.needs_review:
        shop_services.order_flag_for_review(
            order=order, reason=f"Payment {shown}: {payment.get_review_reason_display()}", data=data
        )
        _alert_review(payment)
        return
    if shipping_address:
        shop_services.order_set_shipping_address(order=order, address=shipping_address)
    if not order.stock_reserved and not shop_services.order_reserve_stock(order=order):
        shop_services.order_flag_for_review(
            order=order, reason="Paid, but the stock ran out before payment"
        )
    shop_services.order_promo_use(order=order)
    shop_services.order_transition(order=order, to_status=Order.Status.PAID, source="customer")
    if recurring is not None:
        _subscription_paid(payment=payment, order=order, recurring=recurring)
    # Lost with the broker? payments.credit_sweep credits it within minutes.
    publish.publish_on_commit(CREDIT_TASK, [(payment.pk,)])


def _subscription_paid(*, payment: Payment, order: Order, recurring: Recurring) -> None:
    if not recurring.first and order.subscription_id is None:
        # A renewal of a subscription never started here (its first payment is missing).
        shop_services.order_flag_for_review(
            order=order, reason="Subscription renewal without a subscription started here"
        )
        return
    shop_services.subscription_paid(
        order=order,
        charge_id=payment.telegram_payment_charge_id,
        expires_at=recurring.expires_at,
        first=recurring.first,
    )


@transaction.atomic
def charge_conflict_resolve(
    *, conflict: ChargeConflict, note: str, actor: AbstractBaseUser | None = None
) -> ChargeConflict:
    """Finance looked into a charge id reported twice: what they found is kept with it."""
    locked = ChargeConflict.objects.select_for_update().get(pk=conflict.pk)
    if locked.resolved_at is not None:
        raise DomainError("This was already resolved.", code="resolved")
    if not (note or "").strip():
        raise DomainError("Say what you found and did.", code="no_note")
    locked.resolved_at, locked.resolved_by, locked.note = timezone.now(), actor, note.strip()
    locked.save(update_fields=["resolved_at", "resolved_by", "note"])
    return locked
