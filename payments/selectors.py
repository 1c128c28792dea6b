"""Reads of money for the bot, the admin and reports."""

from django.db.models import Sum

from payments.models import Dispute, LedgerEntry, Payment
from shop.models import Customer


def customer_balances(*, customer: Customer) -> dict[str, int]:
    """The customer's balance per currency: the sum of their ledger entries."""
    rows = (
        # Fees are the merchant's cost, booked beside the customer's entries, not owed by them.
        LedgerEntry.objects.filter(customer=customer)
        .exclude(kind=LedgerEntry.Kind.FEE)
        .values("currency")
        .annotate(total=Sum("amount"))
        .order_by("currency")
    )
    return {row["currency"]: row["total"] for row in rows if row["total"]}


def payment_open_steps(*, payment: Payment) -> dict[str, bool]:
    """Which staff steps this payment's state allows (the services refuse the others)."""
    statuses = set(payment.disputes.values_list("status", flat=True))
    charged_back = bool(statuses & {Dispute.Status.LOST, Dispute.Status.ACCEPTED})
    open_dispute = bool(statuses & set(Dispute.OPEN_STATUSES))
    return {
        "refund": payment.refundable_amount > 0 and not charged_back and not open_dispute,
        "dispute": payment.refundable_amount > 0 and not (statuses - {Dispute.Status.WON}),
    }
