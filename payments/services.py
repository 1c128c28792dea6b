"""Write paths for payments, crediting, refunds, disputes and the ledger."""

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from botbridge import outbox
from core import money
from core.errors import DomainError
from payments.models import Dispute, LedgerEntry, Payment, Refund
from shop.models import Customer, DigitalItem, Order, OrderEvent, OrderItem, Product
from shop.services import (
    order_event_add,
    order_flag_for_review,
    order_reserve_stock,
    order_transition,
)

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """A call to Telegram should be made again later (flood wait, server error)."""


class LedgerConflict(DomainError):
    code = "ledger_conflict"


def ledger_post(
    *,
    customer: Customer,
    kind: str,
    amount: int,
    currency: str,
    idempotency_key: str,
    order: Order | None = None,
    payment: Payment | None = None,
    refund=None,
    dispute=None,
    memo: str = "",
    created_by: AbstractBaseUser | None = None,
) -> tuple[LedgerEntry, bool]:
    """Append one ledger entry, once per idempotency key: (entry, created).

    A second post with the same key returns the first entry; with the same key but other
    figures it raises LedgerConflict, since that is a bug, not a retry.
    """
    if amount == 0:
        raise DomainError("A ledger entry moves a non-zero amount.", code="zero_amount")
    money.exponent(currency)
    try:
        # The savepoint keeps an enclosing transaction usable after a duplicate key.
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                customer=customer,
                kind=kind,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
                order=order,
                payment=payment,
                refund=refund,
                dispute=dispute,
                memo=memo[:255],
                created_by=created_by,
            )
        return entry, True
    except IntegrityError:
        entry = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
        if entry is None:
            raise
    if (entry.customer_id, entry.kind, entry.amount, entry.currency) != (
        customer.pk,
        kind,
        amount,
        currency,
    ):
        raise LedgerConflict(f"Ledger key {idempotency_key} was already posted with other figures.")
    return entry, False


def _review_reason(*, order: Order | None, customer: Customer, amount: int, currency: str) -> str:
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
    order_event_add(order=order, kind=OrderEvent.Kind.PAYMENT, message=f"Paid {shown}", data=data)
    if payment.review_reason:
        order_flag_for_review(
            order=order, reason=f"Payment {shown}: {payment.get_review_reason_display()}", data=data
        )
        return
    if shipping_address:
        Order.objects.filter(pk=order.pk).update(shipping_address=shipping_address)
    if not order.stock_reserved and not order_reserve_stock(order=order):
        order_flag_for_review(order=order, reason="Paid, but the stock ran out before payment")
    order_transition(order=order, to_status=Order.Status.PAID, source="customer")
    from payments import tasks  # tasks import this module

    transaction.on_commit(lambda: tasks.payment_credit.delay(payment.pk))


def payment_credit(*, payment_id: int) -> bool:
    """Credit a recorded payment exactly once: ledger, delivery, status, receipt.

    Guarded by a row lock and `credited_at`, and every ledger entry by its idempotency key,
    so a redelivered task, two workers or a worker killed half-way never credit twice.
    """
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("order", "customer")
            .filter(pk=payment_id)
            .first()
        )
        if payment is None or payment.credited_at or payment.review_reason or not payment.order:
            return False
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        if order.status != Order.Status.PAID:
            return False
        ledger_post(**_credit_entry(payment, order))
        delivered: list[str] = []
        needs_shipping = False
        for item in order.items.select_related("product"):
            if item.kind == Product.Kind.TOPUP:
                continue
            if item.kind == Product.Kind.PHYSICAL:
                needs_shipping = True
            else:
                codes = _deliver_digital(item=item)
                if codes is None:
                    # The payment stays on the customer's balance until staff deliver or refund.
                    order_flag_for_review(
                        order=order, reason=f"No {item.sku} items left to deliver"
                    )
                    Payment.objects.filter(pk=payment.pk).update(credited_at=timezone.now())
                    return True
                delivered.extend(codes)
            ledger_post(**_purchase_entry(payment, order, item))
        next_status = Order.Status.AWAITING_SHIPMENT if needs_shipping else Order.Status.FULFILLED
        order_transition(
            order=order,
            to_status=next_status,
            message="Awaiting shipment" if needs_shipping else "Fulfilled",
            data={"delivered_items": len(delivered)},
        )
        Payment.objects.filter(pk=payment.pk).update(credited_at=timezone.now())
        outbox.receipt_queue(payment=payment, order=order, delivered=delivered)
    return True


CREDIT_BATCH = 100


def payment_credit_batch(*, payment_id: int | None = None, limit: int = CREDIT_BATCH) -> int:
    """Credit up to `limit` recorded payments in one transaction; returns how many.

    The worker's fast path: payments waiting to be credited are locked with SKIP LOCKED (so
    workers share them out), and their ledger entries, order moves, audit rows and receipts
    are written with one statement each. Exactly once, as in `payment_credit`: the row lock,
    `credited_at` and the ledger's unique keys. An order with digital goods goes through
    `payment_credit`, one by one, since handing out items is per unit.
    """
    with transaction.atomic():
        waiting = (
            Payment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("order", "customer")
            .filter(credited_at__isnull=True, review_reason="", order__status=Order.Status.PAID)
            .order_by("pk")
        )
        batch = []
        if payment_id is not None:
            batch = list(waiting.filter(pk=payment_id))
        batch += list(waiting.exclude(pk=payment_id)[: limit - len(batch)])
        if not batch:
            return 0
        orders = {
            o.pk: o
            for o in Order.objects.select_for_update(of=("self",)).filter(
                pk__in=[p.order_id for p in batch], status=Order.Status.PAID
            )
        }
        items: dict[int, list] = {}
        for item in OrderItem.objects.filter(order_id__in=list(orders)).order_by("pk"):
            items.setdefault(item.order_id, []).append(item)
        now = timezone.now()
        entries, events, receipts, credited = [], [], [], []
        moves: dict[str, list[int]] = {
            Order.Status.FULFILLED: [],
            Order.Status.AWAITING_SHIPMENT: [],
        }
        single = []
        for payment in batch:
            order = orders.get(payment.order_id)
            lines = items.get(payment.order_id, [])
            if order is None:
                continue
            if any(item.kind == Product.Kind.DIGITAL for item in lines):
                single.append(payment.pk)
                continue
            entries.append(LedgerEntry(**_credit_entry(payment, order)))
            for item in lines:
                if item.kind != Product.Kind.TOPUP:
                    entries.append(LedgerEntry(**_purchase_entry(payment, order, item)))
            shipping = any(item.kind == Product.Kind.PHYSICAL for item in lines)
            to_status = Order.Status.AWAITING_SHIPMENT if shipping else Order.Status.FULFILLED
            moves[to_status].append(order.pk)
            events.append(
                OrderEvent(
                    order=order,
                    kind=OrderEvent.Kind.STATUS,
                    from_status=Order.Status.PAID,
                    to_status=to_status,
                    source="system",
                    message="Awaiting shipment" if shipping else "Fulfilled",
                    data={"delivered_items": 0},
                )
            )
            body = outbox.receipt_text(
                payment=payment, order=order, items=lines, customer=payment.customer, delivered=[]
            )
            receipts.append((payment, order, payment.customer, body))
            credited.append(payment.pk)
        LedgerEntry.objects.bulk_create(entries)
        Order.objects.filter(pk__in=moves[Order.Status.FULFILLED]).update(
            status=Order.Status.FULFILLED, fulfilled_at=now, updated_at=now
        )
        Order.objects.filter(pk__in=moves[Order.Status.AWAITING_SHIPMENT]).update(
            status=Order.Status.AWAITING_SHIPMENT, updated_at=now
        )
        OrderEvent.objects.bulk_create(events)
        Payment.objects.filter(pk__in=credited).update(credited_at=now)
        outbox.receipts_queue_many(receipts)
    for pk in single:
        payment_credit(payment_id=pk)
    return len(credited) + len(single)


def _credit_entry(payment: Payment, order: Order) -> dict[str, Any]:
    """The ledger entry crediting a payment (for ledger_post, or LedgerEntry in a batch)."""
    return {
        "customer": payment.customer,
        "kind": LedgerEntry.Kind.CREDIT,
        "amount": payment.amount,
        "currency": payment.currency,
        "idempotency_key": f"payment:{payment.pk}:credit",
        "order": order,
        "payment": payment,
        "memo": f"Payment for order {order.reference}",
    }


def _purchase_entry(payment: Payment, order: Order, item: OrderItem) -> dict[str, Any]:
    """The ledger entry spending the credit on one order line."""
    return {
        "customer": payment.customer,
        "kind": LedgerEntry.Kind.PURCHASE,
        "amount": -item.line_total,
        "currency": item.currency,
        "idempotency_key": f"payment:{payment.pk}:purchase:{item.pk}",
        "order": order,
        "payment": payment,
        "memo": f"{item.quantity} × {item.title}",
    }


def _deliver_digital(*, item) -> list[str] | None:
    """Hand out one stored item per unit, each to one order only; None when too few are left."""
    already = list(DigitalItem.objects.filter(order_item=item).values_list("content", flat=True))
    if already:
        return already
    # skip_locked: two workers delivering at once take different items instead of waiting.
    available = list(
        DigitalItem.objects.select_for_update(skip_locked=True)
        .filter(product_id=item.product_id, order_item__isnull=True)
        .order_by("pk")[: item.quantity]
    )
    if len(available) < item.quantity:
        return None
    DigitalItem.objects.filter(pk__in=[unit.pk for unit in available]).update(
        order_item=item, delivered_at=timezone.now()
    )
    return [unit.content for unit in available]


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
        )
        if payment.order_id:
            order_event_add(
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
        if order is not None:
            target = _refund_target_status(payment)
            if Order.objects.get(pk=order.pk).can_transition_to(target):
                order_transition(
                    order=order,
                    to_status=target,
                    actor=actor,
                    message=f"Refund #{refund.pk} completed",
                    data={"refund_id": refund.pk},
                )
            else:
                order_event_add(
                    order=order,
                    kind=OrderEvent.Kind.REFUND,
                    actor=actor,
                    message=f"Refund #{refund.pk} completed",
                    data={"refund_id": refund.pk},
                )
    return refund


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


def purchase_reversal_post(
    *,
    payment: Payment,
    amount: int,
    idempotency_key: str,
    memo: str,
    refund: Refund | None = None,
    dispute: Dispute | None = None,
    created_by: AbstractBaseUser | None = None,
) -> None:
    """Money leaving (a refund, a chargeback) first gives back the purchase it paid for.

    The credit was spent on the goods (purchase entries); without this adjustment taking the
    money back would leave the customer's balance negative. Never reverses more than was
    purchased, across all refunds and chargebacks of the payment.
    """
    entries = payment.ledger_entries
    purchased = -(
        entries.filter(kind=LedgerEntry.Kind.PURCHASE).aggregate(t=Sum("amount"))["t"] or 0
    )
    reversed_already = (
        entries.filter(kind=LedgerEntry.Kind.ADJUSTMENT)
        .exclude(refund__isnull=True, dispute__isnull=True)
        .aggregate(t=Sum("amount"))["t"]
        or 0
    )
    reversal = min(amount, purchased - reversed_already)
    if reversal > 0:
        ledger_post(
            customer=payment.customer,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=reversal,
            currency=payment.currency,
            idempotency_key=idempotency_key,
            order=payment.order,
            payment=payment,
            refund=refund,
            dispute=dispute,
            memo=memo,
            created_by=created_by,
        )


def _refund_notice(*, refund: Refund, payment: Payment) -> None:
    """Tell the customer, in their language, once per refund."""
    from botbridge.texts import refund_reason, text

    customer = payment.customer
    lang = customer.language
    amount = money.format_amount(refund.amount, refund.currency)
    reference = refund.order.reference if refund.order_id else payment.telegram_payment_charge_id
    if refund.currency == money.STARS:
        body = text(lang, "refund_note_stars", amount=amount, reference=reference)
    else:
        reason = refund_reason(lang, refund.reason)
        body = text(lang, "refund_note", amount=amount, reference=reference, reason=reason)
    outbox.message_queue(
        customer=customer, text=body, order=refund.order, dedupe_key=f"refund:{refund.pk}:notice"
    )


def refund_create(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    note: str = "",
    author: AbstractBaseUser | None = None,
) -> Refund:
    """Staff record a refund. Stars are refunded by the worker through refundStarPayment;
    A-Pay has no refund API, so the refund waits for staff to confirm they made it there."""
    refund = refund_request(payment=payment, amount=amount, reason=reason, note=note, author=author)
    _refund_stars_schedule(refund)
    return refund


def _refund_stars_schedule(refund: Refund) -> None:
    """Stars are refunded by the worker (refundStarPayment), after the commit."""
    if refund.currency == money.STARS:
        from payments import tasks

        transaction.on_commit(lambda: tasks.refund_stars.delay(refund.pk))


def _refund_event(refund: Refund, message: str, actor: AbstractBaseUser | None = None) -> None:
    """A step of the refund in its order's audit trail (if it has an order)."""
    if refund.order_id:
        order_event_add(
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
        if refund.status not in (Refund.Status.PENDING, Refund.Status.FAILED):
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


def refund_stars_execute(*, refund_id: int) -> str:
    """The worker's half of a Stars refund: refundStarPayment, then record the outcome.

    Telegram refuses a second refund of the same charge with CHARGE_ALREADY_REFUNDED, which
    therefore also means done: a retried task can never refund twice.
    """
    from botbridge import bot

    refund = Refund.objects.select_related("payment__customer").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING or refund.currency != money.STARS:
        return refund.status
    payment = refund.payment
    Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1)
    try:
        bot.refund_star_payment(
            user_id=payment.customer.telegram_id,
            telegram_payment_charge_id=payment.telegram_payment_charge_id,
        )
    except bot.ApiTelegramException as error:
        if error.error_code == 429 or error.error_code >= 500:
            raise RetryLater(f"Telegram: {error.error_code} {error.description}") from error
        if "CHARGE_ALREADY_REFUNDED" not in str(error.description):
            refund_fail(refund=refund, error=f"Telegram: {error.error_code} {error.description}")
            return Refund.Status.FAILED
    refund_complete(refund=refund, external_reference=payment.telegram_payment_charge_id)
    return Refund.Status.COMPLETED
