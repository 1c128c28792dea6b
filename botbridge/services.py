"""Write paths for Telegram updates: store raw under update_id, then act on it once.

Updates that Telegram waits on (pre-checkout and shipping queries must be answered within
10 s; a successful or refunded payment is money) are handled inside the webhook request, in
the same transaction that stores them. Everything else (commands, text, buttons) is stored
and committed, and handled by a worker draining its lane (see `botbridge.lanes`), when
TELEGRAM_HANDLE_IN_WORKER is on: the webhook then answers Telegram after one INSERT.
"""

import logging
import time
import traceback
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from botbridge import handlers, lanes
from botbridge.models import TelegramUpdate
from shop.errors import DomainError

logger = logging.getLogger(__name__)

# The database went away: answer 5xx so Telegram delivers the update again later.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)

# A stored update still waiting after this (its drain was lost) gets its lane woken again.
REQUEUE_AFTER = timedelta(minutes=1)
DRAIN_BATCH = 50

# The table name is the model's own constant; every value is a bound parameter.
_INSERT = (
    f"INSERT INTO {TelegramUpdate._meta.db_table}"  # noqa: S608
    " (update_id, kind, lane, payload, status, error, attempts, received_at)"
    " VALUES (%s, %s, %s, %s, %s, '', 0, %s)"
    " ON CONFLICT (update_id) DO NOTHING RETURNING id"
)


def update_receive(*, payload: dict[str, Any]) -> tuple[TelegramUpdate | None, bool]:
    """Store an update under its update_id and see that it is acted on once.

    Returns (row, is_new_delivery); a redelivered update_id returns (None, False) and changes
    nothing. A bug while handling is kept on the row (status failed, with the traceback) and
    does not raise, so one bad update never blocks the bot; a transient database error raises
    and keeps nothing, so Telegram's redelivery starts afresh.
    """
    row = TelegramUpdate(
        update_id=payload["update_id"],
        kind=handlers.update_kind(payload),
        lane=lanes.lane_of(payload),
        payload=payload,
        status=TelegramUpdate.Status.RECEIVED,
        received_at=timezone.now(),
    )
    if settings.TELEGRAM_HANDLE_IN_WORKER and not handlers.is_urgent(payload):
        # One statement, committed at once when no caller holds a transaction.
        if not _insert(row):
            return None, False
        lane = row.lane
        transaction.on_commit(lambda: _wake(lane), robust=True)
        return row, True
    with transaction.atomic():
        # A delivery of the same update in parallel waits on the unique index until this
        # transaction ends, then inserts nothing: it is handled once.
        if not _insert(row):
            return None, False
        _process(row)
    return row, True


def _insert(row: TelegramUpdate) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: False when the update_id was stored already."""
    fields = TelegramUpdate._meta
    params = [
        row.update_id,
        row.kind,
        row.lane,
        fields.get_field("payload").get_db_prep_save(row.payload, connection),
        row.status,
        fields.get_field("received_at").get_db_prep_save(row.received_at, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, params)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding = False
    return True


def _wake(lane: int) -> None:
    """Make sure a drain runs on this lane: publish one only if the lane was idle."""
    from botbridge import tasks  # tasks import this module

    if lanes.claim(lane):
        tasks.updates_drain.delay(lane)


def updates_drain(*, lane: int, budget: float = lanes.DRAIN_BUDGET) -> int:
    """Handle a lane's stored updates in update_id order (the worker's half); returns count.

    Holds the lane's flag while working. Before leaving it gives the flag back and looks
    once more, so an update stored while it was finishing is never left behind.
    """
    deadline = time.monotonic() + budget
    try:
        return _drain(lane, deadline)
    except BaseException:
        lanes.release(lane)  # let the next update wake the lane again at once
        raise


def _drain(lane: int, deadline: float) -> int:
    from botbridge import tasks

    handled = 0
    while True:
        batch = _waiting(lane)
        if not batch:
            lanes.release(lane)
            batch = _waiting(lane)
            if not batch or not lanes.claim(lane):
                return handled  # nothing left, or a new drain already took the lane
        for update_id in batch:
            update_process(update_id=update_id)
            handled += 1
        if time.monotonic() > deadline:
            # Give the worker back to other work; the lane stays claimed by the next drain.
            lanes.extend(lane)
            tasks.updates_drain.delay(lane)
            return handled
        lanes.extend(lane)


def _waiting(lane: int) -> list[int]:
    return list(
        TelegramUpdate.objects.filter(lane=lane, status=TelegramUpdate.Status.RECEIVED)
        .order_by("update_id")
        .values_list("update_id", flat=True)[:DRAIN_BATCH]
    )


def update_process(*, update_id: int) -> TelegramUpdate | None:
    """Handle one stored update; a second run finds it handled and does nothing."""
    with transaction.atomic():
        row = TelegramUpdate.objects.select_for_update().filter(update_id=update_id).first()
        if row is None or row.status != TelegramUpdate.Status.RECEIVED:
            return row
        _process(row)
    return row


def update_replay(*, update: TelegramUpdate) -> TelegramUpdate:
    """Staff run a failed update again, after the bug behind it was fixed."""
    with transaction.atomic():
        row = TelegramUpdate.objects.select_for_update().get(pk=update.pk)
        if row.status != TelegramUpdate.Status.FAILED:
            raise DomainError("Only a failed update can be replayed.", code="not_failed")
        _process(row)
    return row


def update_requeue_stale() -> int:
    """Lanes with updates waiting over a minute (their drain was lost): wake them again."""
    cutoff = timezone.now() - REQUEUE_AFTER
    stale = set(
        TelegramUpdate.objects.filter(
            status=TelegramUpdate.Status.RECEIVED, received_at__lt=cutoff
        ).values_list("lane", flat=True)
    )
    for lane in sorted(stale):
        # A flag left by a killed drain has expired by now (FLAG_TTL < REQUEUE_AFTER).
        _wake(lane)
    return len(stale)


def _process(row: TelegramUpdate) -> None:
    row.attempts += 1
    try:
        with transaction.atomic():
            handlers.dispatch(row)
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        logger.exception("Telegram update %s failed", row.update_id)
        row.status = TelegramUpdate.Status.FAILED
        row.error = traceback.format_exc()[-8000:]
    else:
        row.status = TelegramUpdate.Status.PROCESSED
        row.error = ""
        row.processed_at = timezone.now()
    row.save(update_fields=["status", "error", "attempts", "processed_at"])
