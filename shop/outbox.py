"""Every message to a customer is an outbox row first; botbridge sends it.

The shop and payments write rows here, in the transaction of the change they tell the
customer about, so a receipt exists exactly when the crediting committed. Sending is
published after the commit as the Celery task `botbridge.message_send`, by name: this layer
never imports the Telegram edge. If that publish is lost, beat's `botbridge.message_requeue_due`
finds the row still queued and publishes it again.
"""

import threading
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import DomainError
from shop import publish
from shop.models import Customer, Message, Order

SEND_TASK = "botbridge.message_send"

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


def send_publish(message_ids: list[int]) -> None:
    """Publish the sending task for these rows now; many rows share one broker connection."""
    publish.publish(SEND_TASK, [(pk,) for pk in message_ids])


def _enqueue(messages: list[Message]) -> None:
    """Schedule sending after the commit."""
    if getattr(_held, "active", False) or not messages:
        return
    publish.publish_on_commit(SEND_TASK, [(message.pk,) for message in messages])


def _outbound(
    *,
    customer: Customer | None,
    text: str,
    chat_id: int | None = None,
    method: str = "sendMessage",
    params: dict[str, Any] | None = None,
    reply_markup: dict[str, Any] | None = None,
    order: Order | None = None,
    dedupe_key: str | None = None,
) -> Message:
    """An unsaved outbox row with its Bot API parameters (to a customer, or to `chat_id`)."""
    chat_id = customer.telegram_id if customer is not None else chat_id
    params = dict(params or {})
    params["chat_id"] = chat_id
    if method == "sendMessage":
        params["text"] = text
    if reply_markup:
        params["reply_markup"] = reply_markup
    return Message(
        customer=customer,
        order=order,
        chat_id=chat_id,
        direction=Message.Direction.OUTBOUND,
        method=method,
        text=text,
        params=params,
        status=Message.Status.QUEUED,
        dedupe_key=dedupe_key,
    )


def keyboard(rows: list[list[dict[str, str]]]) -> dict[str, Any]:
    """An inline keyboard as plain JSON: [[{"text": ..., "callback_data": ...}]]."""
    return {"inline_keyboard": rows}


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
    return _save_once(message)


def _save_once(message: Message) -> Message:
    """Save and schedule a new row; with a dedupe key already used, the row that has it."""
    dedupe_key = message.dedupe_key
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


def staff_message_queue(*, chat_id: int, text: str, dedupe_key: str) -> Message:
    """A message to the staff chat (an alert), sent like any other, once per key."""
    return _save_once(_outbound(customer=None, chat_id=chat_id, text=text, dedupe_key=dedupe_key))


def messages_queue_many(rows: list[tuple[Customer, Order | None, str, str]]) -> list[Message]:
    """Queue many new messages at once: (customer, order, text, dedupe key) each; one INSERT.

    For notices that cannot have been queued before (the receipts of payments being credited
    for the first time, under their row lock).
    """
    messages = Message.objects.bulk_create(
        [
            _outbound(customer=customer, text=body, order=order, dedupe_key=key)
            for customer, order, body, key in rows
        ]
    )
    _enqueue(messages)
    return messages


def inbound_record(
    *,
    customer: Customer | None,
    chat_id: int,
    text: str,
    telegram_update_id: int | None = None,
    data: dict | None = None,
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
        telegram_update_id=telegram_update_id,
    )


@transaction.atomic
def message_retry(*, message: Message) -> Message:
    """Staff put a failed row back in the queue (from the admin)."""
    updated = Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        status=Message.Status.QUEUED, next_attempt_at=None, attempts=0
    )
    if not updated:
        raise DomainError("Only a failed message can be retried.", code="not_failed")
    message.refresh_from_db()
    _enqueue([message])
    return message


PURGE_BATCH = 5000


def messages_purge_bodies(*, older_than: timedelta) -> int:
    """Empty the Bot API bodies (`params`) of messages sent before `older_than` ago.

    The text stays: it is the transcript a dispute's evidence pack needs. Failed rows keep
    theirs for staff to retry.
    """
    cutoff = timezone.now() - older_than
    old = Message.objects.filter(
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.SENT,
        created_at__lt=cutoff,
    ).exclude(params={})
    purged = 0
    while ids := list(old.values_list("pk", flat=True)[:PURGE_BATCH]):
        purged += Message.objects.filter(pk__in=ids).update(params={})
    return purged
