"""Refunds: recorded by staff (or reported by Telegram), made, confirmed, failed, cancelled.

A-Pay has no refund API: staff refund there and confirm here with A-Pay's reference. Stars
are refunded by the worker through refundStarPayment (the task `payments.refund_stars`,
published by name: the Bot API call is botbridge's).
"""

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from core import money
from core.errors import DomainError
from payments.models import Dispute, LedgerEntry, Payment, Refund
from payments.services.ledger import ledger_post, purchase_reversal_post
from shop import notices, publish
from shop import services as shop_services
from shop.models import Order, OrderEvent

logger = logging.getLogger(__name__)

REFUND_STARS_TASK = "payments.refund_stars"


def _refund_target_status(payment: Payment) -> str:
    completed = (
        payment.refunds.filter(status=Refund.Status.COMPLETED).aggregate(total=Sum("amount"))[
            "total"
        ]
        or 0
    )
    return Order.Status.REFUNDED if completed >= payment.amount else Order.Status.PARTIALLY_REFUNDED


def refund_request(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    note: str = "",
    author: AbstractBaseUser | None = None,
    source: str = Refund.Source.STAFF,
    external_reference: str = "",
    restock: bool = False,
) -> Refund:
    """Record a refund to make, reserving its amount against the payment.

    The reservation is an UPDATE checked by the database (`refunded_amount <= amount`), so two
    staff members refunding at once can never return more than was paid.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if amount <= 0:
            raise DomainError("A refund must be a positive amount.", code="bad_amount")
        if amount > payment.refundable_amount:
            raise DomainError(
                f"At most {money.format_amount(payment.refundable_amount, payment.currency)} "
                "can still be refunded on this payment.",
                code="above_refundable",
            )
        if payment.currency == money.STARS and amount != payment.amount:
            raise DomainError("Telegram Stars payments are refunded whole.", code="stars_partial")
        if payment.disputes.filter(status__in=Dispute.OPEN_STATUSES).exists():
            raise DomainError("This payment has an open dispute.", code="disputed")
        if payment.disputes.filter(
            status__in=(Dispute.Status.LOST, Dispute.Status.ACCEPTED)
        ).exists():
            raise DomainError("This payment was charged back.", code="charged_back")
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + amount)
        refund = Refund.objects.create(
            payment=payment,
            order=payment.order,
            amount=amount,
            currency=payment.currency,
            reason=reason,
            note=note,
            author=author,
            source=source,
            external_reference=external_reference,
            restock=restock and payment.order_id is not None,
        )
        if payment.order_id:
            shop_services.order_event_add(
                order=payment.order,
                kind=OrderEvent.Kind.REFUND,
                message=f"Refund of {money.format_amount(amount, payment.currency)} recorded",
                actor=author,
                data={"refund_id": refund.pk, "reason": reason},
            )
    return refund


def refund_complete(
    *, refund: Refund, external_reference: str = "", actor: AbstractBaseUser | None = None
) -> Refund:
    """The money went back: reversing ledger entries, order status, audit row."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund.pk)
        if refund.status != Refund.Status.PENDING:
            raise DomainError(
                f"Refund #{refund.pk} is {refund.status}, not pending.", code="not_pending"
            )
        payment = refund.payment
        refund.status = Refund.Status.COMPLETED
        refund.completed_at = timezone.now()
        if external_reference:
            refund.external_reference = external_reference
        refund.error = ""
        refund.save(update_fields=["status", "completed_at", "external_reference", "error"])
        ledger_post(
            customer=payment.customer,
            kind=LedgerEntry.Kind.REFUND,
            amount=-refund.amount,
            currency=refund.currency,
            idempotency_key=f"refund:{refund.pk}:refund",
            order=refund.order,
            payment=payment,
            refund=refund,
            memo=f"Refund #{refund.pk}",
            created_by=actor,
        )
        purchase_reversal_post(
            payment=payment,
            amount=refund.amount,
            idempotency_key=f"refund:{refund.pk}:purchase-reversal",
            memo=f"Purchase reversed by refund #{refund.pk}",
            refund=refund,
            created_by=actor,
        )
        _refund_notice(refund=refund, payment=payment)
        order = refund.order
        if order is not None and refund.restock:
            shop_services.order_restock(order=order, actor=actor or refund.author)
        if order is not None:
            target = _refund_target_status(payment)
            if Order.objects.get(pk=order.pk).can_transition_to(target):
                shop_services.order_transition(
                    order=order,
                    to_status=target,
                    actor=actor,
                    message=f"Refund #{refund.pk} completed",
                    data={"refund_id": refund.pk},
                )
            else:
                shop_services.order_event_add(
                    order=order,
                    kind=OrderEvent.Kind.REFUND,
                    actor=actor,
                    message=f"Refund #{refund.pk} completed",
                    data={"refund_id": refund.pk},
                )
    return refund


def refund_await_confirmation(*, refund: Refund, note: str) -> Refund:
    """A pending refund the provider says is done, not yet seen in its own records."""
    with transaction.atomic():
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status == Refund.Status.PENDING and locked.error != note:
            locked.error = note
            locked.save(update_fields=["error"])
            _refund_event(locked, f"Refund #{locked.pk}: {note}")
    return locked


def refund_confirmed_by_provider(*, refund: Refund, external_reference: str) -> Refund:
    """The provider's own records show this refund made: a pending or failed one completes.

    This is how a Stars refund that Telegram answered CHARGE_ALREADY_REFUNDED is confirmed:
    by the outgoing transaction in getStarTransactions, not by the answer alone.
    """
    with transaction.atomic():
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status == Refund.Status.FAILED:
            locked.status, locked.error = Refund.Status.PENDING, ""
            locked.save(update_fields=["status", "error"])
            _refund_event(locked, f"Refund #{locked.pk} found made at the provider")
        if locked.status == Refund.Status.PENDING:
            return refund_complete(refund=locked, external_reference=external_reference)
    return locked


def refund_record_external(
    *, telegram_payment_charge_id: str, amount: int, currency: str, raw: dict[str, Any]
) -> Refund | None:
    """A Stars refund made outside the back office (Telegram's refunded_payment): record it once."""
    payment = Payment.objects.filter(telegram_payment_charge_id=telegram_payment_charge_id).first()
    if payment is None:
        logger.warning("refunded_payment for unknown charge %s", telegram_payment_charge_id)
        return None
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        existing = payment.refunds.filter(source=Refund.Source.TELEGRAM).first()
        if existing:
            return existing
        pending = payment.refunds.filter(status=Refund.Status.PENDING).first()
        if pending:
            # Our own Stars refund, whose answer Telegram reported here too.
            return refund_complete(refund=pending, external_reference=telegram_payment_charge_id)
        refund = refund_request(
            payment=payment,
            amount=amount,
            reason=Refund.Reason.OTHER,
            note=f"Refunded outside the back office (reported by Telegram).\n{raw}",
            source=Refund.Source.TELEGRAM,
            external_reference=telegram_payment_charge_id,
        )
        return refund_complete(refund=refund)


def _refund_notice(*, refund: Refund, payment: Payment) -> None:
    """Tell the customer, in their language, once per refund."""
    notices.refund_notice_queue(
        customer=payment.customer,
        order=refund.order,
        refund_id=refund.pk,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        charge_id=payment.telegram_payment_charge_id,
    )


def refund_create(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    note: str = "",
    author: AbstractBaseUser | None = None,
    restock: bool = False,
) -> Refund:
    """Staff record a refund. Stars are refunded by the worker through refundStarPayment;
    A-Pay has no refund API, so the refund waits for staff to confirm they made it there.
    With `restock` the order's units go back to stock when the refund completes."""
    refund = refund_request(
        payment=payment, amount=amount, reason=reason, note=note, author=author, restock=restock
    )
    _refund_stars_schedule(refund)
    return refund


def _refund_stars_schedule(refund: Refund) -> None:
    """Stars are refunded by the worker (refundStarPayment), after the commit."""
    if refund.currency == money.STARS:
        publish.publish_on_commit(REFUND_STARS_TASK, [(refund.pk,)])


def _refund_event(refund: Refund, message: str, actor: AbstractBaseUser | None = None) -> None:
    """A step of the refund in its order's audit trail (if it has an order)."""
    if refund.order_id:
        shop_services.order_event_add(
            order=refund.order,
            kind=OrderEvent.Kind.REFUND,
            message=message,
            actor=actor,
            data={"refund_id": refund.pk},
        )


def refund_confirm(
    *, refund: Refund, external_reference: str, actor: AbstractBaseUser | None = None
) -> Refund:
    """Staff confirm an A-Pay refund they made at the provider, with its reference."""
    external_reference = (external_reference or "").strip()
    if not external_reference:
        raise DomainError("Enter the provider's reference for this refund.", code="no_reference")
    if refund.currency == money.STARS:
        raise DomainError("Stars refunds are made and confirmed by Telegram.", code="stars")
    return refund_complete(refund=refund, external_reference=external_reference, actor=actor)


def refund_fail(*, refund: Refund, error: str) -> Refund:
    """The refund could not be made: kept visible with its error, its amount still held."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status != Refund.Status.PENDING:
            return refund
        refund.status = Refund.Status.FAILED
        refund.error = error[:2000]
        refund.save(update_fields=["status", "error"])
        _refund_event(refund, f"Refund #{refund.pk} failed: {error}")
    return refund


def refund_retry(*, refund: Refund, actor: AbstractBaseUser | None = None) -> Refund:
    """Staff try a failed refund again."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status != Refund.Status.FAILED:
            raise DomainError(
                f"Refund #{refund.pk} is {refund.status}, not failed.", code="not_failed"
            )
        refund.status = Refund.Status.PENDING
        refund.save(update_fields=["status"])
        _refund_event(refund, f"Refund #{refund.pk} retried", actor=actor)
        _refund_stars_schedule(refund)
    return refund


def refund_cancel(*, refund: Refund, actor: AbstractBaseUser | None = None) -> Refund:
    """Staff give up on a refund that was not made: its amount is refundable again."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.is_final:
            raise DomainError(f"Refund #{refund.pk} is {refund.status}.", code="final")
        if refund.currency == money.STARS and refund.status == Refund.Status.PENDING:
            raise DomainError(
                "A pending Stars refund may be in flight at Telegram; wait for its outcome.",
                code="in_flight",
            )
        refund.status = Refund.Status.CANCELLED
        refund.save(update_fields=["status"])
        Payment.objects.filter(pk=refund.payment_id).update(
            refunded_amount=F("refunded_amount") - refund.amount
        )
        _refund_event(refund, f"Refund #{refund.pk} cancelled", actor=actor)
    return refund
