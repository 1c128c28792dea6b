from django.db import models
from django.db.models import Q


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
    handled_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="For a query answered in the webhook's response (pre-checkout): how long the "
        "answer took, from the request to the answer (Telegram cancels after 10 s).",
    )
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
            models.Index(
                fields=["received_at"],
                condition=Q(handled_ms__isnull=False),
                name="botbridge_update_answered",
            ),
        ]

    def __str__(self) -> str:
        return f"Update {self.update_id} ({self.kind})"


class WebhookStatus(models.Model):
    """What Telegram said of our webhook (getWebhookInfo), every 5 minutes."""

    checked_at = models.DateTimeField(auto_now_add=True, db_index=True)
    url = models.CharField(max_length=512, blank=True)
    pending_update_count = models.PositiveIntegerField(default=0)
    last_error_date = models.DateTimeField(null=True, blank=True)
    last_error_message = models.CharField(max_length=512, blank=True)
    max_connections = models.PositiveIntegerField(null=True, blank=True)
    allowed_updates = models.JSONField(default=list, blank=True)
    error = models.CharField(
        max_length=512, blank=True, help_text="When Telegram could not be asked at all."
    )

    class Meta:
        ordering = ["-checked_at", "-id"]
        verbose_name_plural = "webhook statuses"

    def __str__(self) -> str:
        return f"Webhook at {self.checked_at:%Y-%m-%d %H:%M}: {self.pending_update_count} pending"
