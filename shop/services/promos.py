"""Promo codes: what a code takes off, whether it may be used, and its uses.

A use is held when Telegram asks the pre-checkout question (the order is locked then, like its
stock), and counted once when the payment is recorded. The total limit is a conditional UPDATE
(`uses_held < max_uses`), so two checkouts of the last allowed use cannot both get it; a
per-customer limit locks the code's row while it counts. An order that is never paid gives
its held use back.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import money
from shop.models import Customer, Order, PromoCode, PromoRedemption

# Refusal codes; each has an `err_<code>` text in both languages (shop.texts).
REFUSALS = (
    "promo_unknown",
    "promo_inactive",
    "promo_not_started",
    "promo_expired",
    "promo_exhausted",
    "promo_used_by_you",
    "promo_not_applicable",
    "promo_too_much",
)


def promo_normalise(code: str) -> str:
    return "".join((code or "").split()).upper()[:32]


def promo_find(*, code: str) -> PromoCode | None:
    normalised = promo_normalise(code)
    return PromoCode.objects.filter(code=normalised).first() if normalised else None


def promo_discount(*, promo: PromoCode, currency: str, lines: list[tuple[int, int]]) -> int:
    """The discount on (product id, line total) lines: 0 when nothing qualifies.

    A percent is rounded down to the currency's minor unit (whole Stars for XTR); a fixed
    amount applies in its own currency only, and never exceeds what it applies to.
    """
    allowed = set(promo.products.values_list("pk", flat=True))
    base = sum(total for product_id, total in lines if not allowed or product_id in allowed)
    if promo.kind == PromoCode.Kind.PERCENT:
        return base * (promo.percent or 0) // 100
    if promo.currency != currency:
        return 0
    return min(promo.amount or 0, base)


def _window_refusal(promo: PromoCode, now: datetime) -> str | None:
    if not promo.is_active:
        return "promo_inactive"
    if promo.valid_from and now < promo.valid_from:
        return "promo_not_started"
    if promo.valid_until and now >= promo.valid_until:
        return "promo_expired"
    return None


def _uses_by(promo: PromoCode, customer_id: int, order_id: int | None) -> int:
    held = PromoRedemption.objects.filter(
        promo_code=promo,
        customer_id=customer_id,
        status__in=(PromoRedemption.Status.HELD, PromoRedemption.Status.USED),
    )
    return held.exclude(order_id=order_id).count() if order_id else held.count()


def promo_refusal(
    *,
    promo: PromoCode,
    customer: Customer,
    currency: str,
    lines: list[tuple[int, int]],
    now: datetime | None = None,
) -> str | None:
    """Why this code cannot go on these lines now (a refusal code), or None."""
    now = now or timezone.now()
    refusal = _window_refusal(promo, now)
    if refusal:
        return refusal
    if promo.max_uses is not None and promo.uses_held >= promo.max_uses:
        return "promo_exhausted"
    if (
        promo.max_uses_per_customer is not None
        and _uses_by(promo, customer.pk, None) >= promo.max_uses_per_customer
    ):
        return "promo_used_by_you"
    discount = promo_discount(promo=promo, currency=currency, lines=lines)
    if discount <= 0:
        return "promo_not_applicable"
    limits = money.amount_limits(currency)
    if limits and sum(total for _, total in lines) - discount < limits[0]:
        return "promo_too_much"
    return None


def promo_hold(
    *,
    order_id: int,
    promo_id: int,
    customer_id: int,
    currency: str,
    discount_amount: int,
    lines: list[tuple[int, int]],
    now=None,
) -> str | None:
    """Pre-checkout: hold one use of the order's code (the caller holds the order locked).

    `lines` are the order's (product id, line total), as pre-checkout already read them.
    Asked again for the same order it answers the same way and holds nothing more.
    Returns a refusal code, or None with the use held.
    """
    existing = PromoRedemption.objects.filter(order_id=order_id).first()
    if existing is not None and existing.status != PromoRedemption.Status.RELEASED:
        return None
    promo = PromoCode.objects.get(pk=promo_id)
    if promo.max_uses_per_customer is not None:
        # Serialises checkouts with this code while they count the customer's uses.
        promo = PromoCode.objects.select_for_update().get(pk=promo_id)
    refusal = _window_refusal(promo, now or timezone.now())
    if refusal:
        return refusal
    if (
        promo.max_uses_per_customer is not None
        and _uses_by(promo, customer_id, order_id) >= promo.max_uses_per_customer
    ):
        return "promo_used_by_you"
    if promo_discount(promo=promo, currency=currency, lines=lines) <= 0:
        return "promo_not_applicable"  # staff narrowed the code since the invoice
    taken = PromoCode.objects.filter(pk=promo_id)
    if promo.max_uses is not None:
        taken = taken.filter(uses_held__lt=promo.max_uses)
    if not taken.update(uses_held=F("uses_held") + 1):
        return "promo_exhausted"
    if existing is not None:
        PromoRedemption.objects.filter(pk=existing.pk).update(status=PromoRedemption.Status.HELD)
    else:
        PromoRedemption.objects.create(
            promo_code_id=promo_id,
            order_id=order_id,
            customer_id=customer_id,
            discount_amount=discount_amount,
            currency=currency,
        )
    return None


def promo_release(*, order: Order) -> bool:
    """An order that will never be paid gives its held use back (once)."""
    released = PromoRedemption.objects.filter(
        order_id=order.pk, status=PromoRedemption.Status.HELD
    ).update(status=PromoRedemption.Status.RELEASED)
    if released:
        PromoCode.objects.filter(pk=order.promo_code_id, uses_held__gt=0).update(
            uses_held=F("uses_held") - 1
        )
    return bool(released)


@transaction.atomic
def promo_use(*, order: Order) -> tuple[bool, bool]:
    """The order's payment was recorded: its code's use counts, once. (counted, over_limit)

    A payment whose checkout held no use (it came without Telegram's pre-checkout) still
    counts, since the money moved; `over_limit` says it went past the code's limit.
    """
    if order.promo_code_id is None:
        return False, False
    now = timezone.now()
    over_limit = False
    used = PromoRedemption.objects.filter(
        order_id=order.pk, status=PromoRedemption.Status.HELD
    ).update(status=PromoRedemption.Status.USED, used_at=now)
    if not used:
        redemption = PromoRedemption.objects.filter(order_id=order.pk).first()
        if redemption is not None and redemption.status == PromoRedemption.Status.USED:
            return False, False
        promo = PromoCode.objects.select_for_update().get(pk=order.promo_code_id)
        over_limit = promo.max_uses is not None and promo.uses_held >= promo.max_uses
        if redemption is None:
            PromoRedemption.objects.create(
                promo_code=promo,
                order=order,
                customer_id=order.customer_id,
                discount_amount=order.discount_amount,
                currency=order.currency,
                status=PromoRedemption.Status.USED,
                used_at=now,
            )
        else:
            PromoRedemption.objects.filter(pk=redemption.pk).update(
                status=PromoRedemption.Status.USED, used_at=now
            )
        PromoCode.objects.filter(pk=promo.pk).update(uses_held=F("uses_held") + 1)
    PromoCode.objects.filter(pk=order.promo_code_id).update(times_used=F("times_used") + 1)
    return True, over_limit
