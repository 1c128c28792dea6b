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
