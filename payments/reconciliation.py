"""Reads for the Reconciliation page: per provider and day, our figures beside the provider's.

Ours: the payments recorded here (test payments aside). Theirs: the Stars sales in
Telegram's own transaction list, or the Success rows of A-Pay's statements. Both counted per
day in the shop's time zone and per currency, with the open differences of the day.
"""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from core import money
from payments.models import Difference, Payment, StarTransaction, StatementRow
from shop.models import PaymentMode


@dataclass
class DayRow:
    day: date
    currency: str
    our_count: int = 0
    our_sum: int = 0
    their_count: int = 0
    their_sum: int = 0
    open_differences: int = 0

    @property
    def delta(self) -> int:
        return self.their_sum - self.our_sum

    @property
    def matches(self) -> bool:
        return (self.our_count, self.our_sum) == (self.their_count, self.their_sum)

    @property
    def our_text(self) -> str:
        return money.format_amount(self.our_sum, self.currency)

    @property
    def their_text(self) -> str:
        return money.format_amount(self.their_sum, self.currency)

    @property
    def delta_text(self) -> str:
        if not self.delta:
            return "—"
        sign = "+" if self.delta > 0 else "−"
        return sign + money.format_amount(abs(self.delta), self.currency)


def _per_day(qs, field: str, amount: str, tz: ZoneInfo, currency: str | None = None):
    day = TruncDate(field, tzinfo=tz)
    values = ["day"] if currency else ["day", "currency"]
    rows = qs.annotate(day=day).values(*values).annotate(n=Count("pk"), s=Sum(amount))
    for row in rows:
        yield row["day"], currency or row["currency"], row["n"], row["s"] or 0


def reconciliation_days(
    *, provider: str, start: datetime, end: datetime, tz: ZoneInfo
) -> list[DayRow]:
    table: dict[tuple[date, str], DayRow] = {}

    def row(day: date, currency: str) -> DayRow:
        return table.setdefault((day, currency), DayRow(day=day, currency=currency))

    ours = Payment.objects.filter(provider=provider, paid_at__gte=start, paid_at__lt=end).exclude(
        mode=PaymentMode.TEST
    )
    for day, currency, n, s in _per_day(ours, "paid_at", "amount", tz):
        r = row(day, currency)
        r.our_count, r.our_sum = n, s
    if provider == Payment.Provider.STARS:
        theirs = StarTransaction.objects.filter(
            kind=StarTransaction.Kind.SALE, date__gte=start, date__lt=end
        )
        found = _per_day(theirs, "date", "amount", tz, currency=money.STARS)
    else:
        theirs = StatementRow.objects.filter(
            provider=provider,
            status=StatementRow.SUCCESS,
            created_at__gte=start,
            created_at__lt=end,
        )
        found = _per_day(theirs, "created_at", "amount", tz)
    for day, currency, n, s in found:
        r = row(day, currency)
        r.their_count, r.their_sum = n, s
    open_ones = Difference.objects.filter(
        provider=provider,
        status=Difference.Status.OPEN,
        occurred_at__gte=start,
        occurred_at__lt=end,
    )
    for day, currency, n, _ in _per_day(open_ones, "occurred_at", "our_amount", tz):
        row(day, currency).open_differences = n
    return [table[key] for key in sorted(table)]
