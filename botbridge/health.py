"""Is the shop's Telegram edge healthy? The webhook as Telegram sees it, and checkout speed.

Telegram cancels a checkout whose pre-checkout query is not answered within 10 seconds, and
keeps (then drops) updates it cannot deliver: both fail quietly unless someone looks.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from botbridge import bot
from botbridge.models import TelegramUpdate, WebhookStatus
from shop import alerts

CHECKOUT_LIMIT_MS = 10_000
BACKLOG_ALERT = 100  # pending updates, and growing: the webhook is falling behind


def webhook_check() -> WebhookStatus:
    """Ask Telegram (getWebhookInfo), keep what it says, tell staff of errors and backlog."""
    try:
        info = bot.get_webhook_info()
    except bot.TelegramError as error:
        return WebhookStatus.objects.create(error=str(error)[:512])
    error_at = info.get("last_error_date")
    status = WebhookStatus.objects.create(
        url=info.get("url", "")[:512],
        pending_update_count=info.get("pending_update_count", 0),
        last_error_date=datetime.fromtimestamp(error_at, UTC) if error_at else None,
        last_error_message=(info.get("last_error_message") or "")[:512],
        max_connections=info.get("max_connections"),
        allowed_updates=info.get("allowed_updates") or [],
    )
    if status.last_error_date and status.last_error_date > timezone.now() - timedelta(hours=1):
        alerts.staff_alert(
            key=f"webhook:error:{error_at}",
            text=f"Telegram could not deliver to the webhook: {status.last_error_message}",
            path="/admin/botbridge/webhookstatus/",
        )
    previous = WebhookStatus.objects.exclude(pk=status.pk).filter(error="").first()
    growing = previous is None or status.pending_update_count > previous.pending_update_count
    if status.pending_update_count >= BACKLOG_ALERT and growing:
        alerts.staff_alert(
            key=f"webhook:backlog:{timezone.now():%Y%m%d%H}",
            text=f"{status.pending_update_count} updates wait at Telegram and the number grows.",
            path="/admin/botbridge/webhookstatus/",
        )
    return status


@dataclass
class CheckoutHealth:
    answered: int
    p95_ms: int | None
    slowest_ms: int | None
    limit_ms: int = CHECKOUT_LIMIT_MS


def checkout_health(*, hours: int = 1) -> CheckoutHealth:
    """The last hour's pre-checkout answers: how many, their 95th percentile, the slowest."""
    since = timezone.now() - timedelta(hours=hours)
    times = sorted(
        TelegramUpdate.objects.filter(
            received_at__gte=since, handled_ms__isnull=False, kind="pre_checkout_query"
        ).values_list("handled_ms", flat=True)
    )
    if not times:
        return CheckoutHealth(0, None, None)
    p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
    return CheckoutHealth(len(times), p95, times[-1])


def webhook_latest() -> WebhookStatus | None:
    return WebhookStatus.objects.first()
