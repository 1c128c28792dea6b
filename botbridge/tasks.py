"""Telegram-facing tasks; routed to the `telegram` queue (see CELERY_TASK_ROUTES)."""

import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from botbridge import bot, health, reconcile, sending, services, stars
from core.errors import DomainError
from shop import outbox

# A short wait for a sending slot is slept off in the task (the `telegram` queue's processes
# exist to wait on Telegram); a longer one goes back to the broker with a countdown. In-process
# (eager) mode has no broker to schedule on: waits up to 3 s are slept, longer ones stay queued
# for `botbridge.message_requeue_due`.
_MAX_SLEEP = 1.0
_EAGER_MAX_SLEEP = 3.0


@shared_task(bind=True, name="botbridge.message_send", acks_late=True, max_retries=None)
def message_send(self, message_id: int) -> str:
    limit = _EAGER_MAX_SLEEP if self.request.is_eager else _MAX_SLEEP
    outcome = sending.message_send(message_id=message_id)
    while outcome.status == "retry" and outcome.retry_in <= limit:
        time.sleep(outcome.retry_in)
        outcome = sending.message_send(message_id=message_id)
    if outcome.status == "retry" and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="botbridge.message_requeue_due")
def message_requeue_due() -> int:
    return sending.message_requeue_due()


@shared_task(name="botbridge.message_sweep_stale")
def message_sweep_stale() -> int:
    return sending.message_sweep_stale()


@shared_task(bind=True, name="botbridge.updates_drain", acks_late=True, max_retries=None)
def updates_drain(self, lane: int) -> int:
    """Handle a lane's stored updates in order; see `botbridge.lanes`."""
    try:
        return services.updates_drain(lane=lane)
    except services.TRANSIENT_ERRORS as error:
        if self.request.is_eager:
            raise  # in-process: the rows stay stored for the next `updates_dispatch`
        raise self.retry(exc=error, countdown=5) from error


@shared_task(name="botbridge.updates_dispatch")
def updates_dispatch() -> int:
    """The beat's safety net; `manage.py run_update_dispatcher` does this continuously."""
    return services.updates_dispatch()


# Named in payments, which records the refund and publishes this task by name; the Bot API
# call is made here, the only layer that talks to Telegram.
@shared_task(
    name="payments.refund_stars",
    acks_late=True,
    reject_on_worker_lost=True,
    # A flood wait, a server error or the network: try again later. Telegram's own refusal
    # is recorded on the refund as a failure by the service.
    autoretry_for=(bot.TelegramError,),
    retry_backoff=True,
    max_retries=8,
)
def refund_stars(refund_id: int) -> str:
    return stars.refund_stars_execute(refund_id=refund_id)


@shared_task(name="botbridge.retention_purge")
def retention_purge() -> dict[str, int]:
    """Daily: personal data past DATA_RETENTION_DAYS (see the services)."""
    older_than = timedelta(days=settings.DATA_RETENTION_DAYS)
    return {
        "updates": services.updates_purge(older_than=older_than),
        "message_bodies": outbox.messages_purge_bodies(older_than=older_than),
    }


@shared_task(name="botbridge.webhook_check")
def webhook_check() -> int:
    """Beat, every 5 minutes: getWebhookInfo kept, errors and a growing backlog alerted."""
    return health.webhook_check().pending_update_count


@shared_task(
    name="botbridge.reconcile_stars",
    # A bot's first run reads its whole history: 100,000 transactions take ~20 s.
    time_limit=1800,
    soft_time_limit=1700,
    autoretry_for=(bot.TelegramError,),
    retry_backoff=60,
    max_retries=5,
)
def reconcile_stars() -> str:
    """Daily (and after Telegram answered CHARGE_ALREADY_REFUNDED): Telegram's Stars records
    against ours; see `botbridge.reconcile`."""
    try:
        return reconcile.stars_reconcile().summary()
    except DomainError as error:  # another run is at it
        return error.message
