"""A-Pay statements: imported once, matched to payments, fees posted once, differences found.

A row matches the payment whose provider_payment_charge_id is its order_id (or its
transaction_id). Failing that, a Success row matches a payment with the same amount and
currency paid within APAY_MATCH_WINDOW_SECONDS of it; that weaker match waits for finance to
confirm. A-Pay's fee (amount − amount_after_commision) goes to the ledger once per
transaction (key `apay-fee:<transaction_id>`), for exact and confirmed matches.
"""

import logging
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from core.errors import DomainError
from payments.apay import client
from payments.apay.statement import (
    StatementCheck,
    StatementRowData,
    file_sha256,
    statement_batches,
    statement_check,
)
from payments.bulk import table_analyze
from payments.models import Difference, LedgerEntry, Payment, StatementImport, StatementRow
from payments.services import statement_bulk
from payments.services.differences import Found, SyncResult, difference_close, differences_sync
from shop.models import PaymentMode

logger = logging.getLogger(__name__)

APAY = Payment.Provider.APAY
Match = StatementRow.Match
APAY_KINDS = (Difference.Kind.MISSING_HERE, Difference.Kind.MISSING_THERE,
              Difference.Kind.AMOUNT, Difference.Kind.STATUS,
              Difference.Kind.WEAK_MATCH)  # fmt: skip
_COMPARED = ("order_id", "custom_transaction_id", "custom_user_id", "amount",
             "amount_after_commission", "fee", "currency", "status", "created_at", "updated_at",
             "activated_at")  # fmt: skip


@dataclass
class ImportResult:
    statement: StatementImport
    already: bool = False
    matched: int = 0
    weak: int = 0
    fees: int = 0
    differences: SyncResult | None = None

    def summary(self) -> str:
        s = self.statement
        if self.already:
            return (
                f"This file was already imported (#{s.pk}, {s.created_at:%Y-%m-%d %H:%M}); "
                "nothing changed."
            )
        diff = self.differences or SyncResult()
        if not s.rows_total:
            return (
                f"A-Pay recorded no deposits from {s.period_start:%Y-%m-%d} to "
                f"{s.period_end:%Y-%m-%d}. Differences: {diff.found} found."
            )
        return (
            f"{s.rows_total} rows: {s.rows_new} new, {s.rows_changed} changed, "
            f"{s.rows_unchanged} already known. Matched {self.matched} by id, {self.weak} by "
            f"amount and time (to confirm); {self.fees} fees posted. Differences: {diff.found} "
            f"found, {diff.new} new, {diff.closed} closed."
        )


def statement_import(
    *,
    path: Path,
    source: str,
    filename: str = "",
    currency: str = "",
    user: AbstractBaseUser | None = None,
    period: tuple[datetime, datetime] | None = None,
) -> ImportResult:
    """Check the whole file, then take it in, in one transaction: all of it or nothing.

    The same file again changes nothing (it is recognised by its SHA-256). An overlapping
    one adds only the rows not seen before and brings changed ones up to date (a status A-Pay
    changed since). `period` is what was asked of the Reports API; a file's own rows say it
    otherwise.
    """
    sha256 = file_sha256(path)
    same_period = {"period_start": period[0], "period_end": period[1]} if period else {}
    earlier = StatementImport.objects.filter(provider=APAY, sha256=sha256, **same_period).first()
    if earlier is not None:
        return ImportResult(statement=earlier, already=True)

    def create_import(check: StatementCheck) -> StatementImport:
        start, end = period or (check.first, check.last + timedelta(microseconds=1))
        return StatementImport.objects.create(
            provider=APAY, source=source, filename=filename[:255], sha256=check.sha256,
            rows_total=check.rows, period_start=start, period_end=end, imported_by=user,
        )  # fmt: skip

    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                imported, matched, fees = statement_bulk.take_in(
                    path=path,
                    currency=currency,
                    allow_empty=period is not None,
                    sha256=sha256,
                    create_import=create_import,
                )  # fmt: skip
            else:
                imported, matched, fees = _take_in_batches(
                    path, currency, period is not None, sha256, create_import
                )
            if imported.rows_new + imported.rows_changed >= 1000:
                table_analyze(StatementRow)
            result = ImportResult(statement=imported, matched=matched, fees=fees)
            start, end = imported.period_start, imported.period_end
            by_id, result.weak = statement_match(start=start, end=end)
            result.matched += by_id
            result.fees += fees_post(start=start, end=end)
            result.differences = apay_differences(start=start, end=end)
    except IntegrityError:
        raise DomainError(
            "Another import of the same rows ran at the same time; nothing was imported from "
            "this one. Import it again: what the other one took in is recognised.",
            code="import_race",
        ) from None
    logger.info("A-Pay statement #%s: %s", imported.pk, result.summary())
    return result


def _take_in_batches(path, currency, allow_empty, sha256, create_import):
    """Other databases than PostgreSQL (the embedded SQLite): check, then batch by batch."""
    check = statement_check(path, currency=currency, allow_empty=allow_empty, sha256=sha256)
    imported = create_import(check)
    for batch in statement_batches(path, currency=currency):
        new, changed = _upsert(batch, imported)
        imported.rows_new += new
        imported.rows_changed += changed
    imported.save(update_fields=["rows_new", "rows_changed"])
    return imported, 0, 0


def _upsert(batch: list[StatementRowData], imported: StatementImport) -> tuple[int, int]:
    rows = {row.transaction_id: row for row in batch}  # a repeated id: the last one wins
    existing = {
        values[0]: values[1:]
        for values in StatementRow.objects.filter(
            provider=APAY, transaction_id__in=list(rows)
        ).values_list("transaction_id", "pk", *_COMPARED)
    }
    new, changed = [], []
    for tid, row in rows.items():
        fields = {name: getattr(row, name) for name in _COMPARED}
        known = existing.get(tid)
        if known is None:
            new.append(
                StatementRow(provider=APAY, transaction_id=tid, statement=imported, **fields)
            )
        elif tuple(known[1:]) != tuple(fields.values()):
            changed.append(StatementRow(pk=known[0], statement=imported, **fields))
    StatementRow.objects.bulk_create(new, batch_size=len(new) or 1)
    if changed:
        StatementRow.objects.bulk_update(changed, [*_COMPARED, "statement"], batch_size=1000)
    return len(new), len(changed)


def statement_match(*, start: datetime, end: datetime) -> tuple[int, int]:
    """Link the window's unmatched rows: by id first, then by amount, currency and time."""
    rows = StatementRow.objects.filter(
        provider=APAY, payment__isnull=True, created_at__gte=start, created_at__lt=end
    )
    matched = 0
    for column in ("order_id", "transaction_id"):
        by_id = Payment.objects.filter(
            provider=APAY, provider_payment_charge_id=OuterRef(column)
        ).values("pk")[:1]
        matched += (
            rows.exclude(**{column: ""})
            .filter(Exists(by_id))
            .update(payment=Subquery(by_id), match=Match.EXACT)
        )
    return matched, _match_weak(rows.filter(status=StatementRow.SUCCESS), start, end)


def _match_weak(rows, start: datetime, end: datetime) -> int:
    window = timedelta(seconds=settings.APAY_MATCH_WINDOW_SECONDS)
    linked = StatementRow.objects.filter(payment=OuterRef("pk"))
    candidates: dict[tuple[str, int], list[tuple[datetime, int]]] = {}
    for pk, paid_at, amount, currency in (
        Payment.objects.filter(provider=APAY, paid_at__gte=start - window, paid_at__lt=end + window)
        .exclude(mode=PaymentMode.TEST)
        .filter(~Exists(linked))
        .values_list("pk", "paid_at", "amount", "currency")
        .iterator()
    ):
        candidates.setdefault((currency, amount), []).append((paid_at, pk))
    if not candidates:
        return 0
    for times in candidates.values():
        times.sort()
    weak = 0
    for row in rows.only("pk", "amount", "currency", "created_at").iterator():
        times = candidates.get((row.currency, row.amount))
        if not times:
            continue
        i = bisect_left(times, (row.created_at, 0))
        near = [j for j in (i - 1, i) if 0 <= j < len(times)]
        best = min(near, key=lambda j: abs(times[j][0] - row.created_at))
        if abs(times[best][0] - row.created_at) > window:
            continue
        _, payment_id = times.pop(best)
        StatementRow.objects.filter(pk=row.pk).update(payment_id=payment_id, match=Match.WEAK)
        weak += 1
    return weak


def fees_post(*, start: datetime, end: datetime) -> int:
    """A-Pay's fee of each matched Success row in the window, posted to the ledger once.

    One INSERT … SELECT (the ledger's unique idempotency key makes a second post a no-op),
    then the rows are marked; a million rows take seconds, not a million round trips.
    """
    ledger, rows, payments = (
        LedgerEntry._meta.db_table,
        StatementRow._meta.db_table,
        Payment._meta.db_table,
    )
    where = (
        "r.provider = %s AND r.created_at >= %s AND r.created_at < %s AND r.fee > 0 "
        'AND r.status = %s AND r.fee_posted = %s AND r."match" IN (%s, %s)'
    )
    when = connection.ops.adapt_datetimefield_value
    params = [APAY, when(start), when(end), StatementRow.SUCCESS, False, Match.EXACT,
              Match.CONFIRMED]  # fmt: skip
    # Table names come from the models, values are parameters.
    insert = (
        f"INSERT INTO {ledger} (customer_id, kind, amount, currency, idempotency_key, "  # noqa: S608
        "order_id, payment_id, memo, created_at) "
        f"SELECT p.customer_id, %s, -r.fee, r.currency, 'apay-fee:' || r.transaction_id, "
        f"p.order_id, p.id, 'A-Pay fee, transaction ' || r.transaction_id, %s "
        f"FROM {rows} r JOIN {payments} p ON p.id = r.payment_id WHERE {where} "
        "ON CONFLICT (idempotency_key) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [LedgerEntry.Kind.FEE, when(timezone.now()), *params])
        posted = cursor.rowcount
        cursor.execute(
            f"UPDATE {rows} SET fee_posted = %s WHERE id IN (SELECT r.id FROM {rows} r "  # noqa: S608
            f"WHERE {where})",
            [True, *params],
        )
    return max(posted, 0)


def apay_differences(*, start: datetime, end: datetime) -> SyncResult:
    """What differs in [start, end), the period a statement covers."""
    found: list[Found] = []
    rows = StatementRow.objects.filter(provider=APAY, created_at__gte=start, created_at__lt=end)
    success = StatementRow.SUCCESS
    for row in rows.filter(payment__isnull=True, status=success).iterator():
        found.append(
            _found(row, Difference.Kind.MISSING_HERE, "No payment here has this order_id.")
        )
    matched = rows.filter(payment__isnull=False).select_related("payment")
    for row in matched.filter(match=Match.WEAK):
        found.append(
            _found(
                row,
                Difference.Kind.WEAK_MATCH,
                f"Matched to charge {row.payment.provider_payment_charge_id or '—'} by amount "
                "and time only.",
            )
        )
    for row in matched.filter(payment__credited_at__isnull=False).exclude(status=success):
        found.append(
            _found(row, Difference.Kind.STATUS, f"A-Pay says {row.status!r}; credited here.")
        )
    differ = matched.filter(~Q(payment__amount=F("amount")) | ~Q(payment__currency=F("currency")))
    for row in differ:
        found.append(_found(row, Difference.Kind.AMOUNT, "A-Pay's amount is not ours."))
    window = timedelta(seconds=settings.APAY_MATCH_WINDOW_SECONDS)
    on_statement = StatementRow.objects.filter(payment=OuterRef("pk"))
    absent = (
        Payment.objects.filter(provider=APAY, paid_at__gte=start, paid_at__lt=end - window)
        .exclude(mode=PaymentMode.TEST)
        .filter(~Exists(on_statement))
    )
    for payment in absent.iterator():
        found.append(
            Found(
                key=f"apay:missing_there:{payment.pk}",
                kind=Difference.Kind.MISSING_THERE,
                occurred_at=payment.paid_at,
                currency=payment.currency,
                our_amount=payment.amount,
                detail=f"Charge {payment.provider_payment_charge_id or '—'} is not on A-Pay's "
                "statement.",
                payment_id=payment.pk,
            )
        )
    return differences_sync(provider=APAY, start=start, end=end, found=found, kinds=APAY_KINDS)


def _found(row: StatementRow, kind: str, detail: str) -> Found:
    payment = row.payment if row.payment_id else None
    return Found(
        key=f"apay:{kind}:{row.transaction_id}",
        kind=kind,
        occurred_at=row.created_at,
        currency=row.currency,
        our_amount=payment.amount if payment else None,
        their_amount=row.amount,
        detail=detail,
        payment_id=row.payment_id,
        statement_row_id=row.pk,
    )


def statement_match_confirm(
    *, row: StatementRow, actor: AbstractBaseUser | None = None
) -> StatementRow:
    """Finance confirm a match by amount and time: its fee is posted, its difference closed."""
    with transaction.atomic():
        row = StatementRow.objects.select_for_update().get(pk=row.pk)
        if row.match != Match.WEAK:
            raise DomainError("Only a match by amount and time needs confirming.", code="not_weak")
        row.match = Match.CONFIRMED
        row.save(update_fields=["match"])
        end = row.created_at + timedelta(microseconds=1)
        fees_post(start=row.created_at, end=end)
        difference_close(
            key=f"apay:{Difference.Kind.WEAK_MATCH}:{row.transaction_id}",
            resolution="Match confirmed.",
            actor=actor,
        )
    return row


def statement_fetch_import(
    *, start: datetime, end: datetime, user: AbstractBaseUser | None = None
) -> list[ImportResult]:
    """A-Pay's Reports API for [start, end), in windows of at most 31 days, each imported."""
    results = []
    for since, until in client.report_windows(start, end):
        path = client.report_download(start=since, end=until)
        try:
            results.append(
                statement_import(
                    path=path,
                    source=StatementImport.Source.API,
                    filename=f"a-pay {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC",
                    currency=settings.APAY_STATEMENT_CURRENCY,
                    user=user,
                    period=(since, until),
                )
            )
        finally:
            path.unlink(missing_ok=True)
    return results
