"""Orders: creation, invoicing, the status table, cancellation and expiry, their audit trail."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import money
from core.errors import DomainError, IllegalTransition, NotAvailable
from shop import notices, outbox
from shop.models import (
    Customer,
    Message,
    Order,
    OrderEvent,
    OrderItem,
    Product,
    ProductOption,
    PromoCode,
    Subscription,
)
from shop.services import promos
from shop.services.stock import order_release_stock

_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_REFERENCE_LENGTH = 8

_STATUS_TIMESTAMPS = {
    Order.Status.INVOICED: "invoiced_at",
    Order.Status.PAID: "paid_at",
    Order.Status.SHIPPED: "shipped_at",
    Order.Status.FULFILLED: "fulfilled_at",
}


def order_reference_new() -> str:
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(_REFERENCE_LENGTH))


def order_event_add(
    *,
    order: Order,
    kind: str,
    message: str,
    actor: AbstractBaseUser | None = None,
    source: str | None = None,
    data: dict[str, Any] | None = None,
    from_status: str = "",
    to_status: str = "",
) -> OrderEvent:
    """Append an audit row; callers are inside the transaction of the change they record."""
    return OrderEvent.objects.create(
        order=order,
        kind=kind,
        message=message[:255],
        actor=actor,
        source=source or ("staff" if actor else "system"),
        data=data or {},
        from_status=from_status,
        to_status=to_status,
    )


@transaction.atomic
def order_create(
    *, customer: Customer, product: Product, quantity: int = 1, option: str = ""
) -> Order:
    """A new order for one product (and its option, if it has options), priced as it is now."""
    chosen = option_get(product, option)
    if customer.is_blocked:
        raise NotAvailable("This account cannot place orders.", code="customer_blocked")
    if quantity < 1:
        raise DomainError("Quantity must be at least 1.", code="bad_quantity")
    if not product.is_active:
        raise NotAvailable("This product is not on sale.", code="inactive")
    if product.stock is not None and product.stock < quantity:
        raise NotAvailable("This product is out of stock.", code="out_of_stock")
    delivery = delivery_fee(product.currency) if product.kind == Product.Kind.PHYSICAL else 0
    order = order_new(
        customer=customer,
        currency=product.currency,
        total_amount=product.price * quantity + delivery,
        delivery_amount=delivery,
    )
    OrderItem.snapshot(order=order, product=product, quantity=quantity, option=chosen).save()
    order_event_add(
        order=order,
        kind=OrderEvent.Kind.STATUS,
        message="Order created",
        source="customer",
        to_status=order.status,
        data={"sku": product.sku, "quantity": quantity, "option": option},
    )
    return order


def order_new(
    *,
    customer: Customer,
    currency: str,
    total_amount: int,
    discount_amount: int = 0,
    delivery_amount: int = 0,
    promo_code: PromoCode | None = None,
    subscription: Subscription | None = None,
) -> Order:
    """An order row under a fresh reference; the caller adds its lines in its transaction."""
    for _ in range(5):
        try:
            with transaction.atomic():
                return Order.objects.create(
                    reference=order_reference_new(),
                    customer=customer,
                    currency=currency,
                    total_amount=total_amount,
                    discount_amount=discount_amount,
                    delivery_amount=delivery_amount,
                    promo_code=promo_code,
                    subscription=subscription,
                )
        except IntegrityError:
            continue
    # 32^8 references make five collisions in a row unthinkable.
    raise DomainError("Could not allocate an order reference.")  # pragma: no cover


def delivery_fee(currency: str) -> int:
    """Delivery for an order of physical goods in this currency (SHOP_DELIVERY_FEES)."""
    for entry in settings.SHOP_DELIVERY_FEES.split(","):
        code, _, amount = entry.strip().partition(":")
        if code.strip().upper() == currency and amount.strip():
            return money.to_minor(amount.strip(), currency)
    return 0


def _label(status: str) -> str:
    return Order.Status(status).label if status in Order.Status.values else status


def option_get(product: Product, value: str) -> ProductOption | None:
    """The product's offered option with this code; refuses a missing or unknown choice."""
    offered = {o.value: o for o in product.options.all() if o.is_active}
    if not offered:
        if value:
            raise DomainError(f"{product.title} has no options.", code="bad_option")
        return None
    if value not in offered:
        raise DomainError(
            f"Choose one of: {', '.join(o.label for o in offered.values())}.", code="bad_option"
        )
    return offered[value]


@transaction.atomic
def order_transition(
    *,
    order: Order,
    to_status: str,
    actor: AbstractBaseUser | None = None,
    source: str | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> Order:
    """Move an order to a new status, or raise IllegalTransition and change nothing."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not locked.can_transition_to(to_status):
        raise IllegalTransition(
            f"Order {locked.reference} cannot go from {locked.status} to {to_status}."
        )
    from_status = locked.status
    locked.status = to_status
    fields = ["status", "updated_at"]
    stamp = _STATUS_TIMESTAMPS.get(to_status)
    if stamp and getattr(locked, stamp) is None:
        setattr(locked, stamp, timezone.now())
        fields.append(stamp)
    if to_status == Order.Status.DISPUTED:
        locked.status_before_dispute = from_status
        fields.append("status_before_dispute")
    locked.save(update_fields=fields)
    order_event_add(
        order=locked,
        kind=OrderEvent.Kind.STATUS,
        message=message or f"{_label(from_status)} → {_label(to_status)}",
        actor=actor,
        source=source,
        data=data,
        from_status=from_status,
        to_status=to_status,
    )
    # Keep the caller's instance truthful too.
    for field in fields:
        setattr(order, field, getattr(locked, field))
    return locked


@transaction.atomic
def order_transition_many(
    *,
    orders: list[Order],
    to_status: str,
    message: str,
    data: dict[int, dict[str, Any]] | None = None,
    actor: AbstractBaseUser | None = None,
    source: str | None = None,
) -> int:
    """Move many orders to one status: one UPDATE and one INSERT of their audit rows.

    The same table as `order_transition`: if any order may not go there, IllegalTransition
    is raised and nothing changes. `data` gives each order's event data by order id.
    """
    if not orders:
        return 0
    ids = [order.pk for order in orders]
    current = dict(Order.objects.select_for_update().filter(pk__in=ids).values_list("pk", "status"))
    refused = [
        pk for pk in ids if pk not in current or to_status not in Order.TRANSITIONS[current[pk]]
    ]
    if refused:
        raise IllegalTransition(f"{len(refused)} order(s) cannot go to {to_status}.")
    now = timezone.now()
    changes: dict[str, Any] = {"status": to_status, "updated_at": now}
    stamp = _STATUS_TIMESTAMPS.get(to_status)
    if stamp:
        changes[stamp] = Coalesce(F(stamp), now)
    if to_status == Order.Status.DISPUTED:
        changes["status_before_dispute"] = F("status")
    Order.objects.filter(pk__in=ids).update(**changes)
    OrderEvent.objects.bulk_create(
        OrderEvent(
            order_id=pk,
            kind=OrderEvent.Kind.STATUS,
            from_status=current[pk],
            to_status=to_status,
            actor=actor,
            source=source or ("staff" if actor else "system"),
            message=message[:255],
            data=(data or {}).get(pk, {}),
        )
        for pk in ids
    )
    for order in orders:
        order.status = to_status
    return len(ids)


@transaction.atomic
def order_flag_for_review(
    *, order: Order, reason: str, data: dict[str, Any] | None = None
) -> Order:
    """Mark an order for a person to look at, with the reason in its audit trail."""
    Order.objects.filter(pk=order.pk).update(
        needs_review=True, review_reason=reason[:255], updated_at=timezone.now()
    )
    order.needs_review, order.review_reason = True, reason[:255]
    order_event_add(order=order, kind=OrderEvent.Kind.REVIEW, message=reason, data=data)
    return order


@transaction.atomic
def order_cancel(*, order: Order, actor: AbstractBaseUser | None = None, note: str = "") -> Order:
    """Cancel an unpaid order and give its reserved stock back, in one transaction."""
    locked = order_transition(
        order=order,
        to_status=Order.Status.CANCELLED,
        actor=actor,
        message=(note or "Order cancelled")[:255],
    )
    order_release_stock(order=locked)
    promos.promo_release(order=locked)
    invoice_retract(order=locked)
    order.stock_reserved = locked.stock_reserved
    return locked


@transaction.atomic
def order_invoice(
    *, customer: Customer, product: Product, quantity: int = 1, option: str = ""
) -> Order:
    """A customer's order for a product, invoiced: the invoice is queued to their chat."""
    order = order_create(customer=customer, product=product, quantity=quantity, option=option)
    return order_send_invoice(order=order)


def order_send_invoice(*, order: Order) -> Order:
    """A created order is invoiced: its invoice (or a subscription's link) is queued."""
    order_transition(
        order=order, to_status=Order.Status.INVOICED, source="customer", message="Invoice sent"
    )
    notices.invoice_queue(order=order)
    return order


@transaction.atomic
def order_ship(
    *,
    order: Order,
    carrier: str,
    tracking_number: str,
    tracking_url: str = "",
    actor: AbstractBaseUser | None = None,
) -> Order:
    """Staff hand the parcel to a carrier: the customer is told, in their language, how to
    follow it (the promise the receipt made)."""
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not carrier or not tracking_number:
        raise DomainError("Enter the carrier and the tracking number.", code="no_tracking")
    locked = order_transition(
        order=order,
        to_status=Order.Status.SHIPPED,
        actor=actor,
        message=f"Shipped with {carrier}, tracking {tracking_number}"[:255],
        data={"carrier": carrier, "tracking_number": tracking_number, "tracking_url": tracking_url},
    )
    Order.objects.filter(pk=locked.pk).update(
        carrier=carrier[:64], tracking_number=tracking_number[:64], tracking_url=tracking_url
    )
    locked.carrier, locked.tracking_number, locked.tracking_url = (
        carrier[:64],
        tracking_number[:64],
        tracking_url,
    )
    notices.shipped_queue(order=locked)
    order.status = locked.status
    return locked


@transaction.atomic
def order_deliver(*, order: Order, actor: AbstractBaseUser | None = None, note: str = "") -> Order:
    """The parcel arrived: the order is fulfilled, and the customer thanked."""
    locked = order_transition(
        order=order,
        to_status=Order.Status.FULFILLED,
        actor=actor,
        message=(note or "Delivered")[:255],
    )
    now = timezone.now()
    Order.objects.filter(pk=locked.pk).update(delivered_at=now)
    locked.delivered_at = now
    notices.delivered_queue(order=locked)
    order.status = locked.status
    return locked


def order_set_payment_mode(*, order_id: int, mode: str) -> None:
    """Whose money the order's invoice asked for (live, test, sandbox), once it was sent."""
    Order.objects.filter(pk=order_id).update(payment_mode=mode)


@transaction.atomic
def order_set_shipping_address(*, order: Order, address: dict[str, Any]) -> None:
    """The address Telegram collected with the payment."""
    Order.objects.filter(pk=order.pk).update(shipping_address=address, updated_at=timezone.now())
    order.shipping_address = address


def order_expire_stale(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Expire unpaid orders older than the invoice lifetime and release their stock."""
    cutoff = (now or timezone.now()) - older_than
    expired = 0
    stale = (
        Order.objects.awaiting_payment().filter(created_at__lt=cutoff).values_list("pk", flat=True)
    )
    for pk in list(stale[:1000]):
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=pk)
            if not order.is_awaiting_payment:
                continue
            order_release_stock(order=order)
            promos.promo_release(order=order)
            order_transition(order=order, to_status=Order.Status.EXPIRED, message="Invoice expired")
            invoice_retract(order=order)
            expired += 1
    return expired


def invoice_retract(*, order: Order) -> int:
    """Delete the order's invoice messages from the chat (each once); an invoice still waiting
    to be sent is never sent."""
    invoices = Message.objects.filter(
        order=order, method__in=notices.INVOICE_METHODS, direction=Message.Direction.OUTBOUND
    )
    invoices.filter(status=Message.Status.QUEUED).update(
        status=Message.Status.FAILED, error="Not sent: the order stopped awaiting payment first."
    )
    retracted = 0
    for message in invoices.filter(status=Message.Status.SENT, telegram_message_id__isnull=False):
        outbox.message_queue(
            customer=order.customer,
            method="deleteMessage",
            params={"message_id": message.telegram_message_id},
            text=f"Invoice {order.reference} withdrawn from the chat",
            order=order,
            dedupe_key=f"invoice-retract:{message.pk}",
        )
        retracted += 1
    return retracted


@transaction.atomic
def order_promo_use(*, order: Order) -> bool:
    """The order was paid: its promo code's use counts once, in its audit trail."""
    counted, over_limit = promos.promo_use(order=order)
    if counted:
        code = PromoCode.objects.get(pk=order.promo_code_id).code
        order_event_add(
            order=order,
            kind=OrderEvent.Kind.PAYMENT,
            message=f"Promo code {code} used",
            data={"promo_code": code, "discount": order.discount_amount},
        )
    if over_limit:
        order_flag_for_review(order=order, reason="Paid with a promo code past its limit")
    return counted


@transaction.atomic
def order_restock(*, order: Order, actor: AbstractBaseUser | None = None) -> bool:
    """A refund with *restock* ticked: the order's units go back to stock, once."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.restocked_at is not None or not locked.stock_reserved:
        return False
    units = []
    for item in locked.items.all():
        updated = Product.objects.filter(pk=item.product_id, stock__isnull=False).update(
            stock=F("stock") + item.quantity
        )
        if updated:
            units.append(f"{item.quantity} × {item.sku}")
    locked.restocked_at = timezone.now()
    locked.save(update_fields=["restocked_at", "updated_at"])
    order_event_add(
        order=locked,
        kind=OrderEvent.Kind.REFUND,
        message=("Back in stock: " + ", ".join(units)) if units else "Restock: no stock to count",
        actor=actor,
    )
    order.restocked_at = locked.restocked_at
    return True
