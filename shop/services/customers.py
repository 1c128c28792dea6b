"""Customers: first contact from Telegram, terms, blocking and flags, with their history."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from shop.models import (
    Customer,
    CustomerEvent,
)


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


def customer_event_add(
    *,
    customer: Customer,
    kind: str,
    message: str,
    actor: AbstractBaseUser | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> CustomerEvent:
    """Append a row to the customer's history; callers are inside the change's transaction."""
    return CustomerEvent.objects.create(
        customer=customer,
        kind=kind,
        message=message[:255],
        note=note[:2000],
        actor=actor,
        source="staff" if actor else "system",
        data=data or {},
    )


@transaction.atomic
def customer_set_blocked(
    *,
    customer: Customer,
    is_blocked: bool,
    actor: AbstractBaseUser | None = None,
    note: str = "",
) -> Customer:
    """Block or unblock a customer, kept in their history with who did it and why.

    A blocked customer cannot order, and their payments are refused at checkout.
    """
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.is_blocked != is_blocked:
        locked.is_blocked = is_blocked
        locked.save(update_fields=["is_blocked", "updated_at"])
        customer_event_add(
            customer=locked,
            kind=CustomerEvent.Kind.BLOCKED if is_blocked else CustomerEvent.Kind.UNBLOCKED,
            message="Blocked" if is_blocked else "Unblocked",
            actor=actor,
            note=note,
        )
    customer.is_blocked = is_blocked
    return locked


@transaction.atomic
def customer_flag(
    *, customer: Customer, reason: str, actor: AbstractBaseUser | None = None
) -> Customer:
    """Mark a customer for staff attention (a chargeback, say), with the reason."""
    Customer.objects.filter(pk=customer.pk).update(
        is_flagged=True, flag_reason=reason[:255], updated_at=timezone.now()
    )
    customer.is_flagged, customer.flag_reason = True, reason[:255]
    customer_event_add(
        customer=customer, kind=CustomerEvent.Kind.FLAGGED, message=reason, actor=actor
    )
    return customer


def customer_mark_bot_blocked(*, customer_id: int) -> None:
    """Telegram answered 403: the customer blocked the bot (cleared when they write again)."""
    Customer.objects.filter(pk=customer_id, has_blocked_bot=False).update(
        has_blocked_bot=True, updated_at=timezone.now()
    )


def customer_prompt_support(*, customer: Customer) -> None:
    """A bare /support: the customer's next message becomes their support request."""
    now = timezone.now()
    Customer.objects.filter(pk=customer.pk).update(support_prompted_at=now, updated_at=now)
    customer.support_prompted_at = now
