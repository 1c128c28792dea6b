"""Telegram Stars reconciliation: read what Telegram recorded, hand it to payments to match.

getStarTransactions has no date filter: it lists the bot's transactions in chronological
order, 100 per call from an offset. A run reads from where the last one stopped (everything,
the first time), re-reading the last page it knew to check that Telegram's list still starts
the way it did (if not, it reads everything again: rows already stored are kept as they are).
`since`/`until` choose the days whose differences are checked.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from botbridge import bot
from core.errors import DomainError
from payments.bulk import exclusive, table_analyze
from payments.models import StarBalanceSnapshot, StarTransaction
from payments.reports import days_window
from payments.services import stars_reconciliation as stars
from payments.services.differences import SyncResult

logger = logging.getLogger(__name__)

PAGE = 100  # the Bot API's maximum per call
STORE_EVERY = 1000  # transactions handed to the database at once
ANALYZE_AFTER = 1000  # new transactions that make the planner's statistics stale


@dataclass
class StarsRun:
    pages: int = 0
    read: int = 0
    new: int = 0
    restarted: bool = False
    matched: dict[str, int] = field(default_factory=dict)
    snapshot: StarBalanceSnapshot | None = None
    differences: SyncResult | None = None

    def summary(self) -> str:
        diff = self.differences or SyncResult()
        balance = ""
        if self.snapshot is not None:
            state = "adds up" if self.snapshot.adds_up else "does NOT add up"
            balance = f" Balance {stars.stars_text(self.snapshot.reported_nanos)} {state}."
        return (
            f"Read {self.read} transactions in {self.pages} calls, {self.new} new."
            f" Differences: {diff.found} found, {diff.new} new, {diff.closed} closed.{balance}"
        )


def _fetch(run: StarsRun, offset: int) -> None:
    pending: list[dict] = []
    first = offset
    while True:
        page = bot.get_star_transactions(offset=offset, limit=PAGE)
        run.pages += 1
        run.read += len(page)
        pending += page
        offset += len(page)
        if len(pending) >= STORE_EVERY or len(page) < PAGE:
            run.new += stars.star_transactions_store(pending, first_position=first)
            first, pending = offset, []
        if len(page) < PAGE:
            return


def _resume_offset(run: StarsRun) -> tuple[int, bool]:
    """Where to read from, and whether there may be more: after the last page we knew, if
    Telegram's list still holds it where it did."""
    known = stars.stored_count()
    if not known:
        return 0, True
    start = max(0, known - PAGE)
    page = bot.get_star_transactions(offset=start, limit=PAGE)
    run.pages += 1
    stored = stars.stored_ids_at(range(start, start + len(page)))
    for i, tx in enumerate(page):
        ours = stored.get(start + i)
        theirs = (str(tx["id"]), "in" if "source" in tx else "out")
        if ours is not None and ours != theirs:
            logger.warning("Telegram's Stars list moved at %s: reading it all again", start + i)
            run.restarted = True
            return 0, True
    run.read += len(page)
    run.new += stars.star_transactions_store(page, first_position=start)
    return start + len(page), len(page) == PAGE


def _window(since: date | None, until: date | None, tz: ZoneInfo) -> tuple[datetime, datetime]:
    if since is None:
        first = StarTransaction.objects.order_by("date").values_list("date", flat=True).first()
        since = timezone.localtime(first, tz).date() if first else timezone.localdate()
    return days_window(since, until or timezone.localdate(timezone=tz), tz)


LOCK_NAME = "botbridge:reconcile-stars"


def stars_reconcile(*, since: date | None = None, until: date | None = None) -> StarsRun:
    """Read, store, match, snapshot the balance, then find the differences in the window.

    One run at a time (the nightly one and a "read now" may meet): a second waits its turn by
    being refused with DomainError; what the first stores is what the second would have.
    """
    with exclusive(LOCK_NAME) as got:
        if not got:
            raise DomainError("A Stars reconciliation is already running.", code="running")
        return _stars_reconcile(since, until)


def _stars_reconcile(since: date | None, until: date | None) -> StarsRun:
    run = StarsRun()
    horizon = timezone.now() - timedelta(seconds=settings.RECONCILE_HORIZON_SECONDS)
    offset, more = _resume_offset(run)
    if more:
        _fetch(run, offset)
    if run.new >= ANALYZE_AFTER:
        table_analyze(StarTransaction)
    run.snapshot = stars.balance_snapshot_record(**bot.get_my_star_balance())
    run.matched = stars.stars_match()
    tz = ZoneInfo(settings.TIME_ZONE)
    start, end = _window(since, until, tz)
    run.differences = stars.stars_differences(start=start, end=end, horizon=horizon)
    stars.balance_difference_sync(run.snapshot)
    logger.info("Stars reconciliation: %s", run.summary())
    return run
