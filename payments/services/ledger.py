"""The ledger: append-only money movements, each posted once under its idempotency key."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Sum

from core import money
from core.errors import DomainError
from payments.models import Dispute, LedgerEntry, Payment, Refund
from shop.models import Customer, Order


class LedgerConflict(DomainError):
    code = "ledger_conflict"


def ledger_post(
    *,
    customer: Customer | None,
    kind: str,
    amount: int,
    currency: str,
    idempotency_key: str,
    order: Order | None = None,
    payment: Payment | None = None,
    refund: Refund | None = None,
    dispute: Dispute | None = None,
    memo: str = "",
    created_by: AbstractBaseUser | None = None,
) -> tuple[LedgerEntry, bool]:
    """Append one ledger entry, once per idempotency key: (entry, created).

    A second post with the same key returns the first entry; with the same key but other
    figures it raises LedgerConflict, since that is a bug, not a retry.
    """
    if amount == 0:
        raise DomainError("A ledger entry moves a non-zero amount.", code="zero_amount")
    money.exponent(currency)
    try:
        # The savepoint keeps an enclosing transaction usable after a duplicate key.
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                customer=customer,
                kind=kind,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
                order=order,
                payment=payment,
                refund=refund,
                dispute=dispute,
                memo=memo[:255],
                created_by=created_by,
            )
        return entry, True
    except IntegrityError:
        entry = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
        if entry is None:
            raise
    if (entry.customer_id, entry.kind, entry.amount, entry.currency) != (
        customer.pk if customer else None,
        kind,
        amount,
        currency,
    ):
        raise LedgerConflict(f"Ledger key {idempotency_key} was already posted with other figures.")
    return entry, False


def purchase_reversal_post(
    *,
    payment: Payment,
    amount: int,
    idempotency_key: str,
    memo: str,
    refund: Refund | None = None,
    dispute: Dispute | None = None,
    created_by: AbstractBaseUser | None = None,
) -> None:
    """Money leaving (a refund, a chargeback) first gives back the purchase it paid for.

    The credit was spent on the goods (purchase entries); without this adjustment taking the
    money back would leave the customer's balance negative. Never reverses more than was
    purchased, across all refunds and chargebacks of the payment.
    """
    entries = payment.ledger_entries
    purchased = -(
        entries.filter(kind=LedgerEntry.Kind.PURCHASE).aggregate(t=Sum("amount"))["t"] or 0
    )
    reversed_already = (
        entries.filter(kind=LedgerEntry.Kind.ADJUSTMENT)
        .exclude(refund__isnull=True, dispute__isnull=True)
        .aggregate(t=Sum("amount"))["t"]
        or 0
    )
    reversal = min(amount, purchased - reversed_already)
    if reversal > 0:
        ledger_post(
            customer=payment.customer,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=reversal,
            currency=payment.currency,
            idempotency_key=idempotency_key,
            order=payment.order,
            payment=payment,
            refund=refund,
            dispute=dispute,
            memo=memo,
            created_by=created_by,
        )
