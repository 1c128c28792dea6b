"""Telegram-facing tasks; routed to the `telegram` queue (see CELERY_TASK_ROUTES)."""

import time

from celery import shared_task

from botbridge import outbox, services

# A short wait for a sending slot is slept off in the task (the `telegram` queue's processes
# exist to wait on Telegram); a longer one goes back to the broker with a countdown. In-process
# (eager) mode has no broker to schedule on: waits up to 3 s are slept, longer ones stay queued
# for `botbridge.message_requeue_due`.
_MAX_SLEEP = 1.0
_EAGER_MAX_SLEEP = 3.0


@shared_task(bind=True, name="botbridge.message_send", acks_late=True, max_retries=None)
def message_send(self, message_id: int) -> str:
    limit = _EAGER_MAX_SLEEP if self.request.is_eager else _MAX_SLEEP
    outcome = outbox.message_send(message_id=message_id)
    while outcome.status == "retry" and outcome.retry_in <= limit:
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
            raise  # in-process: the rows stay stored for the next `updates_dispatch`
        raise self.retry(exc=error, countdown=5) from error


@shared_task(name="botbridge.updates_dispatch")
def updates_dispatch() -> int:
    """The beat's safety net; `manage.py run_update_dispatcher` does this continuously."""
    return services.updates_dispatch()
