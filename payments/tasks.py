"""Thin Celery tasks: ids in, one service call, quiet when there is nothing to do."""

from celery import shared_task

from payments import services


@shared_task(
    name="payments.payment_credit",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=10,
)
def payment_credit(payment_id: int) -> bool:
    return services.payment_credit(payment_id=payment_id)
