from celery import shared_task
from django.conf import settings

from backoffice import backups


@shared_task(name="backoffice.backup_nightly", acks_late=True, time_limit=3 * 3600)
def backup_nightly() -> str:
    """Beat, nightly: a backup, then the retention (a failure alerts staff)."""
    backup = backups.backup_create()
    if backup.status == backup.Status.DONE:
        backups.backups_prune(
            keep_daily=settings.BACKUP_KEEP_DAILY, keep_weekly=settings.BACKUP_KEEP_WEEKLY
        )
    return backup.status
