"""Reads of money for the bot, the admin and reports."""

from django.db.models import Sum

from payments.models import LedgerEntry
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
