"""Thin Celery tasks: ids in, one service call, quiet when there is nothing to do."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from payments import services
from payments.apay import client
from payments.reports import days_window
from payments.services import statements

# The database or the broker went away for a moment: try again with backoff (1 s, 2 s, 4 s …
# up to 5 minutes). A payment whose task gives up is still found by payments.credit_sweep.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, OSError)


@shared_task(
    name="payments.payment_credit",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
)
def payment_credit(payment_id: int) -> int:
    """Credit this payment, and with it others waiting (one transaction for the lot)."""
    return services.payment_credit_batch(payment_id=payment_id)


@shared_task(
    name="payments.credit_sweep",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=3,
)
def credit_sweep() -> int:
    """Beat, every minute: payments left uncredited past the grace period are credited."""
    return services.payment_credit_sweep(older_than=settings.PAYMENTS_CREDIT_GRACE)


# payments.refund_stars (refundStarPayment) is a Telegram call: botbridge.tasks defines it.


@shared_task(name="payments.disputes_remind")
def disputes_remind() -> dict[str, int]:
    from payments.services import disputes

    return disputes.disputes_remind()


@shared_task(
    name="payments.export_run",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3600,
    soft_time_limit=3500,
)
def export_run(job_id: int) -> str:
    from payments import exports

    return exports.export_run(job_id=job_id)


@shared_task(name="payments.exports_purge")
def exports_purge() -> int:
    from payments import exports

    return exports.exports_purge()


@shared_task(name="payments.reconcile_apay", time_limit=1800, soft_time_limit=1700)
def reconcile_apay() -> str:
    """Daily: A-Pay's statement of the last APAY_RECONCILE_DAYS closed days, through its
    Reports API (when configured), imported and matched; re-importing changes nothing."""
    if not client.reports_configured():
        return "A-Pay's Reports API is not configured."
    tz = ZoneInfo(settings.TIME_ZONE)
    yesterday = timezone.localdate(timezone=tz) - timedelta(days=1)
    start, end = days_window(yesterday - timedelta(days=settings.APAY_RECONCILE_DAYS - 1),
                             yesterday, tz)  # fmt: skip
    results = statements.statement_fetch_import(start=start, end=end)
    return " ".join(r.summary() for r in results)
