"""Write paths for Telegram updates: store raw under update_id, then act on it once.

Updates that Telegram waits on (pre-checkout and shipping queries must be answered within
10 s; a successful or refunded payment is money) are handled inside the webhook request, in
the same transaction that stores them, and a query's answer goes back in the response.
Everything else (commands, text, buttons) is, when TELEGRAM_HANDLE_IN_WORKER is on, stored
with one INSERT and answered at once; the dispatcher (`manage.py run_update_dispatcher`)
sees it waiting and wakes its lane's drain on a worker (see `botbridge.lanes`).
"""

import json
import logging
import re
import threading
import time
import traceback
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

from botbridge import fastpath, handlers, lanes
from botbridge.models import TelegramUpdate
from core import secrets
from core.errors import DomainError
from shop import alerts

logger = logging.getLogger(__name__)

# The database went away: answer 5xx so Telegram delivers the update again later.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)

DRAIN_BATCH = 50

# Escapes in the JSON text for characters jsonb refuses (NUL, any surrogate: a valid pair
# parses to one character, which the second pattern then leaves alone).
_JSONB_REFUSES = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def update_receive(*, payload: dict[str, Any], raw: str | None = None) -> dict[str, Any] | None:
    """Store an update under its update_id and see that it is acted on once.

    `raw` is the update's JSON text as received (the webhook's body), stored as it is; without
    it the payload is serialised. Returns the Bot API call that answers the update
    (`{"method": ..., params}`, for the webhook's response), or None. A redelivered update_id
    changes nothing and gets the answer given the first time. A bug while handling is kept on
    the row (status failed, with the traceback) and does not raise, so one bad update never
    blocks the bot; a transient database error raises and keeps nothing, so Telegram's
    redelivery starts afresh.
    """
    if raw is None or _JSONB_REFUSES.search(raw):
        # PostgreSQL's jsonb cannot hold NUL or a lone surrogate, in a key or a value:
        # U+FFFD takes their place and the update is stored as re-serialised.
        payload = _jsonb_safe(payload)
        raw = json.dumps(payload, ensure_ascii=False)
    started = time.perf_counter()
    update_id, kind, lane = (
        payload["update_id"],
        handlers.update_kind(payload),
        lanes.lane_of(payload),
    )
    now = timezone.now()
    if settings.TELEGRAM_HANDLE_IN_WORKER and not handlers.is_urgent(payload):
        # One statement, committed at once when no caller holds a transaction. Nothing
        # answers these in the response; the dispatcher wakes the lane.
        fastpath.update_insert(
            update_id=update_id,
            kind=kind,
            lane=lane,
            raw=raw,
            status=TelegramUpdate.Status.RECEIVED,
            attempts=0,
            received_at=now,
        )
        return None
    # Stored as handled, since this transaction handles it and nobody sees the row before it
    # commits. A delivery of the same update in parallel waits on the unique index until this
    # transaction ends, then inserts nothing: it is handled once. No savepoint: a bug rolls the
    # whole transaction back, and the update is then kept as failed in one of its own.
    stored = {"update_id": update_id, "kind": kind, "lane": lane, "raw": raw, "attempts": 1}
    committed: list[bool] = []
    reply = None
    try:
        with transaction.atomic():
            # Registered first, so it runs first: from here on the update is handled.
            transaction.on_commit(lambda: committed.append(True))
            inserted = fastpath.update_insert(
                **stored, status=TelegramUpdate.Status.PROCESSED, received_at=now, processed_at=now
            )
            if not inserted:
                return _reply_given(update_id)
            reply = handlers.dispatch(handlers.Incoming(update_id, payload))
            if reply is not None:
                handled_ms = round((time.perf_counter() - started) * 1000)
                fastpath.update_set_reply(update_id=update_id, reply=reply, handled_ms=handled_ms)
    except TRANSIENT_ERRORS:
        if committed:
            return reply
        raise
    except Exception:
        if committed:
            # The update was handled and kept; only a step after the commit failed (what it
            # published has a beat sweep behind it), so Telegram still gets its answer.
            logger.warning(
                "Telegram update %s processed; a step after the commit failed",
                update_id,
                exc_info=True,
            )
            return reply
        logger.exception("Telegram update %s failed", update_id)
        error = secrets.mask(traceback.format_exc())[-8000:]
        fastpath.update_insert(
            **stored, status=TelegramUpdate.Status.FAILED, received_at=now, error=error
        )
        _alert_failed(update_id, kind)
        return None
    return reply


def _jsonb_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_jsonb_safe(key): _jsonb_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonb_safe(item) for item in value]
    return value


def _reply_given(update_id: int) -> dict[str, Any] | None:
    return (
        TelegramUpdate.objects.filter(update_id=update_id).values_list("reply", flat=True).first()
    )


def updates_dispatch() -> int:
    """Wake every lane that has stored updates waiting and no drain; returns how many.

    The dispatcher process calls this several times a second; the beat once a minute as
    the safety net for a dispatcher that is not running. A lane whose drain died with its
    worker is woken again once the drain's flag has expired.
    """
    waiting = (
        TelegramUpdate.objects.filter(status=TelegramUpdate.Status.RECEIVED)
        .order_by("lane")
        .values_list("lane", flat=True)
        .distinct()
    )
    woken = 0
    for lane in list(waiting):
        try:
            woken += _wake(lane)
        except Exception:
            # The broker is unreachable, or (tasks in-process) the drain failed: the rows
            # stay stored and the next pass tries again.
            logger.exception("Could not wake update lane %s", lane)
    return woken


def updates_dispatch_forever(*, interval: float, stop: threading.Event) -> None:
    """The dispatcher's loop: a pass every `interval` seconds until `stop` is set."""
    try:
        while not stop.is_set():
            # A long-running loop: drop connections the database closed meanwhile.
            close_old_connections()
            try:
                updates_dispatch()
            except TRANSIENT_ERRORS as error:
                logger.warning("Dispatch pass failed, trying again: %s", error)
                stop.wait(min(5.0, interval * 10))
            stop.wait(interval)
    finally:
        connection.close()


def _wake(lane: int) -> bool:
    """Publish a drain for this lane unless one is running; True if one was published."""
    from botbridge import tasks  # tasks import this module

    if not lanes.claim(lane):
        return False
    try:
        tasks.updates_drain.delay(lane)
    except BaseException:
        lanes.release(lane)  # no drain holds it: let the next pass try at once
        raise
    return True


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


def _process(row: TelegramUpdate) -> None:
    """Handle a stored update (the worker's, or a replay) and write the outcome on its row."""
    row.attempts += 1
    try:
        with transaction.atomic():
            reply = handlers.dispatch(handlers.Incoming(row.update_id, row.payload))
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        logger.exception("Telegram update %s failed", row.update_id)
        _alert_failed(row.update_id, row.kind)
        row.status = TelegramUpdate.Status.FAILED
        row.error = secrets.mask(traceback.format_exc())[-8000:]
        row.processed_at = row.reply = None
    else:
        row.status = TelegramUpdate.Status.PROCESSED
        row.error = ""
        row.processed_at = timezone.now()
        row.reply = reply
    row.save(update_fields=["status", "error", "attempts", "processed_at", "reply"])


PURGE_BATCH = 5000


def updates_purge(*, older_than: timedelta) -> int:
    """Delete handled updates received before `older_than` ago; failed ones stay for staff.

    In batches, so that a first run over years of updates never holds one long transaction.
    """
    cutoff = timezone.now() - older_than
    old = TelegramUpdate.objects.filter(
        status=TelegramUpdate.Status.PROCESSED, received_at__lt=cutoff
    )
    purged = 0
    while ids := list(old.values_list("pk", flat=True)[:PURGE_BATCH]):
        purged += TelegramUpdate.objects.filter(pk__in=ids).delete()[0]
    return purged


def _alert_failed(update_id: int, kind: str) -> None:
    """Staff hear of a failed update once (a failed payment update is money waiting)."""
    alerts.staff_alert(
        key=f"update:{update_id}:failed",
        text=f"Telegram update {update_id} ({kind}) failed; it is kept and can be replayed.",
        path=f"/admin/botbridge/telegramupdate/?update_id={update_id}",
    )
