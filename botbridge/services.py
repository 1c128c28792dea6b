"""Write paths for Telegram updates: store raw, then act, in one transaction."""

import logging
import traceback
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from botbridge import handlers
from botbridge.models import TelegramUpdate
from shop.errors import DomainError

logger = logging.getLogger(__name__)

# The database went away: answer 5xx so Telegram delivers the update again later.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


def update_receive(*, payload: dict[str, Any]) -> tuple[TelegramUpdate, bool]:
    """Store an update under its update_id and act on it once: (row, is_new_delivery).

    A redelivered update_id that was already handled changes nothing. A bug while handling
    is kept on the row (status failed, with the traceback) and does not raise, so one bad
    update never blocks the bot; a transient database error raises and rolls back all.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = TelegramUpdate.objects.create(
                    update_id=payload["update_id"],
                    kind=handlers.update_kind(payload),
                    payload=payload,
                )
        except IntegrityError:
            pass  # stored already: a redelivery, or the same update arriving in parallel
        # The lock makes a concurrent delivery of the same update wait, then see it handled.
        row = TelegramUpdate.objects.select_for_update().get(update_id=payload["update_id"])
        if row.status != TelegramUpdate.Status.RECEIVED:
            return row, False
        _process(row)
    return row, True


def update_replay(*, update: TelegramUpdate) -> TelegramUpdate:
    """Staff run a failed update again, after the bug behind it was fixed."""
    with transaction.atomic():
        row = TelegramUpdate.objects.select_for_update().get(pk=update.pk)
        if row.status != TelegramUpdate.Status.FAILED:
            raise DomainError("Only a failed update can be replayed.", code="not_failed")
        _process(row)
    return row


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
