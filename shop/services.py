"""Write paths for products, customers, orders and support requests."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import DomainError, IllegalTransition, NotAvailable
from shop.models import Customer, Order, OrderEvent, OrderItem, Product, SupportRequest

# Crockford's base32 without I, L, O, U: easy to read aloud to support.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFERENCE_LENGTH = 8

_STATUS_TIMESTAMPS = {
    Order.Status.INVOICED: "invoiced_at",
    Order.Status.PAID: "paid_at",
    Order.Status.FULFILLED: "fulfilled_at",
}


def order_reference_new() -> str:
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(_REFERENCE_LENGTH))


def customer_upsert_from_telegram(
    *,
    telegram_id: int,
    username: str = "",
    first_name: str = "",
    last_name: str = "",
    language_code: str = "",
) -> Customer:
    """Create the customer on first contact; keep their Telegram profile fields current.

    Hearing from a customer also means they no longer block the bot (Telegram delivers
    nothing from a user who does), so a 403 seen earlier is cleared.
    """
    profile = {
        "username": (username or "")[:64],
        "first_name": (first_name or "")[:128],
        "last_name": (last_name or "")[:128],
        "language_code": (language_code or "")[:16],
    }
    customer = Customer.objects.filter(telegram_id=telegram_id).first()
    if customer is None:
        try:
            with transaction.atomic():
                return Customer.objects.create(telegram_id=telegram_id, **profile)
        except IntegrityError:
            # Another update from the same user created it a moment ago.
            customer = Customer.objects.get(telegram_id=telegram_id)
    changed = {k: v for k, v in profile.items() if getattr(customer, k) != v}
    if customer.has_blocked_bot:
        changed["has_blocked_bot"] = False
    if changed:
        Customer.objects.filter(pk=customer.pk).update(**changed, updated_at=timezone.now())
        for key, value in changed.items():
            setattr(customer, key, value)
    return customer


@transaction.atomic
def customer_accept_terms(*, customer: Customer, version: str) -> Customer:
    """Record that the customer accepted this version of the terms, now."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.has_accepted_terms(version):
        return customer
    customer.terms_version = version
    customer.terms_accepted_at = timezone.now()
    customer.save(update_fields=["terms_version", "terms_accepted_at", "updated_at"])
    return customer


@transaction.atomic
def customer_set_blocked(
    *, customer: Customer, is_blocked: bool, actor: AbstractBaseUser | None = None
) -> Customer:
    """Block or unblock a customer; a blocked customer's payments are refused at checkout."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    customer.is_blocked = is_blocked
    customer.save(update_fields=["is_blocked", "updated_at"])
    return customer


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
def order_create(*, customer: Customer, product: Product, quantity: int = 1) -> Order:
    """A new order for one product, priced from the catalog as it is now."""
    if customer.is_blocked:
        raise NotAvailable("This account cannot place orders.", code="customer_blocked")
    if quantity < 1:
        raise DomainError("Quantity must be at least 1.", code="bad_quantity")
    if not product.is_active:
        raise NotAvailable("This product is not on sale.", code="inactive")
    if product.stock is not None and product.stock < quantity:
        raise NotAvailable("This product is out of stock.", code="out_of_stock")
    for _ in range(5):
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    reference=order_reference_new(),
                    customer=customer,
                    currency=product.currency,
                    total_amount=product.price * quantity,
                )
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover - 32^8 references make five collisions in a row unthinkable
        raise DomainError("Could not allocate an order reference.")
    OrderItem.snapshot(order=order, product=product, quantity=quantity).save()
    order_event_add(
        order=order,
        kind=OrderEvent.Kind.STATUS,
        message="Order created",
        source="customer",
        to_status=order.status,
        data={"sku": product.sku, "quantity": quantity},
    )
    return order


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
        message=message or f"{from_status} → {to_status}",
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
            order_transition(order=order, to_status=Order.Status.EXPIRED, message="Invoice expired")
            expired += 1
    return expired


@transaction.atomic
def support_request_create(*, customer: Customer, text: str) -> SupportRequest:
    """A customer's question for staff, from the bot's /support."""
    text = (text or "").strip()
    if not text:
        raise DomainError("Please write your question.", code="empty")
    return SupportRequest.objects.create(customer=customer, text=text[:4000])


def order_checkout(
    *, reference: str, telegram_id: int, currency: str, total_amount: int
) -> str | None:
    """Decide Telegram's pre-checkout question: None to accept (stock now reserved), or why not.

    Asked again for the same order it answers the same way: the reservation is taken once.
    """
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(_checkout_sql(), [reference])
            lines = cursor.fetchall()
        refusal = _checkout_refusal(lines, telegram_id, currency, total_amount)
        if refusal:
            return refusal
        order_id, reserved = lines[0][0], lines[0][4]
        if not reserved and not _reserve_locked(order_id, [line[9:] for line in lines]):
            return "out_of_stock"
    return None


def _checkout_refusal(lines, telegram_id: int, currency: str, total_amount: int) -> str | None:
    if not lines:
        return "invoice_invalid"
    _, status, order_currency, order_total, _, paid_at, owner, blocked = lines[0][:8]
    if owner != telegram_id:
        return "not_your_order"
    if blocked:
        return "blocked"
    if paid_at is not None:
        return "already_paid"
    if status != Order.Status.INVOICED:
        return "order_closed"
    if (currency, total_amount) != (order_currency, order_total):
        return "amount"
    if not all(line[8] for line in lines):
        return "inactive"
    return None


def _checkout_sql() -> str:
    """The order (locked), its customer and its lines with their products, in one statement.

    Written out rather than built by the ORM: Telegram waits on this answer, and compiling
    the equivalent queryset took longer than running it (see bench/README.md).
    """
    # Table names are the models' own constants; the reference is a bound parameter.
    sql = (
        "SELECT o.id, o.status, o.currency, o.total_amount, o.stock_reserved, o.paid_at,"  # noqa: S608
        " c.telegram_id, c.is_blocked, p.is_active, i.product_id, i.quantity, p.stock"
        f" FROM {Order._meta.db_table} o"
        f" JOIN {Customer._meta.db_table} c ON c.id = o.customer_id"
        f" JOIN {OrderItem._meta.db_table} i ON i.order_id = o.id"
        f" JOIN {Product._meta.db_table} p ON p.id = i.product_id"
        " WHERE o.reference = %s ORDER BY i.id"
    )
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF o"
    return sql


@transaction.atomic
def support_request_answer(
    *, support_request: SupportRequest, answer: str, actor: AbstractBaseUser
) -> SupportRequest:
    """Staff answer a support request; the answer is sent to the customer in Telegram."""
    from botbridge import outbox  # botbridge's handlers import this module
    from botbridge.texts import text

    answer = (answer or "").strip()
    if not answer:
        raise DomainError("Write an answer first.", code="empty")
    locked = (
        SupportRequest.objects.select_for_update()
        .select_related("customer")
        .get(pk=support_request.pk)
    )
    if locked.status != SupportRequest.Status.OPEN:
        raise DomainError(
            f"Support request #{locked.pk} is already {locked.status}.", code="not_open"
        )
    locked.answer = answer
    locked.status = SupportRequest.Status.ANSWERED
    locked.answered_by = actor
    locked.answered_at = timezone.now()
    locked.save(update_fields=["answer", "status", "answered_by", "answered_at"])
    customer = locked.customer
    outbox.message_queue(
        customer=customer,
        text=text(customer.language, "support_answer", number=locked.pk, answer=answer),
        dedupe_key=f"support:{locked.pk}:answer",
    )
    return locked
