"""What the admin's home page shows: today's and this month's money, the queues, a chart.

The chart is an SVG drawn here, so the page loads nothing from anywhere else.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import quote

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from backoffice import backups, twofactor
from botbridge import health
from botbridge.models import TelegramUpdate
from core import money
from payments import services as payment_services
from payments.models import ChargeConflict, Difference, Dispute, LedgerEntry, Payment, Refund
from shop.models import Message, Order, PaymentMode, Subscription, SupportRequest

CHART_DAYS = 30
SERIES = [
    ("paid", LedgerEntry.Kind.CREDIT, "#2e7d32"),
    ("refunded", LedgerEntry.Kind.REFUND, "#ef6c00"),
    ("charged_back", LedgerEntry.Kind.CHARGEBACK, "#c62828"),
]


@dataclass
class Tile:
    label: str
    value: str
    url: str = ""
    alert: bool = False


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def money_table() -> list[dict]:
    """Per currency: paid, refunded and net for today, the last 7 days and this month.

    Paid is what was recorded and not held for review; refunded is what went back (completed
    refunds) in the same period. Each figure links to the list it was counted from.
    """
    today = timezone.localdate()
    periods = [  # (alias for the database, label for people, start)
        ("today", _day_start(today)),
        ("week", _day_start(today - timedelta(days=6))),
        ("month", _day_start(today.replace(day=1))),
    ]
    labels = {"today": "Today", "week": "Last 7 days", "month": "This month"}
    earliest = min(start for _, start in periods)
    paid = (
        Payment.objects.filter(paid_at__gte=earliest, review_reason="")
        .exclude(mode=PaymentMode.TEST)
        .values("currency")
        .annotate(
            **{label: Sum("amount", filter=Q(paid_at__gte=start)) for label, start in periods}
        )
    )
    refunded = (
        Refund.objects.filter(status=Refund.Status.COMPLETED, completed_at__gte=earliest)
        .exclude(payment__mode=PaymentMode.TEST)
        .values("currency")
        .annotate(
            **{label: Sum("amount", filter=Q(completed_at__gte=start)) for label, start in periods}
        )
    )
    by_currency: dict[str, dict] = {}
    for source, rows in (("paid", paid), ("refunded", refunded)):
        for row in rows:
            by_currency.setdefault(row["currency"], {"paid": {}, "refunded": {}})[source] = row
    table = []
    for currency in sorted(by_currency):
        figures = by_currency[currency]
        cells = []
        for label, start in periods:
            paid_amount = figures["paid"].get(label) or 0
            refunded_amount = figures["refunded"].get(label) or 0
            since = quote(start.isoformat())
            cells.append(
                {
                    "period": labels[label],
                    "paid": money.format_amount(paid_amount, currency),
                    "paid_url": f"payments/payment/?currency__exact={currency}"
                    f"&review_reason__exact=&paid_at__gte={since}",
                    "refunded": money.format_amount(refunded_amount, currency),
                    "refunded_url": f"payments/refund/?currency__exact={currency}"
                    f"&status__exact=completed&completed_at__gte={since}",
                    "net": money.format_amount(paid_amount - refunded_amount, currency),
                }
            )
        table.append({"currency": currency, "cells": cells})
    return table


def queue_tiles(user) -> list[Tile]:
    """What waits for someone, each tile only for those who may open its list."""
    due_by = timezone.now() + timedelta(hours=48)
    queues = [
        ("shop.view_order", "Orders needing review", Order.objects.filter(needs_review=True),
         "shop/order/?needs_review__exact=1", True),
        ("shop.view_order", "Orders to ship",
         Order.objects.filter(status=Order.Status.AWAITING_SHIPMENT),
         "shop/order/?status__exact=awaiting_shipment", False),
        ("payments.view_payment", "Paid, not credited",
         payment_services.payments_uncredited(
             cutoff=timezone.now() - settings.PAYMENTS_CREDIT_GRACE),
         "payments/payment/?credit=overdue", True),
        ("payments.view_payment", "Payments held for review",
         Payment.objects.exclude(review_reason=""),
         "payments/payment/?credit=review", True),
        ("payments.view_chargeconflict", "Charge ids reported twice",
         ChargeConflict.objects.filter(resolved_at__isnull=True),
         "payments/chargeconflict/?resolved_at__isempty=1", True),
        ("payments.view_difference", "Reconciliation differences",
         Difference.objects.filter(status=Difference.Status.OPEN),
         "payments/difference/?status__exact=open", True),
        ("payments.view_dispute", "Disputes due within 48 h",
         Dispute.objects.filter(status__in=Dispute.OPEN_STATUSES, evidence_due_by__lte=due_by),
         "payments/dispute/?is_due_soon__exact=1", True),
        ("shop.view_message", "Failed outbound messages",
         Message.objects.filter(status=Message.Status.FAILED),
         "shop/message/?status__exact=failed", True),
        ("botbridge.view_telegramupdate", "Failed webhook updates",
         TelegramUpdate.objects.filter(status=TelegramUpdate.Status.FAILED),
         "botbridge/telegramupdate/?status__exact=failed", True),
        ("shop.view_subscription", "Active subscriptions",
         Subscription.objects.filter(status=Subscription.Status.ACTIVE),
         "shop/subscription/?status__exact=active", False),
        ("shop.view_supportrequest", "Open support requests",
         SupportRequest.objects.filter(status=SupportRequest.Status.OPEN),
         "shop/supportrequest/?status__exact=open", True),
    ]  # fmt: skip
    tiles = []
    for permission, label, queryset, url, alert in queues:
        if user.has_perm(permission):
            count = queryset.count()
            tiles.append(Tile(label, str(count), url, alert and count > 0))
    return tiles


def ledger_days() -> dict[str, dict[date, dict[str, int]]]:
    """Per currency and day of the chart's 30 days: paid, refunded, charged back, credits.

    The ledger is append-only and each entry is dated when it is written, so a day that has
    ended never changes: closed days are summed once a day and cached (26 hours, keyed by
    the day), and only today is read live. At a million orders that is the difference
    between summing some 300,000 entries on every visit and summing today's.
    """
    today = timezone.localdate()
    first = today - timedelta(days=CHART_DAYS - 1)
    zone = timezone.get_current_timezone_name()
    key = f"backoffice:ledger-days:{zone}:{first}:{today}"
    closed = cache.get(key)
    if closed is None:
        closed = _ledger_sums(first, today)
        cache.set(key, closed, 26 * 3600)
    live = _ledger_sums(today, today + timedelta(days=1))
    merged: dict[str, dict[date, dict[str, int]]] = {}
    for sums in (closed, live):
        for currency, days in sums.items():
            merged.setdefault(currency, {}).update(days)
    return merged


def _ledger_sums(first: date, until: date) -> dict[str, dict[date, dict[str, int]]]:
    """Sums per currency and day from `first` (inclusive) to `until` (exclusive), local days."""
    aggregates = {name: Sum("amount", filter=Q(kind=kind)) for name, kind, _ in SERIES}
    aggregates["credits"] = Count("pk", filter=Q(kind=LedgerEntry.Kind.CREDIT))
    rows = (
        LedgerEntry.objects.filter(
            created_at__gte=_day_start(first),
            created_at__lt=_day_start(until),
            kind__in=[kind for _, kind, _ in SERIES],
        )
        .exclude(payment__mode=PaymentMode.TEST)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("currency", "day")
        .annotate(**aggregates)
    )
    sums: dict[str, dict[date, dict[str, int]]] = {}
    for row in rows:
        sums.setdefault(row["currency"], {})[row["day"]] = {
            name: abs(row[name] or 0) for name in [*(n for n, _, _ in SERIES), "credits"]
        }
    return sums


def chart_currencies(days: dict[str, dict[date, dict[str, int]]]) -> list[str]:
    """The currencies paid in over the chart's 30 days, the busiest first."""
    credits = {code: sum(d["credits"] for d in by_day.values()) for code, by_day in days.items()}
    return sorted((code for code, n in credits.items() if n), key=lambda c: (-credits[c], c))


def chart_data(by_day: dict[date, dict[str, int]]) -> list[dict]:
    """One row per day for the last 30 days: paid, refunded, charged back (minor units)."""
    first = timezone.localdate() - timedelta(days=CHART_DAYS - 1)
    days = []
    for offset in range(CHART_DAYS):
        day = first + timedelta(days=offset)
        row = by_day.get(day, {})
        days.append({"day": day, **{name: row.get(name, 0) for name, _, _ in SERIES}})
    return days


def chart_svg(currency: str, days: list[dict]) -> str:
    width, height, left, bottom, top = 800, 240, 110, 28, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([1] + [d[name] for d in days for name, _, _ in SERIES])
    slot = plot_w / len(days)
    bar = slot / (len(SERIES) + 1)
    bars = []
    for i, day in enumerate(days):
        for j, (name, _, color) in enumerate(SERIES):
            value = day[name]
            h = plot_h * value / peak
            x = left + i * slot + j * bar + bar / 2
            label = name.replace("_", " ")
            title = f"{day['day']:%Y-%m-%d} {label}: {money.format_amount(value, currency)}"
            bars.append(
                (f"{x:.1f}", f"{top + plot_h - h:.1f}", f"{bar:.1f}", f"{h:.1f}", color, title)
            )
    bar_html = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>', bars
    )
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>',
        (
            (f"{left + i * slot + slot / 2:.1f}", height - 8, f"{d['day']:%d %b}")
            for i, d in enumerate(days)
            if i % 5 == 0 or i == len(days) - 1
        ),
    )
    return format_html(
        '<svg id="dashboard-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
        'width="100%" role="img" aria-label="Daily paid, refunded and charged back, {cur}">'
        '<line x1="{l}" y1="{base}" x2="{r}" y2="{base}" stroke="#999"></line>'
        '<text x="{lx}" y="{ty}" font-size="11" text-anchor="end">{peak}</text>'
        '<text x="{lx}" y="{base}" font-size="11" text-anchor="end">0</text>'
        "{bars}{labels}</svg>",
        w=width,
        h=height,
        cur=currency,
        l=left,
        r=width - 10,
        base=f"{top + plot_h:.1f}",
        lx=left - 6,
        ty=top + 10,
        peak=money.format_amount(peak, currency),
        bars=bar_html,
        labels=labels,
    )


def warnings_for(user) -> list[dict[str, str]]:
    """What puts the shop at risk now, for those who can act on it."""
    found = []
    if not twofactor.is_enrolled(user):
        found.append(
            {"text": "Your account signs in with a password only: turn on two-factor login.",
             "url": "2fa/"}
        )  # fmt: skip
    if user.has_perm("backoffice.view_backup") and backups.backup_is_overdue():
        last = backups.last_good_backup()
        when = (
            f"the last was {timezone.localtime(last.created_at):%Y-%m-%d %H:%M}"
            if last
            else "there is none"
        )
        found.append(
            {"text": f"No verified backup in the last 26 hours ({when}).",
             "url": "backoffice/backup/"}
        )  # fmt: skip
    return found


def telegram_health(user) -> dict | None:
    """Checkout speed against Telegram's 10 s limit, and the webhook as Telegram sees it."""
    if not user.has_perm("botbridge.view_telegramupdate"):
        return None
    checkout = health.checkout_health()
    status = health.webhook_latest()
    return {"checkout": checkout, "webhook": status}


def dashboard_context(request) -> dict:
    user = request.user
    context = {
        "tiles": queue_tiles(user),
        "warnings": warnings_for(user),
        "health": telegram_health(user),
        "can_golive": user.has_perm("backoffice.run_golive_check"),
    }
    if user.has_perm("payments.view_payment"):
        context["money"] = money_table()
        days = ledger_days()
        currencies = chart_currencies(days)
        currency = request.GET.get("currency")
        currency = currency if currency in currencies else (currencies[0] if currencies else None)
        if currency:
            context["chart_currency"] = currency
            context["chart_currencies"] = currencies
            context["chart_legend"] = [(name.replace("_", " "), color) for name, _, color in SERIES]
            context["chart"] = chart_svg(currency, chart_data(days.get(currency, {})))
    return context
