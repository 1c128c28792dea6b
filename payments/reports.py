"""Finance CSV reports: orders, payments, refunds, disputes, ledger, settlement,
reconciliation, promo codes and subscriptions.

RFC 4180 CSV (CRLF, quoted where needed), UTF-8 with an optional BOM for Excel, a header row.
Every amount appears twice: as an integer in minor units and as a decimal in major units with
the currency's exponent (USD 2 digits, JPY and XTR none). Timestamps are ISO 8601 in UTC.
Text that a spreadsheet would run as a formula is neutralised with a leading apostrophe.

Rows are read with a server-side cursor in chunks and written as they come, so memory stays
flat however many rows there are. The date range is inclusive, in the chosen time zone.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC as UTC_ZONE
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from core import money
from core.errors import DomainError
from payments.csvtext import Progress, copy_csv, csv_chunks, safe_text
from payments.models import Difference, Dispute, LedgerEntry, Payment, Refund
from shop.models import (
    Order,
    PaymentMode,
    Product,
    PromoRedemption,
    Subscription,
    SubscriptionEvent,
)

CHUNK_ROWS = 5000


def days_window(since: date, until: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The days from `since` to `until`, inclusive, in `tz`: [first midnight, midnight after)."""
    return (
        datetime.combine(since, time.min, tzinfo=tz),
        datetime.combine(until + timedelta(days=1), time.min, tzinfo=tz),
    )


@dataclass(frozen=True)
class Filters:
    since: date
    until: date
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(settings.TIME_ZONE))
    currency: str = ""
    status: str = ""
    provider: str = ""
    # Payments made with a TEST provider token are not money: left out unless asked for.
    include_test: bool = False

    def __post_init__(self):
        if self.until < self.since:
            raise DomainError("The end date is before the start date.", code="bad_range")
        if self.currency and not money.is_known_currency(self.currency):
            raise DomainError(f"Unknown currency {self.currency}.", code="bad_currency")
        if self.provider and self.provider not in Payment.Provider.values:
            raise DomainError(f"Unknown provider {self.provider}.", code="bad_provider")

    @property
    def start(self) -> datetime:
        return days_window(self.since, self.until, self.tz)[0]

    @property
    def end(self) -> datetime:
        """Midnight after the last day: the range is [start, end)."""
        return days_window(self.since, self.until, self.tz)[1]


def utc(value: datetime | None) -> str:
    """ISO 8601 in UTC, always with microseconds (the same text PostgreSQL's COPY path writes)."""
    if value is None:
        return ""
    return value.astimezone(UTC_ZONE).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def major(amount: int | None, currency: str) -> str:
    """Minor units as a decimal string in major units (exact; no floats)."""
    if amount is None or not money.is_known_currency(currency):
        return ""  # never formatted by guess
    exp = money.exponent(currency)
    if exp == 0:
        return str(amount)
    whole, cents = divmod(abs(amount), 10**exp)
    return f"{'-' if amount < 0 else ''}{whole}.{cents:0{exp}d}"


@dataclass(frozen=True)
class Col:
    """One report column: its header, the ORM path it reads, how it is written.

    kind: "int" (as is), "text" (formula-safe), "code" (a choice value, as is), "time" (UTC
    ISO 8601), "yesno", "money" (two columns, `<header>_minor` and `<header>`, in the currency
    read from the report's `currency_path`).
    """

    header: str
    path: str
    kind: str = "text"


class Report:
    """A row report: columns declared once, written by Python or by PostgreSQL's COPY."""

    name = ""
    date_field = "created_at"
    status_field = "status"
    provider_field = ""
    mode_field = "payment__mode"  # where the row's payment mode is (test payments left out)
    currency_path = "currency"
    columns: list[Col] = []

    @property
    def header(self) -> list[str]:
        names = []
        for col in self.columns:
            names += [f"{col.header}_minor", col.header] if col.kind == "money" else [col.header]
        return names

    @property
    def paths(self) -> list[str]:
        return [col.path for col in self.columns] + [self.currency_path]

    def base(self) -> QuerySet:
        raise NotImplementedError

    def filtered(self, filters: Filters, queryset: QuerySet | None = None) -> QuerySet:
        qs = self.base() if queryset is None else queryset
        qs = qs.filter(
            **{f"{self.date_field}__gte": filters.start, f"{self.date_field}__lt": filters.end}
        )
        return self.narrowed(qs, filters)

    def narrowed(self, qs: QuerySet, filters: Filters) -> QuerySet:
        if not filters.include_test:
            qs = qs.exclude(**{self.mode_field: PaymentMode.TEST})
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
            qs = qs.filter(self.provider_q(filters.provider))
        return qs

    def provider_q(self, provider: str) -> Q:
        return Q(**{self.provider_field: provider})

    def ordered(self, qs: QuerySet) -> QuerySet:
        return qs.order_by(self.date_field, "pk").values_list(*self.paths)

    def rows(self, qs: QuerySet) -> Iterator[list]:
        """Written by Python: any database, any queryset (an admin changelist's too)."""
        writers = [_PY[col.kind] for col in self.columns]
        for values in self.ordered(qs).iterator(chunk_size=CHUNK_ROWS):
            currency = values[-1]
            row = []
            for write, value in zip(writers, values, strict=False):
                row += write(value, currency)
            yield row

    def copy_sql(self, qs: QuerySet) -> tuple[str, tuple]:
        """The same rows as a COPY, formatted by PostgreSQL exactly as `rows` formats them."""
        inner, params = self.ordered(qs).query.sql_with_params()
        names = [f"c{i}" for i in range(len(self.paths))]
        selects = []
        for col, name in zip(self.columns, names, strict=False):
            selects += _sql(col.kind, name, names[-1])
        # Every piece is a fixed declaration above or Django's own SQL; values stay parameters.
        sql = (
            f"COPY (SELECT {', '.join(selects)} FROM ({inner}) AS r({', '.join(names)})) "  # noqa: S608
            "TO STDOUT WITH (FORMAT csv)"
        )
        return sql, params


_PY = {
    "int": lambda v, c: ["" if v is None else v],
    "code": lambda v, c: ["" if v is None else v],
    "text": lambda v, c: [safe_text(v)],
    "time": lambda v, c: [utc(v)],
    "yesno": lambda v, c: ["yes" if v else "no"],
    "money": lambda v, c: ["" if v is None else v, major(v, c)],
}


def _exponent_sql(currency: str) -> str:
    by_exp: dict[int, list[str]] = {}
    for code in money.currency_codes():
        by_exp.setdefault(money.exponent(code), []).append(code)
    # No ELSE: a currency not in the table gets NULL, so its major amount is left empty.
    cases = " ".join(
        f"WHEN {currency} IN ({', '.join(repr(c) for c in codes)}) THEN {exp}"
        for exp, codes in sorted(by_exp.items())
    )
    return f"(CASE {cases} END)"


QUOTE = "'"


def _sql(kind: str, col: str, currency: str) -> list[str]:
    # NULLIF(..., ''): COPY would quote an empty string where Python's csv writes nothing.
    if kind in ("int", "code"):
        return [f"NULLIF({col}::text, '')"]
    if kind == "text":
        starts = "('=', '+', '-', '@', chr(9), chr(13))"
        return [
            f"CASE WHEN left({col}, 1) IN {starts} THEN {QUOTE * 4} || {col} "
            f"ELSE NULLIF({col}, '') END"
        ]
    if kind == "time":
        return [f"to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"]
    if kind == "yesno":
        return [f"CASE WHEN {col} THEN 'yes' ELSE 'no' END"]
    if kind == "money":
        exp = _exponent_sql(currency)
        return [f"{col}::text", f"round({col}::numeric / power(10::numeric, {exp}), {exp})::text"]
    raise ValueError(kind)


class OrdersReport(Report):
    mode_field = "payment_mode"
    name = "orders"
    columns = [
        Col("reference", "reference"),
        Col("created_at", "created_at", "time"),
        Col("status", "status", "code"),
        Col("customer_telegram_id", "customer__telegram_id", "int"),
        Col("currency", "currency", "code"),
        Col("total", "total_amount", "money"),
        Col("discount", "discount_amount", "money"),
        Col("promo_code", "promo_code__code"),
        Col("delivery", "delivery_amount", "money"),
        Col("paid_at", "paid_at", "time"),
        Col("fulfilled_at", "fulfilled_at", "time"),
        Col("needs_review", "needs_review", "yesno"),
    ]

    def base(self):
        return Order.objects.all()


class PaymentsReport(Report):
    name = "payments"
    date_field = "paid_at"
    status_field = "review_reason"
    provider_field = "provider"
    mode_field = "mode"
    columns = [
        Col("payment_id", "pk", "int"),
        Col("paid_at", "paid_at", "time"),
        Col("provider", "provider", "code"),
        Col("telegram_payment_charge_id", "telegram_payment_charge_id"),
        Col("provider_payment_charge_id", "provider_payment_charge_id"),
        Col("order_reference", "order__reference"),
        Col("customer_telegram_id", "customer__telegram_id", "int"),
        Col("currency", "currency", "code"),
        Col("amount", "amount", "money"),
        Col("refunded", "refunded_amount", "money"),
        Col("discount", "discount_amount", "money"),
        Col("promo_code", "promo_code"),
        Col("is_recurring", "is_recurring", "yesno"),
        Col("review_reason", "review_reason", "code"),
        Col("credited_at", "credited_at", "time"),
    ]

    def base(self):
        return Payment.objects.all()


class RefundsReport(Report):
    name = "refunds"
    provider_field = "payment__provider"
    columns = [
        Col("refund_id", "pk", "int"),
        Col("created_at", "created_at", "time"),
        Col("completed_at", "completed_at", "time"),
        Col("status", "status", "code"),
        Col("source", "source", "code"),
        Col("reason", "reason", "code"),
        Col("telegram_payment_charge_id", "payment__telegram_payment_charge_id"),
        Col("order_reference", "order__reference"),
        Col("currency", "currency", "code"),
        Col("amount", "amount", "money"),
        Col("external_reference", "external_reference"),
        Col("author", "author__username"),
        Col("note", "note"),
    ]

    def base(self):
        return Refund.objects.all()


class DisputesReport(Report):
    name = "disputes"
    date_field = "opened_at"
    provider_field = "payment__provider"
    columns = [
        Col("dispute_id", "pk", "int"),
        Col("opened_at", "opened_at", "time"),
        Col("status", "status", "code"),
        Col("reason", "reason", "code"),
        Col("telegram_payment_charge_id", "payment__telegram_payment_charge_id"),
        Col("order_reference", "order__reference"),
        Col("currency", "currency", "code"),
        Col("amount", "amount", "money"),
        Col("fee", "fee", "money"),
        Col("provider_reference", "provider_reference"),
        Col("evidence_due_by", "evidence_due_by", "time"),
        Col("evidence_submitted_at", "evidence_submitted_at", "time"),
        Col("resolved_at", "resolved_at", "time"),
    ]

    def base(self):
        return Dispute.objects.all()


class _LedgerProvider:
    """Ledger rows belong to a provider through their payment; provider items (a Stars
    withdrawal, Telegram Ads...) have no payment and are Telegram's when in Stars."""

    def provider_q(self, provider: str) -> Q:
        q = Q(payment__provider=provider)
        if provider == Payment.Provider.STARS:
            q |= Q(payment__isnull=True, kind=LedgerEntry.Kind.PROVIDER, currency=money.STARS)
        return q


class LedgerReport(_LedgerProvider, Report):
    name = "ledger"
    status_field = "kind"
    provider_field = "payment__provider"
    columns = [
        Col("entry_id", "pk", "int"),
        Col("created_at", "created_at", "time"),
        Col("kind", "kind", "code"),
        Col("customer_telegram_id", "customer__telegram_id", "int"),
        Col("order_reference", "order__reference"),
        Col("telegram_payment_charge_id", "payment__telegram_payment_charge_id"),
        Col("currency", "currency", "code"),
        Col("amount", "amount", "money"),
        Col("idempotency_key", "idempotency_key"),
        Col("memo", "memo"),
    ]

    def base(self):
        return LedgerEntry.objects.all()


# Settlement reads the ledger: money in (credits), money out (refunds, chargebacks, fees).
SETTLEMENT_KINDS = {
    "paid": LedgerEntry.Kind.CREDIT,
    "refunded": LedgerEntry.Kind.REFUND,
    "charged_back": LedgerEntry.Kind.CHARGEBACK,
    "fees": LedgerEntry.Kind.FEE,
    # The merchant's own items at the provider (signed as its balance moved).
    "provider_items": LedgerEntry.Kind.PROVIDER,
}


def _settlement_header() -> list[str]:
    names = ["day", "currency"]
    for key in SETTLEMENT_KINDS:
        names += [f"{key}_count", f"{key}_minor", key]
    return [*names, "net_minor", "net"]


class SettlementReport(_LedgerProvider, Report):
    """Per day (in the chosen time zone) and currency, from the ledger to the minor unit."""

    name = "settlement"
    status_field = ""
    provider_field = "payment__provider"
    header = _settlement_header()

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
                shown = signed if key in ("paid", "provider_items") else -signed
                row += [day[f"{key}_count"], shown, major(shown, cur)]
            yield [*row, net, major(net, cur)]


class ReconciliationReport(Report):
    """The differences between the books and the providers' own records."""

    name = "reconciliation"
    date_field = "occurred_at"
    provider_field = "provider"
    columns = [
        Col("difference_id", "pk", "int"),
        Col("occurred_at", "occurred_at", "time"),
        Col("provider", "provider", "code"),
        Col("kind", "kind", "code"),
        Col("status", "status", "code"),
        Col("currency", "currency", "code"),
        Col("ours", "our_amount", "money"),
        Col("theirs", "their_amount", "money"),
        Col("telegram_payment_charge_id", "payment__telegram_payment_charge_id"),
        Col("provider_payment_charge_id", "payment__provider_payment_charge_id"),
        Col("order_reference", "payment__order__reference"),
        Col("star_transaction_id", "star_transaction__transaction_id"),
        Col("statement_transaction_id", "statement_row__transaction_id"),
        Col("refund_id", "refund_id", "int"),
        Col("detail", "detail"),
        Col("detected_at", "detected_at", "time"),
        Col("resolved_at", "resolved_at", "time"),
        Col("resolved_by", "resolved_by__username"),
        Col("resolution", "resolution"),
    ]

    def base(self):
        return Difference.objects.all()


class PromoCodesReport(Report):
    """Per promo code and currency: paid uses, the discount given, what the orders paid."""

    name = "promo_codes"
    date_field = "used_at"
    status_field = ""
    mode_field = "order__payment_mode"
    header = ["promo_code", "currency", "uses", "discount_minor", "discount", "paid_minor", "paid"]

    def base(self):
        return PromoRedemption.objects.filter(status=PromoRedemption.Status.USED)

    def rows_for(self, filters: Filters, queryset: QuerySet | None = None) -> Iterator[list]:
        codes = (
            self.filtered(filters, queryset)
            .values("promo_code__code", "currency")
            .annotate(
                uses=Count("pk"), discount=Sum("discount_amount"), paid=Sum("order__total_amount")
            )
            .order_by("promo_code__code", "currency")
        )
        for row in codes:
            cur = row["currency"]
            yield [
                safe_text(row["promo_code__code"]), cur, row["uses"],
                row["discount"], major(row["discount"], cur),
                row["paid"], major(row["paid"], cur),
            ]  # fmt: skip


class SubscriptionsReport(Report):
    """Per month (in the chosen time zone) and subscription product: active at the month's
    end, started, renewed, renewals cancelled and re-enabled, expired, and recurring revenue
    (every subscription payment in the month, first ones and renewals)."""

    name = "subscriptions"
    date_field = "paid_at"
    status_field = ""
    mode_field = "mode"
    header = ["month", "sku", "currency", "active_at_end", "started", "renewed", "cancelled",
              "reenabled", "expired", "revenue_minor", "revenue"]  # fmt: skip

    def base(self):
        return Payment.objects.filter(order__items__kind=Product.Kind.SUBSCRIPTION)

    def rows_for(self, filters: Filters, queryset: QuerySet | None = None) -> Iterator[list]:
        tz = filters.tz
        products = list(
            Product.objects.filter(kind=Product.Kind.SUBSCRIPTION)
            .order_by("sku")
            .values_list("sku", "currency")
        )
        month = filters.since.replace(day=1)
        while month <= filters.until:
            following = (month + timedelta(days=32)).replace(day=1)
            start = max(filters.start, datetime.combine(month, time.min, tzinfo=tz))
            end = min(filters.end, datetime.combine(following, time.min, tzinfo=tz))
            yield from self._month(month, start, end, filters, products)
            month = following

    def _month(
        self,
        month: date,
        start: datetime,
        end: datetime,
        filters: Filters,
        products: list[tuple[str, str]],
    ):
        paid = (
            self.narrowed(self.base(), filters)
            .filter(paid_at__gte=start, paid_at__lt=end, review_reason="")
            .values("order__items__sku", "currency")
            .annotate(revenue=Sum("amount"), renewed=Count("pk", filter=Q(is_recurring=True)))
        )
        revenue = {(r["order__items__sku"], r["currency"]): r for r in paid}
        events = (
            SubscriptionEvent.objects.filter(created_at__gte=start, created_at__lt=end)
            .values("subscription__product__sku", "kind")
            .annotate(n=Count("pk"))
        )
        counts: dict[tuple[str, str], int] = {
            (e["subscription__product__sku"], e["kind"]): e["n"] for e in events
        }
        active = dict(
            Subscription.objects.filter(started_at__lt=end, expires_at__gte=end)
            .values("product__sku")
            .annotate(n=Count("pk"))
            .values_list("product__sku", "n")
        )
        for sku, cur in products:
            if filters.currency and cur != filters.currency:
                continue
            money_row = revenue.get((sku, cur), {})
            kinds = SubscriptionEvent.Kind
            row = [
                month.strftime("%Y-%m"), safe_text(sku), cur, active.get(sku, 0),
                counts.get((sku, kinds.STARTED), 0), money_row.get("renewed", 0),
                counts.get((sku, kinds.CANCELLED), 0), counts.get((sku, kinds.REENABLED), 0),
                counts.get((sku, kinds.EXPIRED), 0),
            ]  # fmt: skip
            amount = money_row.get("revenue") or 0
            yield [*row, amount, major(amount, cur)]


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        OrdersReport(),
        PaymentsReport(),
        RefundsReport(),
        DisputesReport(),
        LedgerReport(),
        SettlementReport(),
        ReconciliationReport(),
        PromoCodesReport(),
        SubscriptionsReport(),
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
    if hasattr(report, "rows_for"):  # a summary of its own shape
        return report.rows_for(filters, queryset)
    qs = report.filtered(filters, queryset)
    if isinstance(report, SettlementReport):
        return report.rows(qs, filters.tz)
    return report.rows(qs)


def copy_chunks(report: Report, qs: QuerySet, *, progress: Progress = None) -> Iterator[str]:
    """The rows as PostgreSQL's COPY writes them (see `payments.csvtext.copy_csv`)."""
    sql, params = report.copy_sql(qs)
    return copy_csv(sql, params, progress=progress)


def report_csv(
    name: str,
    filters: Filters,
    *,
    bom: bool = False,
    queryset: QuerySet | None = None,
    progress: Progress = None,
) -> Iterator[str]:
    """The report as CSV text in pieces: the command, the download and the background job."""
    report = report_get(name)
    summary = isinstance(report, SettlementReport) or hasattr(report, "rows_for")
    if connection.vendor == "postgresql" and not summary:
        # PostgreSQL writes the rows itself: the same text as the Python writer, faster.
        rows = copy_chunks(report, report.filtered(filters, queryset), progress=progress)
        return _with_header(report.header, rows, bom)
    return csv_chunks(
        report.header, report_rows(name, filters, queryset), bom=bom, progress=progress
    )


def _with_header(header: list[str], chunks: Iterator[str], bom: bool) -> Iterator[str]:
    yield from csv_chunks(header, (), bom=bom)
    yield from chunks


def queryset_csv(name: str, queryset: QuerySet, *, bom: bool = False) -> Iterator[str]:
    """A report over exactly these rows (an admin changelist's current selection)."""
    report = report_get(name)
    return csv_chunks(report.header, report.rows(queryset), bom=bom)
