"""Telegram Stars: the bot's transactions as Telegram recorded them, matched to our books.

botbridge pages through getStarTransactions and hands each page here. Each transaction is
stored once (by id and direction: a refund shares its payment's id). Then:
- a sale (incoming, from a user, for an invoice) matches the payment with that charge id;
- a refund (outgoing, to a user) matches our refund of that payment: a pending one is
  completed by it (Telegram may have answered CHARGE_ALREADY_REFUNDED: this is the proof),
  and one we never made is recorded as an external refund, with its ledger entries, once;
- an outgoing movement to someone else with a sale's id is a Stars chargeback;
- the rest (Fragment withdrawals, Telegram Ads, paid broadcasts, affiliate commissions...)
  are the merchant's own items, posted to the ledger once as provider items, so that the
  settlement shows them and the Stars balance explains itself.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from core import money
from core.errors import DomainError
from payments.models import (
    Difference,
    LedgerEntry,
    Payment,
    Refund,
    StarBalanceSnapshot,
    StarTransaction,
)
from payments.models.reconciliation import NANOS
from payments.services import recording, refunds
from payments.services.differences import Found, SyncResult, difference_close, differences_sync
from payments.services.ledger import ledger_post, purchase_reversal_post
from shop import services as shop_services
from shop.models import Order, PaymentMode
from shop.payload import payload_reference

logger = logging.getLogger(__name__)

STARS = money.STARS
Kind = StarTransaction.Kind
# Kinds that are the merchant's own money at Telegram, not a customer's.
PROVIDER_KINDS = (Kind.WITHDRAWAL, Kind.ADS, Kind.API_FEE, Kind.AFFILIATE, Kind.USER_OTHER,
                  Kind.CHAT, Kind.OTHER)  # fmt: skip
_PARTNER_KINDS = {
    "fragment": Kind.WITHDRAWAL,
    "telegram_ads": Kind.ADS,
    "telegram_api": Kind.API_FEE,
    "affiliate_program": Kind.AFFILIATE,
    "chat": Kind.CHAT,
}
STARS_KINDS = (Difference.Kind.MISSING_HERE, Difference.Kind.MISSING_THERE,
               Difference.Kind.AMOUNT, Difference.Kind.EXTERNAL_REFUND,
               Difference.Kind.REFUND_NOT_MADE, Difference.Kind.CHARGEBACK)  # fmt: skip


def classify(tx: dict[str, Any]) -> dict[str, Any]:
    """A StarTransaction from the Bot API as the fields we keep, classified by partner type."""
    incoming = "source" in tx
    partner = (tx.get("source") if incoming else tx.get("receiver")) or {}
    partner_type = str(partner.get("type", ""))
    transaction_type = str(partner.get("transaction_type", ""))
    if partner_type == "user":
        # Older answers carry no transaction_type: an invoice payment was the only kind.
        sale = transaction_type in ("", "invoice_payment")
        kind = (Kind.SALE if incoming else Kind.REFUND) if sale else Kind.USER_OTHER
    else:
        kind = _PARTNER_KINDS.get(partner_type, Kind.OTHER)
    return {
        "transaction_id": str(tx["id"]),
        "direction": StarTransaction.Direction.IN if incoming else StarTransaction.Direction.OUT,
        "amount": int(tx["amount"]),
        "nanostar_amount": int(tx.get("nanostar_amount") or 0),
        "date": datetime.fromtimestamp(int(tx["date"]), tz=UTC),
        "partner_type": partner_type[:32],
        "transaction_type": transaction_type[:32],
        "user_id": (partner.get("user") or {}).get("id"),
        "invoice_payload": str(partner.get("invoice_payload", ""))[:255],
        "kind": kind,
        "raw": tx,
    }


def star_transactions_store(transactions: list[dict[str, Any]], *, first_position: int) -> int:
    """Store a run of consecutive transactions (Telegram's list from `first_position`) once.

    Returns how many were new. A transaction already stored keeps its row.
    """
    rows = [
        StarTransaction(position=first_position + i, **classify(tx))
        for i, tx in enumerate(transactions)
    ]
    if not rows:
        return 0
    before = StarTransaction.objects.filter(
        transaction_id__in=[r.transaction_id for r in rows]
    ).values_list("transaction_id", "direction")
    known = set(before)
    new = [r for r in rows if (r.transaction_id, r.direction) not in known]
    StarTransaction.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
    return len(new)


def stored_count() -> int:
    return StarTransaction.objects.count()


def stored_ids_at(positions: Iterable[int]) -> dict[int, tuple[str, str]]:
    """The stored transactions at these places in Telegram's list (to check nothing moved)."""
    return {
        p: (t, d)
        for p, t, d in StarTransaction.objects.filter(position__in=list(positions)).values_list(
            "position", "transaction_id", "direction"
        )
    }


def balance_snapshot_record(*, amount: int, nanostar_amount: int = 0) -> StarBalanceSnapshot:
    """getMyStarBalance beside what the stored transactions add up to; kept when it changed."""
    seen = stored_count()
    computed = balance_nanos()
    last = StarBalanceSnapshot.objects.first()
    if last and (last.amount, last.nanostar_amount, last.transactions_seen) == (
        amount,
        nanostar_amount,
        seen,
    ):
        return last
    return StarBalanceSnapshot.objects.create(
        amount=amount, nanostar_amount=nanostar_amount, transactions_seen=seen,
        computed_nanos=computed,
    )  # fmt: skip


def balance_nanos(*, before: datetime | None = None) -> int:
    """What the stored transactions add up to (before a moment, or all), in nanostars."""
    qs = StarTransaction.objects.all()
    if before is not None:
        qs = qs.filter(date__lt=before)
    total = 0
    for direction, sign in ((StarTransaction.Direction.IN, 1), (StarTransaction.Direction.OUT, -1)):
        sums = qs.filter(direction=direction).aggregate(s=Sum("amount"), n=Sum("nanostar_amount"))
        total += sign * ((sums["s"] or 0) * NANOS + (sums["n"] or 0))
    return total


def stars_match() -> dict[str, int]:
    """Link what is not linked yet; record refunds and chargebacks; post provider items.

    Touches only transactions not handled before, so a second run has almost nothing to do.
    """
    by_charge = Payment.objects.filter(
        provider=Payment.Provider.STARS, telegram_payment_charge_id=OuterRef("transaction_id")
    ).values("pk")[:1]
    unlinked = StarTransaction.objects.filter(payment__isnull=True).filter(
        Exists(by_charge), kind__in=(Kind.SALE, Kind.REFUND, Kind.OTHER)
    )
    linked = unlinked.update(payment=Subquery(by_charge))
    # Outgoing, with a sale's id, to someone other than the customer: a chargeback.
    chargebacks = StarTransaction.objects.filter(
        kind=Kind.OTHER, direction=StarTransaction.Direction.OUT, payment__isnull=False
    ).update(kind=Kind.CHARGEBACK)
    counts = {"linked": linked, "refunds": 0, "external_refunds": 0, "chargebacks": 0}
    for tx in StarTransaction.objects.filter(
        kind=Kind.REFUND, refund__isnull=True, payment__isnull=False
    ).select_related("payment"):
        refund, external = _refund_for(tx)
        if refund is not None:
            StarTransaction.objects.filter(pk=tx.pk).update(refund=refund)
            counts["external_refunds" if external else "refunds"] += 1
    counts["chargebacks"] = chargebacks + _chargebacks_post()
    counts["provider_items"] = _provider_items_post()
    return counts


def _refund_for(tx: StarTransaction) -> tuple[Refund | None, bool]:
    """Our refund that this outgoing transaction made, or the external one it is."""
    payment = tx.payment
    ours = payment.refunds.exclude(status=Refund.Status.CANCELLED).order_by("pk").first()
    if ours is not None and ours.source == Refund.Source.STAFF:
        # Telegram has it: the refund was made (CHARGE_ALREADY_REFUNDED is proven here).
        confirmed = refunds.refund_confirmed_by_provider(
            refund=ours, external_reference=tx.transaction_id
        )
        # Settled by this transaction, whatever day the run's window starts on.
        difference_close(
            key=f"stars:refund_not_made:{ours.pk}",
            resolution=f"Telegram's list now has the refund ({tx.transaction_id}).",
            star_transaction=tx,
        )
        return confirmed, False
    if ours is not None:
        return ours, True
    refund = refunds.refund_record_external(
        telegram_payment_charge_id=tx.transaction_id,
        amount=tx.amount,
        currency=STARS,
        raw={"star_transaction": tx.raw},
    )
    return refund, True


def _chargebacks_post() -> int:
    """A Stars chargeback takes the money back: a chargeback entry and the purchase reversed."""
    posted = 0
    for tx in StarTransaction.objects.filter(kind=Kind.CHARGEBACK).select_related(
        "payment__customer", "payment__order"
    ):
        payment = tx.payment
        with transaction.atomic():
            _, created = ledger_post(
                customer=payment.customer,
                kind=LedgerEntry.Kind.CHARGEBACK,
                amount=-tx.amount,
                currency=STARS,
                idempotency_key=f"stars:{tx.transaction_id}:{tx.direction}",
                order=payment.order,
                payment=payment,
                memo=f"Stars chargeback at Telegram ({tx.date:%Y-%m-%d})",
            )
            if created:
                purchase_reversal_post(
                    payment=payment,
                    amount=tx.amount,
                    idempotency_key=f"stars:{tx.transaction_id}:purchase-reversal",
                    memo="Purchase reversed by a Stars chargeback",
                )
                posted += 1
    return posted


def _provider_items_post() -> int:
    """The merchant's own movements at Telegram, each once (the key is its id and direction)."""
    keyed = {}
    items = StarTransaction.objects.filter(kind__in=PROVIDER_KINDS, amount__gt=0).values_list(
        "transaction_id", "direction", "amount", "kind", "date"
    )
    for tx_id, direction, amount, kind, date in items.iterator(chunk_size=5000):
        key = f"stars:{tx_id}:{direction}"
        keyed[key] = LedgerEntry(
            customer=None,
            kind=LedgerEntry.Kind.PROVIDER,
            amount=amount if direction == StarTransaction.Direction.IN else -amount,
            currency=STARS,
            idempotency_key=key,
            memo=f"{Kind(kind).label} at Telegram ({date:%Y-%m-%d})",
        )
    if not keyed:
        return 0
    posted = set(
        LedgerEntry.objects.filter(idempotency_key__in=list(keyed)).values_list(
            "idempotency_key", flat=True
        )
    )
    new = [entry for key, entry in keyed.items() if key not in posted]
    LedgerEntry.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
    return len(new)


def stars_differences(*, start: datetime, end: datetime, horizon: datetime) -> SyncResult:
    """What differs in [start, end). `horizon`: Telegram's list was read up to then, so a
    payment recorded later cannot be missing from it yet."""
    found: list[Found] = []
    window = Q(date__gte=start, date__lt=end)
    sales = StarTransaction.objects.filter(window, kind=Kind.SALE)
    for tx in sales.filter(payment__isnull=True).iterator():
        found.append(
            Found(
                key=f"stars:missing_here:{tx.transaction_id}",
                kind=Difference.Kind.MISSING_HERE,
                occurred_at=tx.date,
                currency=STARS,
                their_amount=tx.amount,
                detail=f"Paid by Telegram user {tx.user_id}; "
                + (
                    f"invoice payload {tx.invoice_payload}."
                    if tx.invoice_payload
                    else "no invoice payload."
                ),  # fmt: skip
                star_transaction_id=tx.pk,
            )
        )
    differ = sales.filter(payment__isnull=False).exclude(payment__amount=F("amount"))
    for tx in differ.select_related("payment"):
        found.append(
            Found(
                key=f"stars:amount:{tx.transaction_id}",
                kind=Difference.Kind.AMOUNT,
                occurred_at=tx.date,
                currency=STARS,
                our_amount=tx.payment.amount,
                their_amount=tx.amount,
                payment_id=tx.payment_id,
                star_transaction_id=tx.pk,
            )
        )
    sold = StarTransaction.objects.filter(
        kind=Kind.SALE, transaction_id=OuterRef("telegram_payment_charge_id")
    )
    absent = (
        Payment.objects.filter(
            provider=Payment.Provider.STARS, paid_at__gte=start, paid_at__lt=min(end, horizon)
        )
        .exclude(mode=PaymentMode.TEST)
        .filter(~Exists(sold))
    )
    for payment in absent.iterator():
        found.append(
            Found(
                key=f"stars:missing_there:{payment.pk}",
                kind=Difference.Kind.MISSING_THERE,
                occurred_at=payment.paid_at,
                currency=STARS,
                our_amount=payment.amount,
                detail=f"Charge {payment.telegram_payment_charge_id} is not in Telegram's list.",
                payment_id=payment.pk,
            )
        )
    found += _refund_differences(start=start, end=end, horizon=horizon)
    for tx in StarTransaction.objects.filter(window, kind=Kind.CHARGEBACK):
        found.append(
            Found(
                key=f"stars:chargeback:{tx.transaction_id}",
                kind=Difference.Kind.CHARGEBACK,
                occurred_at=tx.date,
                currency=STARS,
                their_amount=tx.amount,
                detail="Telegram took these Stars back (the buyer's chargeback at the store).",
                payment_id=tx.payment_id,
                star_transaction_id=tx.pk,
            )
        )
    return differences_sync(
        provider=Payment.Provider.STARS, start=start, end=end, found=found, kinds=STARS_KINDS
    )


def _refund_differences(*, start: datetime, end: datetime, horizon: datetime) -> list[Found]:
    found = []
    external = Refund.objects.filter(
        currency=STARS, source=Refund.Source.TELEGRAM, created_at__gte=start, created_at__lt=end
    ).select_related("payment")
    for refund in external:
        found.append(
            Found(
                key=f"stars:external_refund:{refund.pk}",
                kind=Difference.Kind.EXTERNAL_REFUND,
                occurred_at=refund.created_at,
                currency=STARS,
                their_amount=refund.amount,
                detail=f"Refunded at Telegram, not from the back office; recorded as refund "
                f"#{refund.pk}.",
                payment_id=refund.payment_id,
                refund_id=refund.pk,
            )
        )
    made = StarTransaction.objects.filter(
        kind=Kind.REFUND, transaction_id=OuterRef("payment__telegram_payment_charge_id")
    )
    # Ours, done before Telegram's list was read (pending ones: for an hour), not in it. A
    # refund still pending is a problem now however long ago it was asked for: the window
    # does not hide it (it once did, for a refund asked for the day before the window).
    ours = (
        Refund.objects.filter(currency=STARS, source=Refund.Source.STAFF)
        .filter(
            Q(
                status=Refund.Status.COMPLETED,
                completed_at__gte=start,
                completed_at__lt=min(end, horizon),
            )
            | Q(
                status=Refund.Status.PENDING,
                created_at__lt=min(end, timezone.now() - timedelta(hours=1)),
            )
        )  # fmt: skip
        .filter(~Exists(made))
        .select_related("payment")
    )
    for refund in ours:
        found.append(
            Found(
                key=f"stars:refund_not_made:{refund.pk}",
                kind=Difference.Kind.REFUND_NOT_MADE,
                occurred_at=refund.completed_at or refund.created_at,
                currency=STARS,
                our_amount=refund.amount,
                detail=f"Refund #{refund.pk} is {refund.get_status_display().lower()} here; "
                "Telegram's list has no refund of this charge.",
                payment_id=refund.payment_id,
                refund_id=refund.pk,
            )
        )
    return found


def balance_difference_sync(snapshot: StarBalanceSnapshot) -> SyncResult:
    """Telegram's balance against the sum of its own transactions, to the nanostar."""
    found = []
    if not snapshot.adds_up:
        reported, computed = snapshot.reported_nanos, snapshot.computed_nanos
        found.append(
            Found(
                key=f"stars:balance:{reported}:{computed}",
                kind=Difference.Kind.BALANCE,
                occurred_at=snapshot.taken_at,
                currency=STARS,
                our_amount=computed // NANOS,
                their_amount=reported // NANOS,
                detail=f"getMyStarBalance says {stars_text(reported)}; the "
                f"{snapshot.transactions_seen} transactions add up to {stars_text(computed)}.",
            )
        )
    return differences_sync(
        provider=Payment.Provider.STARS,
        start=datetime.min.replace(tzinfo=UTC),
        end=datetime.max.replace(tzinfo=UTC),
        found=found,
        kinds=[Difference.Kind.BALANCE],
    )


def stars_text(nanos: int) -> str:
    """Nanostars as people read them, like every amount here: '1,250 XTR', '-3.5 XTR'."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), NANOS)
    tail = f".{frac:09d}".rstrip("0") if frac else ""
    return f"{sign}{whole:,}{tail} XTR"


def star_payment_record(
    *, star_transaction: StarTransaction, actor: AbstractBaseUser | None = None
) -> Payment:
    """Staff record a payment Telegram made and the bot never heard of (a lost update).

    It goes through the same recording as a successful_payment: matched to its order by the
    invoice payload, credited once by the worker, and the difference is closed with who did it.
    """
    with transaction.atomic():
        tx = StarTransaction.objects.select_for_update().get(pk=star_transaction.pk)
        if tx.kind != Kind.SALE:
            raise DomainError("Only a sale can be recorded as a payment.", code="not_a_sale")
        if tx.payment_id is not None:
            raise DomainError("This transaction is already recorded.", code="recorded")
        user = (tx.raw.get("source") or {}).get("user") or {}
        if not user.get("id"):
            raise DomainError("Telegram gave no user for this transaction.", code="no_user")
        customer = shop_services.customer_upsert_from_telegram(
            telegram_id=int(user["id"]),
            username=user.get("username", ""),
            first_name=user.get("first_name", ""),
            last_name=user.get("last_name", ""),
            language_code=user.get("language_code", ""),
        )
        reference = payload_reference(tx.invoice_payload)
        order = Order.objects.filter(reference=reference).first() if reference else None
        payment, _ = recording.payment_record(
            customer=customer,
            order=order,
            telegram_payment_charge_id=tx.transaction_id,
            provider_payment_charge_id="",
            amount=tx.amount,
            currency=STARS,
            raw={"invoice_payload": tx.invoice_payload, "star_transaction": tx.raw,
                 "recorded_by_staff": True},
            # Stars have no test mode; the local sandbox's are its own.
            mode=(order.payment_mode if order else "")
            or (PaymentMode.SANDBOX if settings.TELEGRAM_SANDBOX else PaymentMode.LIVE),
        )  # fmt: skip
        StarTransaction.objects.filter(pk=tx.pk).update(payment=payment)
        difference_close(
            key=f"stars:missing_here:{tx.transaction_id}",
            resolution=f"Recorded as payment #{payment.pk} from Telegram's transaction.",
            actor=actor,
            payment=payment,
        )
    return payment


@dataclass(frozen=True)
class StatementLine:
    kind: str
    label: str
    count: int
    nanos: int  # signed: how the balance moved

    @property
    def text(self) -> str:
        return stars_text(self.nanos)


@dataclass(frozen=True)
class StarsStatement:
    """Opening balance + movements = closing balance, for [start, end), to the nanostar."""

    opening_nanos: int
    lines: list[StatementLine]
    closing_nanos: int
    snapshot: StarBalanceSnapshot | None

    @property
    def opening_text(self) -> str:
        return stars_text(self.opening_nanos)

    @property
    def closing_text(self) -> str:
        return stars_text(self.closing_nanos)

    @property
    def snapshot_text(self) -> str:
        return stars_text(self.snapshot.reported_nanos) if self.snapshot else ""


def stars_statement(*, start: datetime, end: datetime) -> StarsStatement:
    opening = balance_nanos(before=start)
    sums: dict[str, list[int]] = {}
    rows = (
        StarTransaction.objects.filter(date__gte=start, date__lt=end)
        .values("kind", "direction")
        .annotate(n=models.Count("pk"), s=Sum("amount"), ns=Sum("nanostar_amount"))
    )
    for row in rows:
        sign = 1 if row["direction"] == StarTransaction.Direction.IN else -1
        entry = sums.setdefault(row["kind"], [0, 0])
        entry[0] += row["n"]
        entry[1] += sign * ((row["s"] or 0) * NANOS + (row["ns"] or 0))
    lines = [
        StatementLine(kind=kind, label=Kind(kind).label, count=count, nanos=nanos)
        for kind, (count, nanos) in sorted(sums.items(), key=lambda i: list(Kind).index(i[0]))
    ]
    closing = opening + sum(line.nanos for line in lines)
    # Telegram's own figure for the end of the period, when a snapshot was taken then.
    snapshot = (
        StarBalanceSnapshot.objects.filter(
            taken_at__gte=start, taken_at__lt=end + timedelta(hours=1)
        )
        .order_by("-taken_at")
        .first()
    )
    if snapshot is not None and StarTransaction.objects.filter(date__gte=end).exists():
        snapshot = None  # movements after the period: the snapshot is not its closing balance
    return StarsStatement(opening_nanos=opening, lines=lines, closing_nanos=closing,
                          snapshot=snapshot)  # fmt: skip
