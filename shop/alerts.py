"""Alerts for staff: new disputes, evidence deadlines, payments held for review, failed
webhook updates, webhook trouble, failing backups.

Each is sent once (its key is an outbox dedupe key). With STAFF_ALERT_CHAT_ID set they go to
that Telegram chat through the same outbox and rate limits as customers' messages, with a
link to the admin page; otherwise, and as the fallback, by e-mail to STAFF_ALERT_EMAILS.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from shop import outbox
from shop.models import Message

logger = logging.getLogger(__name__)


def staff_alert(*, key: str, text: str, path: str = "") -> Message | None:
    """Tell staff once; returns the outbox row (None when it was sent before)."""
    dedupe_key = f"alert:{key}"[:128]
    if Message.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    link = f"{settings.BACKOFFICE_URL.rstrip('/')}{path}" if path else ""
    body = f"⚠️ {text}\n{link}".strip()
    chat_id = settings.STAFF_ALERT_CHAT_ID
    try:
        with transaction.atomic():
            if chat_id:
                return outbox.staff_message_queue(chat_id=chat_id, text=body, dedupe_key=dedupe_key)
            row = Message.objects.create(
                chat_id=0, direction=Message.Direction.OUTBOUND, method="email", text=body,
                status=Message.Status.SENT, sent_at=timezone.now(), dedupe_key=dedupe_key,
            )  # fmt: skip
    except IntegrityError:
        return None  # the same alert raised at the same moment elsewhere
    if settings.STAFF_ALERT_EMAILS:
        transaction.on_commit(lambda: _email(body), robust=True)
    return row


def _email(body: str) -> None:
    send_mail(
        subject=f"[{settings.PRODUCT_NAME}] {body.splitlines()[0][:120]}",
        message=body,
        from_email=None,
        recipient_list=settings.STAFF_ALERT_EMAILS,
    )
