"""Disputes and chargebacks: staff open them from a provider notice and work them to an end.

open → under_review (evidence submitted) → won or lost; or accepted without a fight.
Lost or accepted: the chargeback (and its fee) go into the ledger, the purchase it paid for is
reversed, the order is charged back and the customer flagged. Every step is an OrderEvent
with the staff member who took it.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core import money
from core.errors import DomainError
from payments.models import Dispute, LedgerEntry, Payment
from payments.services.ledger import ledger_post, purchase_reversal_post
from shop import alerts
from shop import services as shop_services
from shop.models import Order, OrderEvent

DUE_SOON = timedelta(hours=48)


def dispute_open(
    *,
    payment: Payment,
    reason: str,
    amount: int,
    evidence_due_by: datetime,
    provider_reference: str = "",
    assignee: AbstractBaseUser | None = None,
    notes: str = "",
    actor: AbstractBaseUser | None = None,
) -> Dispute:
    """Open a dispute on a payment (from the provider's notice)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if reason not in Dispute.Reason.values:
            raise DomainError(f"Unknown dispute reason {reason!r}.", code="bad_reason")
        disputable = payment.amount - payment.refunded_amount
        if amount <= 0 or amount > disputable:
            raise DomainError(
                "The disputed amount must be positive and at most "
                f"{money.format_amount(disputable, payment.currency)} (paid, less refunds).",
                code="bad_amount",
            )
        if payment.disputes.exclude(status=Dispute.Status.WON).exists():
            raise DomainError("This payment already has a dispute.", code="already_disputed")
        now = timezone.now()
        dispute = Dispute.objects.create(
            payment=payment,
            order=payment.order,
            reason=reason,
            amount=amount,
            currency=payment.currency,
            provider_reference=provider_reference.strip(),
            opened_at=now,
            evidence_due_by=evidence_due_by,
            assignee=assignee,
            notes=notes,
            is_due_soon=evidence_due_by - now <= DUE_SOON,
            is_overdue=evidence_due_by <= now,
        )
        shown = money.format_amount(amount, payment.currency)
        message = f"Dispute #{dispute.pk} opened: {shown}, {dispute.get_reason_display()}"
        _order_step(dispute, Order.Status.DISPUTED, message, actor)
        alerts.staff_alert(
            key=f"dispute:{dispute.pk}:opened",
            text=f"New dispute #{dispute.pk}: {shown}, {dispute.get_reason_display()}; "
            f"evidence due {timezone.localtime(evidence_due_by):%Y-%m-%d %H:%M}.",
            path=f"/admin/payments/dispute/{dispute.pk}/change/",
        )
    return dispute


def dispute_submit_evidence(
    *, dispute: Dispute, actor: AbstractBaseUser | None = None, notes: str = ""
) -> Dispute:
    with transaction.atomic():
        dispute = _locked(dispute, allowed=(Dispute.Status.OPEN,), step="submit evidence for")
        dispute.status = Dispute.Status.UNDER_REVIEW
        dispute.evidence_submitted_at = timezone.now()
        dispute.is_due_soon = dispute.is_overdue = False
        dispute.notes = _append(dispute.notes, notes)
        dispute.save(
            update_fields=["status", "evidence_submitted_at", "is_due_soon", "is_overdue", "notes"]
        )
        _order_step(dispute, None, f"Dispute #{dispute.pk}: evidence submitted", actor)
    return dispute


def dispute_win(
    *, dispute: Dispute, actor: AbstractBaseUser | None = None, notes: str = ""
) -> Dispute:
    """The provider decided for the merchant: the order goes back to where it was."""
    with transaction.atomic():
        dispute = _locked(dispute, allowed=Dispute.OPEN_STATUSES, step="win")
        _resolve(dispute, Dispute.Status.WON, notes)
        order = dispute.order
        back_to = None
        if order is not None:
            order = Order.objects.get(pk=order.pk)
            if order.status == Order.Status.DISPUTED:
                back_to = order.status_before_dispute or Order.Status.PAID
        _order_step(dispute, back_to, f"Dispute #{dispute.pk} won", actor)
    return dispute


def dispute_lose(
    *,
    dispute: Dispute,
    fee: int = 0,
    block_customer: bool = False,
    actor: AbstractBaseUser | None = None,
    notes: str = "",
) -> Dispute:
    """The provider took the money back: the chargeback goes into the ledger."""
    return _charge_back(dispute, Dispute.Status.LOST, fee, block_customer, actor, notes)


def dispute_accept(
    *,
    dispute: Dispute,
    fee: int = 0,
    block_customer: bool = False,
    actor: AbstractBaseUser | None = None,
    notes: str = "",
) -> Dispute:
    """The merchant does not contest: a chargeback like a lost dispute."""
    return _charge_back(dispute, Dispute.Status.ACCEPTED, fee, block_customer, actor, notes)


def _charge_back(dispute, status, fee, block_customer, actor, notes) -> Dispute:
    if fee < 0:
        raise DomainError("The fee cannot be negative.", code="bad_fee")
    with transaction.atomic():
        dispute = _locked(dispute, allowed=Dispute.OPEN_STATUSES, step=status.label.lower())
        dispute.fee = fee
        _resolve(dispute, status, notes, extra_fields=["fee"])
        payment = dispute.payment
        customer = payment.customer
        common = {
            "customer": customer,
            "currency": dispute.currency,
            "order": dispute.order,
            "payment": payment,
            "dispute": dispute,
            "created_by": actor,
        }
        ledger_post(
            kind=LedgerEntry.Kind.CHARGEBACK,
            amount=-dispute.amount,
            idempotency_key=f"dispute:{dispute.pk}:chargeback",
            memo=f"Chargeback, dispute #{dispute.pk}",
            **common,
        )
        purchase_reversal_post(
            payment=payment,
            amount=dispute.amount,
            idempotency_key=f"dispute:{dispute.pk}:purchase-reversal",
            memo=f"Purchase reversed by chargeback, dispute #{dispute.pk}",
            dispute=dispute,
            created_by=actor,
        )
        if fee:
            # The provider's fee is the merchant's cost; it is booked with the order so that
            # settlement reports show it, and is not part of the customer's balance.
            ledger_post(
                kind=LedgerEntry.Kind.FEE,
                amount=-fee,
                idempotency_key=f"dispute:{dispute.pk}:fee",
                memo=f"Chargeback fee, dispute #{dispute.pk}",
                **common,
            )
        reason = f"Chargeback on dispute #{dispute.pk}"
        shop_services.customer_flag(customer=customer, reason=reason, actor=actor)
        if block_customer:
            shop_services.customer_set_blocked(
                customer=customer, is_blocked=True, actor=actor, note=reason
            )
        shown = money.format_amount(dispute.amount, dispute.currency)
        message = f"Dispute #{dispute.pk} {status.label.lower()}: {shown} charged back"
        if fee:
            message += f", fee {money.format_amount(fee, dispute.currency)}"
        if block_customer:
            message += "; customer blocked"
        _order_step(dispute, Order.Status.CHARGED_BACK, message, actor)
    return dispute


def disputes_remind(*, now: datetime | None = None) -> dict[str, int]:
    """Hourly: flag disputes whose evidence is due within 48 hours and email their assignee;
    mark the ones past due overdue (and email them too). Each is told about once."""
    now = now or timezone.now()
    waiting = Dispute.objects.filter(status=Dispute.Status.OPEN).select_related(
        "assignee", "payment"
    )
    due_soon = list(
        waiting.filter(evidence_due_by__gt=now, evidence_due_by__lte=now + DUE_SOON).filter(
            is_due_soon=False
        )
    )
    overdue = list(waiting.filter(evidence_due_by__lte=now, is_overdue=False))
    for dispute in due_soon:
        Dispute.objects.filter(pk=dispute.pk).update(is_due_soon=True, reminded_at=now)
        _email(dispute, f"evidence due {_left(dispute.evidence_due_by - now)} from now")
    for dispute in overdue:
        Dispute.objects.filter(pk=dispute.pk).update(
            is_overdue=True, is_due_soon=True, reminded_at=now
        )
        _email(dispute, "evidence is OVERDUE")
    # The staff chat hears of each deadline twice: 72 and 24 hours before (once each).
    for hours in (72, 24):
        for dispute in waiting.filter(
            evidence_due_by__gt=now, evidence_due_by__lte=now + timedelta(hours=hours)
        ):
            alerts.staff_alert(
                key=f"dispute:{dispute.pk}:due-{hours}h",
                text=f"Dispute #{dispute.pk}: evidence due within {hours} hours "
                f"({_left(dispute.evidence_due_by - now)} left).",
                path=f"/admin/payments/dispute/{dispute.pk}/change/",
            )
    return {"due_soon": len(due_soon), "overdue": len(overdue)}


def time_left(dispute: Dispute, now: datetime | None = None) -> str:
    if not dispute.is_open:
        return "—"
    delta = dispute.evidence_due_by - (now or timezone.now())
    return _left(delta) if delta.total_seconds() > 0 else f"overdue by {_left(-delta)}"


def _left(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return (
        f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h {delta.seconds // 60 % 60}m"
    )


def _email(dispute: Dispute, what: str) -> None:
    recipient = getattr(dispute.assignee, "email", "")
    if not recipient:
        return
    shown = money.format_amount(dispute.amount, dispute.currency)
    send_mail(
        subject=f"[{settings.PRODUCT_NAME}] Dispute #{dispute.pk}: {what}",
        message=(
            f"Dispute #{dispute.pk} on payment {dispute.payment.telegram_payment_charge_id} "
            f"({shown}, {dispute.get_reason_display()}): {what}.\n"
            f"Evidence due by {dispute.evidence_due_by:%Y-%m-%d %H:%M %Z}.\n"
        ),
        from_email=None,
        recipient_list=[recipient],
    )


def _locked(dispute: Dispute, *, allowed, step: str) -> Dispute:
    locked = (
        Dispute.objects.select_for_update().select_related("payment__customer").get(pk=dispute.pk)
    )
    if locked.status not in allowed:
        raise DomainError(
            f"Dispute #{locked.pk} is {locked.get_status_display().lower()}: cannot {step} it.",
            code="bad_step",
        )
    return locked


def _resolve(dispute: Dispute, status: str, notes: str, extra_fields=()) -> None:
    dispute.status = status
    dispute.resolved_at = timezone.now()
    dispute.is_due_soon = dispute.is_overdue = False
    dispute.notes = _append(dispute.notes, notes)
    dispute.save(
        update_fields=["status", "resolved_at", "is_due_soon", "is_overdue", "notes", *extra_fields]
    )


def _append(notes: str, more: str) -> str:
    more = (more or "").strip()
    return f"{notes}\n{more}".strip() if more else notes


def _order_step(dispute: Dispute, to_status: str | None, message: str, actor) -> None:
    """The step in the order's audit trail, moving its status where the table allows."""
    if dispute.order_id is None:
        return
    order = Order.objects.get(pk=dispute.order_id)
    data = {"dispute_id": dispute.pk}
    if to_status and order.can_transition_to(to_status):
        shop_services.order_transition(
            order=order, to_status=to_status, actor=actor, message=message, data=data
        )
    else:
        shop_services.order_event_add(
            order=order, kind=OrderEvent.Kind.DISPUTE, message=message, actor=actor, data=data
        )
