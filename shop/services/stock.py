"""Stock and checkout: reservation at pre-checkout, release, digital items handed out once."""

from contextlib import nullcontext
from datetime import UTC
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from shop.models import (
    DigitalItem,
    Order,
    OrderItem,
    Product,
)
from shop.services import promos


class _OutOfStock(Exception):
    pass


def order_reserve_stock(*, order: Order) -> bool:
    """Take the order's units out of stock, once; False (and nothing taken) when any ran out."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        reserved = locked.stock_reserved or _reserve_locked(
            locked.pk,
            [
                (i.product_id, i.quantity, i.product.stock)
                for i in locked.items.select_related("product")
            ],
        )
    if reserved:
        order.stock_reserved = True
    return reserved


def _stock_take(product_id: int, quantity: int) -> bool:
    # A conditional UPDATE: two buyers of the last unit cannot both get it.
    taken = Product.objects.filter(pk=product_id, stock__gte=quantity).update(
        stock=F("stock") - quantity
    )
    return bool(taken)


def _reserve_locked(order_id: int, lines: list[tuple[int, int, int | None]]) -> bool:
    """Reserve (product id, quantity, stock) lines for an order the caller holds locked."""
    # Unlimited products (stock NULL) are not written to, so they never serialise buyers.
    limited = [(product_id, quantity) for product_id, quantity, stock in lines if stock is not None]
    if len(limited) == 1:
        if not _stock_take(*limited[0]):
            return False
    elif limited:
        try:
            with transaction.atomic():  # one stock ran out: give back what was taken
                for product_id, quantity in limited:
                    if not _stock_take(product_id, quantity):
                        raise _OutOfStock
        except _OutOfStock:
            return False
    Order.objects.filter(pk=order_id).update(stock_reserved=True, updated_at=timezone.now())
    return True


@transaction.atomic
def order_release_stock(*, order: Order) -> None:
    """Give reserved units back to stock (an order that will never be paid)."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not locked.stock_reserved:
        return
    for item in locked.items.all():
        Product.objects.filter(pk=item.product_id, stock__isnull=False).update(
            stock=F("stock") + item.quantity
        )
    locked.stock_reserved = False
    locked.save(update_fields=["stock_reserved", "updated_at"])
    order.stock_reserved = False


def order_item_deliver_digital(*, item: OrderItem) -> list[str] | None:
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


class CheckoutLine(NamedTuple):
    """One line of an order as pre-checkout reads it (botbridge.fastpath, in one statement)."""

    order_id: int
    status: str
    currency: str
    total_amount: int
    stock_reserved: bool
    paid_at: Any
    owner_telegram_id: int
    owner_is_blocked: bool
    product_is_active: bool
    product_id: int
    quantity: int
    stock: int | None
    created_at: Any
    unit_price: int
    price: int
    promo_code_id: int | None
    customer_id: int
    discount_amount: int


def order_checkout(
    *, lines: list[CheckoutLine], telegram_id: int, currency: str, total_amount: int
) -> str | None:
    """Decide Telegram's pre-checkout question: None to accept (stock now reserved), or why not.

    `lines` are the order's lines, read with the order locked in the caller's transaction.
    Asked again for the same order it answers the same way: the reservation is taken once.
    """
    refusal = _checkout_refusal(lines, telegram_id, currency, total_amount)
    if refusal:
        return refusal
    order = lines[0]
    stock = [(line.product_id, line.quantity, line.stock) for line in lines]
    # A code refused gives back the stock just taken: a savepoint, only when there is a code
    # (the hot path without one takes none).
    undo = transaction.atomic() if order.promo_code_id is not None else nullcontext()
    try:
        with undo:
            if not order.stock_reserved and not _reserve_locked(order.order_id, stock):
                return "out_of_stock"
            if order.promo_code_id is not None:
                refusal = promos.promo_hold(
                    order_id=order.order_id,
                    promo_id=order.promo_code_id,
                    customer_id=order.customer_id,
                    currency=order.currency,
                    discount_amount=order.discount_amount,
                    lines=[(line.product_id, line.unit_price * line.quantity) for line in lines],
                )
                if refusal:
                    raise _Refused(refusal)
    except _Refused as refused:
        return refused.code
    return None


class _Refused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _checkout_refusal(
    lines: list[CheckoutLine], telegram_id: int, currency: str, total_amount: int
) -> str | None:
    if not lines:
        return "invoice_invalid"
    order = lines[0]
    if order.owner_telegram_id != telegram_id:
        return "not_your_order"
    if order.owner_is_blocked:
        return "blocked"
    if order.paid_at is not None:
        return "already_paid"
    created_at = order.created_at
    if timezone.is_naive(created_at):  # SQLite's raw rows carry no zone: they are UTC
        created_at = timezone.make_aware(created_at, UTC)
    if order.status == Order.Status.EXPIRED or (
        order.status == Order.Status.INVOICED
        and created_at <= timezone.now() - settings.SHOP_INVOICE_TTL
    ):
        return "expired"  # stale: the expiry sweep may not have run yet
    if order.status != Order.Status.INVOICED:
        return "order_closed"
    if (currency, total_amount) != (order.currency, order.total_amount):
        return "amount"
    if not all(line.product_is_active for line in lines):
        return "inactive"
    if any(line.price != line.unit_price for line in lines):
        return "price_changed"  # the invoice no longer matches the catalog
    return None
