"""Sending the outbox (`shop.outbox` rows) through the Bot API, within Telegram's limits.

A row is claimed with a conditional UPDATE before it is sent, so no row is ever sent twice;
a worker that dies between claim and answer leaves the row `sending`, which the sweeper
marks failed for a person to decide (Telegram may or may not have shown it).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from botbridge import bot, ratelimit
from core import secrets
from shop import outbox
from shop import services as shop_services
from shop.models import Message

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
SENDING_STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, retry, failed, skipped
    retry_in: float = 0.0


def _retry_delay(attempts: int) -> float:
    return float(min(600, 2**attempts))


def message_send(*, message_id: int) -> SendOutcome:
    """Send one queued row, honouring Telegram's limits; never the same row twice."""
    message = Message.objects.filter(pk=message_id, direction=Message.Direction.OUTBOUND).first()
    if message is None or message.status != Message.Status.QUEUED:
        return SendOutcome("skipped")
    now = timezone.now()
    if message.next_attempt_at and message.next_attempt_at > now:
        return SendOutcome("retry", (message.next_attempt_at - now).total_seconds())
    wait = ratelimit.acquire(message.chat_id)
    if wait:
        return SendOutcome("retry", wait)
    claimed = Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        status=Message.Status.SENDING, attempts=F("attempts") + 1
    )
    if not claimed:
        return SendOutcome("skipped")
    attempts = message.attempts + 1
    try:
        sent = bot.send(message.method, message.params)
    except bot.TelegramError as error:
        return _after_error(message, error, attempts)
    except Exception as error:  # a bug or a bad row: stop, keep it visible
        logger.exception("Outbound message %s failed", message.pk)
        _mark_failed(message, secrets.mask(f"{type(error).__name__}: {error}"))
        return SendOutcome("failed")
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENT,
        telegram_message_id=getattr(sent, "message_id", None),  # deleteMessage has none
        sent_at=timezone.now(),
        error="",
        next_attempt_at=None,
    )
    if message.method == "sendInvoice" and message.order_id:
        # The provider token went with it: the order's payment will be this kind of money.
        shop_services.order_set_payment_mode(
            order_id=message.order_id, mode=bot.payment_mode(message.params.get("currency", ""))
        )
    return SendOutcome("sent")


def _after_error(message: Message, error: bot.TelegramError, attempts: int) -> SendOutcome:
    description = str(error)
    if error.code == 429:
        retry_after = error.retry_after or 1.0
        # A flood wait is Telegram's instruction, not a failure: it costs no attempt.
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.QUEUED,
            attempts=F("attempts") - 1,
            error=description,
            next_attempt_at=timezone.now() + timedelta(seconds=retry_after),
        )
        return SendOutcome("retry", retry_after)
    if error.is_retryable:
        return _requeue_or_fail(message, description, attempts)
    _mark_failed(message, description)
    if error.is_bot_blocked and message.customer_id:
        # Retrying will not help until the customer writes to the bot again.
        shop_services.customer_mark_bot_blocked(customer_id=message.customer_id)
    return SendOutcome("failed")


def _requeue_or_fail(message: Message, error: str, attempts: int) -> SendOutcome:
    if attempts >= MAX_ATTEMPTS:
        _mark_failed(message, f"Gave up after {attempts} attempts. {error}")
        return SendOutcome("failed")
    delay = _retry_delay(attempts)
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.QUEUED,
        error=error[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    return SendOutcome("retry", delay)


def _mark_failed(message: Message, error: str) -> None:
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.FAILED, error=error[:2000], next_attempt_at=None
    )


def message_sweep_stale() -> int:
    """Rows left `sending` by a dead worker: Telegram may have shown them, so ask a person."""
    cutoff = timezone.now() - SENDING_STALE_AFTER
    stale = Message.objects.filter(
        status=Message.Status.SENDING, created_at__lt=cutoff, direction=Message.Direction.OUTBOUND
    )
    return stale.update(
        status=Message.Status.FAILED,
        error="The worker stopped while sending; Telegram may or may not have delivered it.",
    )


def message_requeue_due() -> int:
    """Queued rows whose task was lost (broker restart): publish them again."""
    now = timezone.now()
    due = (
        Message.objects.filter(
            status=Message.Status.QUEUED,
            direction=Message.Direction.OUTBOUND,
            created_at__lt=now - timedelta(minutes=2),
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("pk", flat=True)[:1000]
    )
    ids = list(due)
    outbox.send_publish(ids)
    return len(ids)
