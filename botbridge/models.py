from django.db import models
from django.db.models import Q

from shop.models import Customer, Order


class TelegramUpdate(models.Model):
    """Every update Telegram delivered, stored raw under its update_id before it is acted on."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    update_id = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=32, help_text="message, callback_query, pre_checkout_query…")
    lane = models.PositiveSmallIntegerField(
        default=0, help_text="Worker lane (chat id modulo TELEGRAM_UPDATE_LANES)."
    )
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    reply = models.JSONField(
        null=True,
        blank=True,
        help_text="The Bot API call sent back in the webhook's response (a query's answer), "
        "kept so that a redelivery gets the same answer.",
    )

    class Meta:
        ordering = ["-update_id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(status="failed"),
                name="botbridge_update_failed",
            ),
            models.Index(
                fields=["lane", "update_id"],
                condition=Q(status="received"),
                name="botbridge_update_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"Update {self.update_id} ({self.kind})"


class Message(models.Model):
    """The transcript with a customer, both ways; outbound rows are also the outbox."""

    class Direction(models.TextChoices):
        INBOUND = "in", "From the customer"
        OUTBOUND = "out", "To the customer"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    chat_id = models.BigIntegerField()
    direction = models.CharField(max_length=3, choices=Direction.choices)
    method = models.CharField(max_length=32, default="sendMessage")
    text = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    # e.g. "receipt:payment:42": the same notice is queued once however often it is asked.
    dedupe_key = models.CharField(max_length=128, null=True, blank=True, unique=True)
    telegram_message_id = models.BigIntegerField(null=True, blank=True)
    update = models.ForeignKey(
        TelegramUpdate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="botbridge_message_transcript"),
            models.Index(
                fields=["status", "created_at"],
                condition=Q(direction="out") & ~Q(status="sent"),
                name="botbridge_message_outbox",
            ),
        ]

    def __str__(self) -> str:
        arrow = "→" if self.direction == self.Direction.OUTBOUND else "←"
        return f"{arrow} {self.chat_id}: {self.text[:40]}"
