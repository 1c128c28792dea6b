"""Recording what Telegram reports as paid: once per charge id, matched to its order."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core import money
from payments.models import Payment
from shop import publish
from shop import services as shop_services
from shop.models import Customer, Order, OrderEvent

CREDIT_TASK = "payments.payment_credit"


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
) -> tuple[Payment, bool]:
    """Record money Telegram reports as paid, once per charge id: (payment, created).

    A payment that matches its order moves it to paid and hands crediting to the worker.
    Anything else (no such order, another amount, a second payment) is kept and flagged
    for staff, and nothing is credited.
    """
    existing = Payment.objects.filter(telegram_payment_charge_id=telegram_payment_charge_id).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
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
                review_reason=review,
                paid_at=timezone.now(),
                raw=raw,
            )
            if order is not None:
                _apply_payment_to_order(
                    payment=payment, order=order, shipping_address=shipping_address
                )
    except IntegrityError:
        # The same charge delivered twice at once: the other delivery recorded it.
        existing = Payment.objects.filter(
            telegram_payment_charge_id=telegram_payment_charge_id
        ).first()
        if existing is None:
            raise
        return existing, False
    return payment, True


def _apply_payment_to_order(
    *, payment: Payment, order: Order, shipping_address: dict[str, Any] | None
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
        return
    if shipping_address:
        shop_services.order_set_shipping_address(order=order, address=shipping_address)
    if not order.stock_reserved and not shop_services.order_reserve_stock(order=order):
        shop_services.order_flag_for_review(
            order=order, reason="Paid, but the stock ran out before payment"
        )
    shop_services.order_transition(order=order, to_status=Order.Status.PAID, source="customer")
    # Lost with the broker? payments.credit_sweep credits it within minutes.
    publish.publish_on_commit(CREDIT_TASK, [(payment.pk,)])
