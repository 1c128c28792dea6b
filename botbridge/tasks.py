"""Telegram-facing tasks; routed to the `telegram` queue (see CELERY_TASK_ROUTES)."""

import time

from celery import shared_task

from botbridge import outbox, services

# In-process (eager) mode has no broker to schedule a retry on: short waits are slept off,
# longer ones stay queued for `botbridge.message_requeue_due`.
_EAGER_MAX_WAIT = 3.0


@shared_task(bind=True, name="botbridge.message_send", acks_late=True, max_retries=None)
def message_send(self, message_id: int) -> str:
    outcome = outbox.message_send(message_id=message_id)
    while (
        outcome.status == "retry" and self.request.is_eager and outcome.retry_in <= _EAGER_MAX_WAIT
    ):
        time.sleep(outcome.retry_in)
        outcome = outbox.message_send(message_id=message_id)
    if outcome.status == "retry" and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="botbridge.message_requeue_due")
def message_requeue_due() -> int:
    return outbox.message_requeue_due()


@shared_task(name="botbridge.message_sweep_stale")
def message_sweep_stale() -> int:
    return outbox.message_sweep_stale()


@shared_task(bind=True, name="botbridge.updates_drain", acks_late=True, max_retries=None)
def updates_drain(self, lane: int) -> int:
    """Handle a lane's stored updates in order; see `botbridge.lanes`."""
    try:
        return services.updates_drain(lane=lane)
    except services.TRANSIENT_ERRORS as error:
        if self.request.is_eager:
            raise  # in-process: the rows stay stored for `update_requeue_stale`
        raise self.retry(exc=error, countdown=5) from error


@shared_task(name="botbridge.update_requeue_stale")
def update_requeue_stale() -> int:
    return services.update_requeue_stale()
