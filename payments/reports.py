"""Finance CSV reports: orders, payments, refunds, disputes, ledger and settlement.

RFC 4180 CSV (CRLF, quoted where needed), UTF-8 with an optional BOM for Excel, a header row.
Every amount appears twice: as an integer in minor units and as a decimal in major units with
the currency's exponent (USD 2 digits, JPY and XTR none). Timestamps are ISO 8601 in UTC.
Text that a spreadsheet would run as a formula is neutralised with a leading apostrophe.

Rows are read with a server-side cursor in chunks and written as they come, so memory stays
flat however many rows there are. The date range is inclusive, in the chosen time zone.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from payments.models import Dispute, LedgerEntry, Payment, Refund
from shop import money
from shop.errors import DomainError
from shop.models import Order

CHUNK_ROWS = 5000
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Filters:
    since: date
    until: date
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(settings.TIME_ZONE))
    currency: str = ""
    status: str = ""
    provider: str = ""

    def __post_init__(self):
        if self.until < self.since:
            raise DomainError("The end date is before the start date.", code="bad_range")
        if self.currency and not money.is_known_currency(self.currency):
            raise DomainError(f"Unknown currency {self.currency}.", code="bad_currency")
        if self.provider and self.provider not in Payment.Provider.values:
            raise DomainError(f"Unknown provider {self.provider}.", code="bad_provider")

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        """Midnight after the last day: the range is [start, end)."""
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=self.tz)


def safe_text(value) -> str:
    """A text cell no spreadsheet will run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def utc(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")


def major(amount: int | None, currency: str) -> str:
    """Minor units as a decimal string in major units (exact; no floats)."""
    if amount is None:
        return ""
    exp = money.exponent(currency)
    if exp == 0:
        return str(amount)
    whole, cents = divmod(abs(amount), 10**exp)
    return f"{'-' if amount < 0 else ''}{whole}.{cents:0{exp}d}"


class Report:
    """One report: its rows as a queryset of tuples, its header, and how a tuple becomes a row."""

    name = ""
    date_field = "created_at"
    status_field = "status"
    provider_field = ""
    header: list[str] = []
    fields: list[str] = []

    def base(self) -> QuerySet:
        raise NotImplementedError

    def filtered(self, filters: Filters, queryset: QuerySet | None = None) -> QuerySet:
        qs = self.base() if queryset is None else queryset
        qs = qs.filter(
            **{f"{self.date_field}__gte": filters.start, f"{self.date_field}__lt": filters.end}
        )
        return self.narrowed(qs, filters)

    def narrowed(self, qs: QuerySet, filters: Filters) -> QuerySet:
        if filters.currency:
            qs = qs.filter(currency=filters.currency)
        if filters.status:
            if not self.status_field:
                raise DomainError(f"The {self.name} report has no status filter.", code="no_status")
            qs = qs.filter(**{self.status_field: filters.status})
        if filters.provider:
            if not self.provider_field:
                raise DomainError(
                    f"The {self.name} report has no provider filter.", code="no_provider"
                )
            qs = qs.filter(**{self.provider_field: filters.provider})
        return qs

    def rows(self, qs: QuerySet) -> Iterator[list]:
        ordered = qs.order_by(self.date_field, "pk").values_list(*self.fields)
        for values in ordered.iterator(chunk_size=CHUNK_ROWS):
            yield self.row(values)

    def row(self, values: tuple) -> list:
        raise NotImplementedError


class OrdersReport(Report):
    name = "orders"
    provider_field = ""
    header = [
        "reference", "created_at", "status", "customer_telegram_id", "currency",
        "total_minor", "total", "paid_at", "fulfilled_at", "needs_review",
    ]  # fmt: skip
    fields = [
        "reference", "created_at", "status", "customer__telegram_id", "currency",
        "total_amount", "paid_at", "fulfilled_at", "needs_review",
    ]  # fmt: skip

    def base(self):
        return Order.objects.all()

    def row(self, v):
        ref, created, status, tg, cur, total, paid, fulfilled, review = v
        return [safe_text(ref), utc(created), status, tg, cur, total, major(total, cur),
                utc(paid), utc(fulfilled), "yes" if review else "no"]  # fmt: skip


class PaymentsReport(Report):
    name = "payments"
    date_field = "paid_at"
    status_field = "review_reason"
    provider_field = "provider"
    header = [
        "payment_id", "paid_at", "provider", "telegram_payment_charge_id",
        "provider_payment_charge_id", "order_reference", "customer_telegram_id", "currency",
        "amount_minor", "amount", "refunded_minor", "refunded", "review_reason", "credited_at",
    ]  # fmt: skip
    fields = [
        "pk", "paid_at", "provider", "telegram_payment_charge_id", "provider_payment_charge_id",
        "order__reference", "customer__telegram_id", "currency", "amount", "refunded_amount",
        "review_reason", "credited_at",
    ]  # fmt: skip

    def base(self):
        return Payment.objects.all()

    def row(self, v):
        pk, paid, prov, charge, pcharge, ref, tg, cur, amount, refunded, review, credited = v
        return [pk, utc(paid), prov, safe_text(charge), safe_text(pcharge), safe_text(ref or ""),
                tg, cur, amount, major(amount, cur), refunded, major(refunded, cur), review,
                utc(credited)]  # fmt: skip


class RefundsReport(Report):
    name = "refunds"
    provider_field = "payment__provider"
    header = [
        "refund_id", "created_at", "completed_at", "status", "source", "reason",
        "telegram_payment_charge_id", "order_reference", "currency", "amount_minor", "amount",
        "external_reference", "author", "note",
    ]  # fmt: skip
    fields = [
        "pk", "created_at", "completed_at", "status", "source", "reason",
        "payment__telegram_payment_charge_id", "order__reference", "currency", "amount",
        "external_reference", "author__username", "note",
    ]  # fmt: skip

    def base(self):
        return Refund.objects.all()

    def row(self, v):
        pk, created, done, status, source, reason, charge, ref, cur, amount, ext, author, note = v
        return [pk, utc(created), utc(done), status, source, reason, safe_text(charge),
                safe_text(ref or ""), cur, amount, major(amount, cur), safe_text(ext),
                safe_text(author or ""), safe_text(note)]  # fmt: skip


class DisputesReport(Report):
    name = "disputes"
    date_field = "opened_at"
    provider_field = "payment__provider"
    header = [
        "dispute_id", "opened_at", "status", "reason", "telegram_payment_charge_id",
        "order_reference", "currency", "amount_minor", "amount", "fee_minor", "fee",
        "provider_reference", "evidence_due_by", "evidence_submitted_at", "resolved_at",
    ]  # fmt: skip
    fields = [
        "pk", "opened_at", "status", "reason", "payment__telegram_payment_charge_id",
        "order__reference", "currency", "amount", "fee", "provider_reference",
        "evidence_due_by", "evidence_submitted_at", "resolved_at",
    ]  # fmt: skip

    def base(self):
        return Dispute.objects.all()

    def row(self, v):
        pk, opened, status, reason, charge, ref, cur, amount, fee, pref, due, sub, res = v
        return [pk, utc(opened), status, reason, safe_text(charge), safe_text(ref or ""), cur,
                amount, major(amount, cur), fee, major(fee, cur), safe_text(pref), utc(due),
                utc(sub), utc(res)]  # fmt: skip


class LedgerReport(Report):
    name = "ledger"
    status_field = "kind"
    provider_field = "payment__provider"
    header = [
        "entry_id", "created_at", "kind", "customer_telegram_id", "order_reference",
        "telegram_payment_charge_id", "currency", "amount_minor", "amount", "idempotency_key",
        "memo",
    ]  # fmt: skip
    fields = [
        "pk", "created_at", "kind", "customer__telegram_id", "order__reference",
        "payment__telegram_payment_charge_id", "currency", "amount", "idempotency_key", "memo",
    ]  # fmt: skip

    def base(self):
        return LedgerEntry.objects.all()

    def row(self, v):
        pk, created, kind, tg, ref, charge, cur, amount, key, memo = v
        return [pk, utc(created), kind, tg, safe_text(ref or ""), safe_text(charge or ""), cur,
                amount, major(amount, cur), safe_text(key), safe_text(memo)]  # fmt: skip


# Settlement reads the ledger: money in (credits), money out (refunds, chargebacks, fees).
SETTLEMENT_KINDS = {
    "paid": LedgerEntry.Kind.CREDIT,
    "refunded": LedgerEntry.Kind.REFUND,
    "charged_back": LedgerEntry.Kind.CHARGEBACK,
    "fees": LedgerEntry.Kind.FEE,
}


class SettlementReport(Report):
    """Per day (in the chosen time zone) and currency, from the ledger to the minor unit."""

    name = "settlement"
    status_field = ""
    provider_field = "payment__provider"
    header = ["day", "currency"]
    for _key in SETTLEMENT_KINDS:
        header += [f"{_key}_count", f"{_key}_minor", _key]
    header += ["net_minor", "net"]

    def base(self):
        return LedgerEntry.objects.all()

    def rows(self, qs: QuerySet, tz: ZoneInfo | None = None) -> Iterator[list]:
        tz = tz or ZoneInfo(settings.TIME_ZONE)
        aggregates = {}
        for key, kind in SETTLEMENT_KINDS.items():
            aggregates[f"{key}_count"] = Count("pk", filter=Q(kind=kind))
            aggregates[f"{key}_sum"] = Sum("amount", filter=Q(kind=kind))
        days = (
            qs.filter(kind__in=SETTLEMENT_KINDS.values())
            .annotate(day=TruncDate("created_at", tzinfo=tz))
            .values("day", "currency")
            .annotate(**aggregates)
            .order_by("day", "currency")
        )
        for day in days:
            cur = day["currency"]
            row, net = [day["day"].isoformat(), cur], 0
            for key in SETTLEMENT_KINDS:
                signed = day[f"{key}_sum"] or 0
                net += signed  # credits are positive, money going out negative
                shown = signed if key == "paid" else -signed
                row += [day[f"{key}_count"], shown, major(shown, cur)]
            yield [*row, net, major(net, cur)]


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        OrdersReport(),
        PaymentsReport(),
        RefundsReport(),
        DisputesReport(),
        LedgerReport(),
        SettlementReport(),
    )
}


def report_get(name: str) -> Report:
    try:
        return REPORTS[name]
    except KeyError:
        raise DomainError(
            f"Unknown report {name!r}; choose from {', '.join(REPORTS)}.", code="bad_report"
        ) from None


def report_rows(name: str, filters: Filters, queryset: QuerySet | None = None) -> Iterator[list]:
    report = report_get(name)
    qs = report.filtered(filters, queryset)
    if isinstance(report, SettlementReport):
        return report.rows(qs, filters.tz)
    return report.rows(qs)


class _Line:
    """A file-like target for csv.writer that hands back what was written."""

    def __init__(self):
        self.buffer = io.StringIO()

    def write(self, text: str) -> None:
        self.buffer.write(text)

    def take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def csv_chunks(
    header: list[str], rows: Iterable[list], *, bom: bool = False, rows_per_chunk: int = 1000
) -> Iterator[str]:
    """RFC 4180 text in pieces of about `rows_per_chunk` rows, header first."""
    target = _Line()
    writer = csv.writer(target, lineterminator="\r\n")
    writer.writerow(header)
    yield (BOM if bom else "") + target.take()
    pending = []
    for row in rows:
        pending.append(row)
        if len(pending) >= rows_per_chunk:
            writer.writerows(pending)
            pending.clear()
            yield target.take()
    if pending:
        writer.writerows(pending)
        yield target.take()


def report_csv(
    name: str, filters: Filters, *, bom: bool = False, queryset: QuerySet | None = None
) -> Iterator[str]:
    report = report_get(name)
    return csv_chunks(report.header, report_rows(name, filters, queryset), bom=bom)


def queryset_csv(name: str, queryset: QuerySet, *, bom: bool = False) -> Iterator[str]:
    """A report over exactly these rows (an admin changelist's current selection)."""
    report = report_get(name)
    rows = report.rows(queryset) if not isinstance(report, SettlementReport) else iter(())
    return csv_chunks(report.header, rows, bom=bom)
