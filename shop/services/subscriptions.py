"""Stars subscriptions: started by the first payment, extended by each renewal Telegram
charges, cancelled or re-enabled (by the customer or staff, through Telegram), expired.

Each renewal is an order of its own (a copy of the first order's lines), so it is paid,
credited and reported like any other order.
"""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from shop import outbox
from shop.models import Order, OrderEvent, OrderItem, Subscription, SubscriptionEvent
from shop.services import orders
from shop.texts import text


def _event(
    subscription: Subscription,
    kind: str,
    message: str,
    *,
    actor: AbstractBaseUser | None = None,
    source: str | None = None,
    data: dict | None = None,
) -> SubscriptionEvent:
    return SubscriptionEvent.objects.create(
        subscription=subscription,
        kind=kind,
        message=message[:255],
        actor=actor,
        source=source or ("staff" if actor else "system"),
        data=data or {},
    )


@transaction.atomic
def subscription_renewal_order(*, order: Order) -> Order:
    """A renewal Telegram charged for the subscription `order` started: a new order with the
    same lines at the same prices (Telegram charges what the link said), awaiting payment."""
    first = Order.objects.get(pk=order.pk)
    subscription = first.subscription
    if subscription is not None:
        first = subscription.first_order
    renewal = orders.order_new(
        customer=first.customer,
        currency=first.currency,
        total_amount=first.total_amount,
        subscription=subscription,
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=renewal,
            product_id=item.product_id,
            sku=item.sku,
            title=item.title,
            kind=item.kind,
            unit_price=item.unit_price,
            quantity=item.quantity,
            currency=item.currency,
        )
        for item in first.items.all()
    )
    orders.order_event_add(
        order=renewal,
        kind=OrderEvent.Kind.STATUS,
        message=f"Subscription renewal of order {first.reference}",
        to_status=renewal.status,
        data={"first_order": first.reference},
    )
    orders.order_transition(
        order=renewal, to_status=Order.Status.INVOICED, message="Renewal charged by Telegram"
    )
    return renewal


@transaction.atomic
def subscription_paid(
    *, order: Order, charge_id: str, expires_at: datetime, first: bool
) -> Subscription:
    """A subscription's payment was recorded: the first starts it, a renewal extends it."""
    if first:
        item = order.items.first()
        subscription, created = Subscription.objects.get_or_create(
            first_order=order,
            defaults={
                "customer_id": order.customer_id,
                "product_id": item.product_id,
                "telegram_payment_charge_id": charge_id,
                "started_at": timezone.now(),
                "expires_at": expires_at,
            },
        )
        if created:
            Order.objects.filter(pk=order.pk).update(subscription=subscription)
            _event(
                subscription,
                SubscriptionEvent.Kind.STARTED,
                f"Started with order {order.reference}, until {_day(expires_at)}",
                data={"charge_id": charge_id},
            )
        return subscription
    subscription = Subscription.objects.select_for_update().get(pk=order.subscription_id)
    previous = subscription.expires_at
    subscription.expires_at = max(previous, expires_at)
    subscription.status = Subscription.Status.ACTIVE
    subscription.renewals += 1
    subscription.save(update_fields=["expires_at", "status", "renewals"])
    _event(
        subscription,
        SubscriptionEvent.Kind.RENEWED,
        f"Renewed with order {order.reference}, until {_day(subscription.expires_at)}",
        data={"charge_id": charge_id, "order": order.reference},
    )
    return subscription


def _day(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d")


@transaction.atomic
def subscription_set_renewal(
    *,
    subscription: Subscription,
    cancel: bool,
    actor: AbstractBaseUser | None = None,
    source: str | None = None,
    note: str = "",
) -> Subscription:
    """Cancel or re-enable the renewal: Telegram is told (editUserStarSubscription, through
    the outbox) and the change is kept with who made it."""
    locked = (
        Subscription.objects.select_for_update().select_related("customer").get(pk=subscription.pk)
    )
    if locked.is_canceled == cancel:
        raise DomainError(
            "The renewal is already cancelled." if cancel else "The renewal is already on.",
            code="unchanged",
        )
    if not cancel and locked.status == Subscription.Status.EXPIRED:
        raise DomainError("An expired subscription cannot be renewed.", code="expired")
    locked.is_canceled = cancel
    locked.cancelled_at = timezone.now() if cancel else None
    locked.save(update_fields=["is_canceled", "cancelled_at"])
    who = "staff" if actor else (source or "customer")
    event = _event(
        locked,
        SubscriptionEvent.Kind.CANCELLED if cancel else SubscriptionEvent.Kind.REENABLED,
        (f"Renewal cancelled by {who}" if cancel else f"Renewal re-enabled by {who}")
        + (f": {note}" if note else ""),
        actor=actor,
        source=who,
    )
    outbox.message_queue(
        customer=locked.customer,
        method="editUserStarSubscription",
        params={
            "user_id": locked.customer.telegram_id,
            "telegram_payment_charge_id": locked.telegram_payment_charge_id,
            "is_canceled": cancel,
        },
        text=event.message,
        dedupe_key=f"subscription:{locked.pk}:edit:{event.pk}",
    )
    lang = locked.customer.language
    outbox.message_queue(
        customer=locked.customer,
        text=text(
            lang,
            "subscription_cancelled" if cancel else "subscription_reenabled",
            title=locked.product.title_in(lang),
            date=_day(locked.expires_at),
        ),
        dedupe_key=f"subscription:{locked.pk}:notice:{event.pk}",
    )
    subscription.is_canceled, subscription.cancelled_at = locked.is_canceled, locked.cancelled_at
    return locked


def subscriptions_expire(*, now: datetime | None = None) -> int:
    """Subscriptions past their expiration date and not renewed end; each customer is told
    once."""
    now = now or timezone.now()
    ended = 0
    due = Subscription.objects.filter(status=Subscription.Status.ACTIVE, expires_at__lte=now)
    for pk in list(due.values_list("pk", flat=True)[:1000]):
        with transaction.atomic():
            locked = (
                Subscription.objects.select_for_update()
                .select_related("customer", "product")
                .get(pk=pk)
            )
            if locked.status != Subscription.Status.ACTIVE or locked.expires_at > now:
                continue
            locked.status, locked.expired_at = Subscription.Status.EXPIRED, now
            locked.save(update_fields=["status", "expired_at"])
            _event(locked, SubscriptionEvent.Kind.EXPIRED, f"Expired on {_day(locked.expires_at)}")
            lang = locked.customer.language
            outbox.message_queue(
                customer=locked.customer,
                text=text(lang, "subscription_expired", title=locked.product.title_in(lang)),
                dedupe_key=f"subscription:{locked.pk}:expired:{locked.expires_at.timestamp():.0f}",
            )
            ended += 1
    return ended
