"""Crediting recorded payments, exactly once: ledger, delivery, order status, receipt.

One path for one payment and for a batch. Payments are locked (`credited_at` is still
empty and stays the guard), their orders moved through the shop's transition table, their
ledger entries, audit rows and receipts written with one statement per kind of row, so a
redelivered task, two workers or a worker killed half-way never credit twice.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from payments.models import LedgerEntry, Payment
from shop import notices, outbox
from shop import services as shop_services
from shop.models import Order, OrderItem, Product

CREDIT_BATCH = 100


def payment_credit(*, payment_id: int) -> bool:
    """Credit this one payment (waiting for a worker that holds it); False if nothing to do."""
    with transaction.atomic():
        payments = list(_creditable().select_for_update(of=("self",)).filter(pk=payment_id))
        return _credit(payments) > 0


def payment_credit_batch(*, payment_id: int | None = None, limit: int = CREDIT_BATCH) -> int:
    """Credit up to `limit` recorded payments in one transaction; returns how many.

    The worker's path: this payment first, then others waiting, each locked with SKIP LOCKED
    so that workers share them out instead of queueing on each other.
    """
    with transaction.atomic():
        waiting = _creditable().select_for_update(skip_locked=True, of=("self",)).order_by("pk")
        batch = list(waiting.filter(pk=payment_id)) if payment_id is not None else []
        batch += list(waiting.exclude(pk=payment_id)[: limit - len(batch)])
        return _credit(batch)


def payment_credit_sweep(*, older_than: timedelta, max_batches: int = 100) -> int:
    """Credit every recorded, creditable payment still uncredited after `older_than`.

    Beat's safety net for a credit task that was never delivered (the broker was down or
    restarted empty at the moment of payment) or gave up: the same exactly-once path.
    """
    cutoff = timezone.now() - older_than
    total = 0
    for _ in range(max_batches):
        with transaction.atomic():
            batch = list(
                payments_uncredited(cutoff=cutoff)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("pk")[:CREDIT_BATCH]
            )
            total += _credit(batch)
        if len(batch) < CREDIT_BATCH:
            break
    return total


def payments_uncredited(*, cutoff: datetime) -> QuerySet[Payment]:
    """Payments that should have been credited by `cutoff` and were not."""
    return _creditable().filter(paid_at__lt=cutoff)


def _creditable() -> QuerySet[Payment]:
    return Payment.objects.select_related("order", "customer").filter(
        credited_at__isnull=True, review_reason="", order__status=Order.Status.PAID
    )


@dataclass
class _Credit:
    """What crediting one payment writes."""

    entries: list[LedgerEntry] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    needs_shipping: bool = False
    shortage: str = ""  # the SKU that ran out of digital items, if one did


def _credit(payments: list[Payment]) -> int:
    """Credit payments the caller holds locked; one statement per kind of row."""
    if not payments:
        return 0
    orders = {
        order.pk: order
        for order in Order.objects.select_for_update(of=("self",))
        .select_related("promo_code")
        .filter(pk__in=[payment.order_id for payment in payments], status=Order.Status.PAID)
    }
    items: dict[int, list[OrderItem]] = {}
    for item in (
        OrderItem.objects.filter(order_id__in=list(orders)).select_related("product").order_by("pk")
    ):
        items.setdefault(item.order_id, []).append(item)
    entries: list[LedgerEntry] = []
    moves: dict[str, list[Order]] = {
        Order.Status.FULFILLED: [],
        Order.Status.AWAITING_SHIPMENT: [],
    }
    move_data: dict[int, dict[str, Any]] = {}
    receipts, credited, short = [], [], []
    for payment in payments:
        order = orders.get(payment.order_id)
        if order is None:
            continue
        lines = items.get(order.pk, [])
        credit = _plan(payment, order, lines)
        entries += credit.entries
        credited.append(payment.pk)
        if credit.shortage:
            # The payment stays on the customer's balance until staff deliver or refund.
            short.append((order, f"No {credit.shortage} items left to deliver"))
            continue
        to_status = (
            Order.Status.AWAITING_SHIPMENT if credit.needs_shipping else Order.Status.FULFILLED
        )
        moves[to_status].append(order)
        move_data[order.pk] = {"delivered_items": len(credit.delivered)}
        body = notices.receipt_text(
            order=order,
            items=lines,
            customer=payment.customer,
            amount=payment.amount,
            currency=payment.currency,
            charge_id=payment.telegram_payment_charge_id,
            paid_at=payment.paid_at,
            delivered=credit.delivered,
        )
        receipts.append((payment.customer, order, body, notices.receipt_key(payment.pk)))
    LedgerEntry.objects.bulk_create(entries)
    for order, reason in short:
        shop_services.order_flag_for_review(order=order, reason=reason)
    for to_status, moved in moves.items():
        shop_services.order_transition_many(
            orders=moved,
            to_status=to_status,
            message="Awaiting shipment" if to_status == Order.Status.AWAITING_SHIPMENT
            else "Fulfilled",
            data=move_data,
        )  # fmt: skip
    Payment.objects.filter(pk__in=credited).update(credited_at=timezone.now())
    outbox.messages_queue_many(receipts)
    return len(credited)


def _plan(payment: Payment, order: Order, lines: list[OrderItem]) -> _Credit:
    """The credit entry, then per line its delivery and the purchase entry spending it."""
    credit = _Credit(entries=[LedgerEntry(**_credit_entry(payment, order))])
    for item in lines:
        if item.kind == Product.Kind.TOPUP:
            continue
        if item.kind == Product.Kind.PHYSICAL:
            credit.needs_shipping = True
        elif item.kind == Product.Kind.SUBSCRIPTION:
            pass  # access is the subscription itself, started or extended with the payment
        else:
            codes = shop_services.order_item_deliver_digital(item=item)
            if codes is None:
                credit.shortage = item.sku
                return credit
            credit.delivered.extend(codes)
        credit.entries.append(LedgerEntry(**_purchase_entry(payment, order, item)))
    # Posted with the lines only: a shortage leaves the whole payment on the balance.
    if order.discount_amount:
        credit.entries.append(LedgerEntry(**_discount_entry(payment, order)))
    if order.delivery_amount:
        credit.entries.append(LedgerEntry(**_delivery_entry(payment, order)))
    return credit


def _credit_entry(payment: Payment, order: Order) -> dict[str, Any]:
    """The ledger entry crediting a payment."""
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


def _discount_entry(payment: Payment, order: Order) -> dict[str, Any]:
    """The promo code's discount: the lines are spent at their prices, the code gives back
    the difference, so the balance ends at zero and the ledger shows what the code cost."""
    code = order.promo_code.code if order.promo_code_id else ""
    return {
        "customer": payment.customer,
        "kind": LedgerEntry.Kind.DISCOUNT,
        "amount": order.discount_amount,
        "currency": order.currency,
        "idempotency_key": f"payment:{payment.pk}:discount",
        "order": order,
        "payment": payment,
        "memo": f"Promo code {code}"[:255],
    }


def _delivery_entry(payment: Payment, order: Order) -> dict[str, Any]:
    """Delivery, spent from the credit like a line."""
    return {
        "customer": payment.customer,
        "kind": LedgerEntry.Kind.PURCHASE,
        "amount": -order.delivery_amount,
        "currency": order.currency,
        "idempotency_key": f"payment:{payment.pk}:delivery",
        "order": order,
        "payment": payment,
        "memo": "Delivery",
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
