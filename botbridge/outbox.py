"""Every message to a customer is an outbox row first, sent by the `telegram` queue.

A row is claimed with a conditional UPDATE before it is sent, so no row is ever sent twice;
a worker that dies between claim and answer leaves the row `sending`, which the sweeper
marks failed for a person to decide (Telegram may or may not have shown it).
"""

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from botbridge import ratelimit
from botbridge.models import Message
from botbridge.texts import text
from core import money
from shop.models import Customer, Order

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
SENDING_STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, retry, failed, skipped
    retry_in: float = 0.0


_held = threading.local()


@contextmanager
def held():
    """Queue rows without scheduling their sending (seeding history, bulk imports).

    The rows stay `queued`; `botbridge.message_requeue_due` in beat sends them later.
    """
    _held.active = True
    try:
        yield
    finally:
        _held.active = False


def _enqueue(messages: list[Message]) -> None:
    """Schedule sending after the commit; many rows share one broker connection."""
    if getattr(_held, "active", False) or not messages:
        return
    from botbridge import tasks  # tasks import this module

    def publish() -> None:
        from config.celery import app

        if app.conf.task_always_eager:
            for message in messages:
                tasks.message_send.delay(message.pk)
            return
        with app.producer_or_acquire() as producer:
            for message in messages:
                tasks.message_send.apply_async((message.pk,), producer=producer)

    transaction.on_commit(publish)


def _outbound(
    *,
    customer: Customer,
    text: str,
    method: str = "sendMessage",
    params: dict[str, Any] | None = None,
    reply_markup: dict[str, Any] | None = None,
    order: Order | None = None,
    dedupe_key: str | None = None,
) -> Message:
    """An unsaved outbox row with its Bot API parameters."""
    params = dict(params or {})
    params["chat_id"] = customer.telegram_id
    if method == "sendMessage":
        params["text"] = text
    if reply_markup:
        params["reply_markup"] = reply_markup
    return Message(
        customer=customer,
        order=order,
        chat_id=customer.telegram_id,
        direction=Message.Direction.OUTBOUND,
        method=method,
        text=text,
        params=params,
        status=Message.Status.QUEUED,
        dedupe_key=dedupe_key,
    )


def message_queue(
    *,
    customer: Customer,
    text: str = "",
    method: str = "sendMessage",
    params: dict[str, Any] | None = None,
    reply_markup: dict[str, Any] | None = None,
    order: Order | None = None,
    dedupe_key: str | None = None,
) -> Message:
    """Queue one message to a customer; sent after the surrounding transaction commits."""
    message = _outbound(
        customer=customer,
        text=text,
        method=method,
        params=params,
        reply_markup=reply_markup,
        order=order,
        dedupe_key=dedupe_key,
    )
    with transaction.atomic():
        if dedupe_key:
            existing = Message.objects.filter(dedupe_key=dedupe_key).first()
            if existing:
                return existing
        try:
            with transaction.atomic():
                message.save(force_insert=True)
        except IntegrityError:
            if not dedupe_key:
                raise
            return Message.objects.get(dedupe_key=dedupe_key)
        _enqueue([message])
    return message


def inbound_record(
    *, customer: Customer | None, chat_id: int, text: str, update=None, data: dict | None = None
) -> Message:
    """Keep what the customer wrote or pressed in the transcript."""
    return Message.objects.create(
        customer=customer,
        chat_id=chat_id,
        direction=Message.Direction.INBOUND,
        method="update",
        text=text[:4096],
        params=data or {},
        status=Message.Status.RECEIVED,
        update=update,
    )


def invoice_queue(*, order: Order, payload: str) -> Message:
    """Queue the Telegram invoice for an order (prices in minor units, one line per item)."""
    customer = order.customer
    items = list(order.items.select_related("product"))
    first = items[0]
    if order.currency == money.STARS:
        # Stars invoices must carry exactly one price line.
        prices = [
            {
                "label": first.title if len(items) == 1 else order.reference,
                "amount": order.total_amount,
            }
        ]
    else:
        prices = [
            {
                "label": f"{item.title} × {item.quantity}" if item.quantity > 1 else item.title,
                "amount": item.line_total,
            }
            for item in items
        ]
    product = first.product
    params = {
        "title": first.title if len(items) == 1 else f"Order {order.reference}",
        "description": product.description,
        "payload": payload,
        "currency": order.currency,
        "prices": prices,
        "photo_url": product.photo_url,
        "need_shipping_address": any(i.kind == "physical" for i in items),
    }
    return message_queue(
        customer=customer,
        method="sendInvoice",
        text=f"Invoice {order.reference}: {order.total_display}",
        params=params,
        order=order,
        dedupe_key=f"invoice:{order.pk}",
    )


def receipt_text(*, payment, order: Order, items, customer: Customer, delivered: list[str]) -> str:
    """The receipt in the customer's language: lines, total, payment id, what was delivered."""
    lang = customer.language
    lines = "\n".join(
        f"{item.title} × {item.quantity}: {money.format_amount(item.line_total, item.currency)}"
        for item in items
    )
    parts = [
        text(
            lang,
            "receipt",
            reference=order.reference,
            lines=lines,
            total=money.format_amount(payment.amount, payment.currency),
            charge_id=payment.telegram_payment_charge_id,
            date=timezone.localtime(payment.paid_at).strftime("%Y-%m-%d %H:%M %Z"),
        )
    ]
    kinds = {item.kind for item in items}
    if "topup" in kinds:
        parts.append(
            text(
                lang, "receipt_topup", amount=money.format_amount(payment.amount, payment.currency)
            )
        )
    if delivered:
        parts.append(text(lang, "receipt_digital", content="\n".join(delivered)))
    if "physical" in kinds:
        parts.append(text(lang, "receipt_shipping"))
    return "\n\n".join(parts)


def receipt_queue(*, payment, order: Order, delivered: list[str]) -> Message:
    """The receipt after crediting, with what was delivered; once per payment."""
    customer = order.customer
    body = receipt_text(
        payment=payment,
        order=order,
        items=list(order.items.all()),
        customer=customer,
        delivered=delivered,
    )
    return message_queue(customer=customer, text=body, order=order, dedupe_key=receipt_key(payment))


def receipt_key(payment) -> str:
    return f"receipt:payment:{payment.pk}"


def receipts_queue_many(receipts: list[tuple]) -> list[Message]:
    """Queue many receipts at once: (payment, order, customer, text) each; one INSERT.

    For payments being credited for the first time (so no receipt row exists yet).
    """
    rows = Message.objects.bulk_create(
        [
            _outbound(customer=customer, text=body, order=order, dedupe_key=receipt_key(payment))
            for payment, order, customer, body in receipts
        ]
    )
    _enqueue(rows)
    return rows


def _retry_delay(attempts: int) -> float:
    return float(min(600, 2**attempts))


def message_send(*, message_id: int) -> SendOutcome:
    """Send one queued row, honouring Telegram's limits; never the same row twice."""
    from botbridge import bot  # the only module that imports telebot

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
    except bot.ApiTelegramException as error:
        return _handle_api_error(message, error, attempts)
    except (requests.ConnectionError, requests.Timeout, bot.ApiHTTPException) as error:
        return _requeue_or_fail(message, f"Network or server error: {error}", attempts)
    except Exception as error:  # a bug or a bad row: stop, keep it visible
        logger.exception("Outbound message %s failed", message.pk)
        _mark_failed(message, f"{type(error).__name__}: {error}")
        return SendOutcome("failed")
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENT,
        telegram_message_id=sent.message_id,
        sent_at=timezone.now(),
        error="",
        next_attempt_at=None,
    )
    return SendOutcome("sent")


def _handle_api_error(message: Message, error, attempts: int) -> SendOutcome:
    code = error.error_code
    description = f"{code}: {error.description}"
    if code == 429:
        retry_after = float((error.result_json.get("parameters") or {}).get("retry_after") or 1)
        # A flood wait is Telegram's instruction, not a failure: it costs no attempt.
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.QUEUED,
            attempts=F("attempts") - 1,
            error=description,
            next_attempt_at=timezone.now() + timedelta(seconds=retry_after),
        )
        return SendOutcome("retry", retry_after)
    if code == 403:
        # The user blocked the bot (or deleted their account): retrying will not help.
        _mark_failed(message, description)
        if message.customer_id:
            Customer.objects.filter(pk=message.customer_id).update(has_blocked_bot=True)
        return SendOutcome("failed")
    if code >= 500:
        return _requeue_or_fail(message, description, attempts)
    _mark_failed(message, description)
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


@transaction.atomic
def message_retry(*, message: Message) -> Message:
    """Staff put a failed row back in the queue (from the admin)."""
    from core.errors import DomainError

    updated = Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        status=Message.Status.QUEUED, next_attempt_at=None, attempts=0
    )
    if not updated:
        raise DomainError("Only a failed message can be retried.", code="not_failed")
    message.refresh_from_db()
    _enqueue([message])
    return message


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
    """Queued rows whose task was lost (broker restart): enqueue them again."""
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
    from botbridge import tasks

    ids = list(due)
    for pk in ids:
        tasks.message_send.delay(pk)
    return len(ids)
