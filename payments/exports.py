"""Finance exports run in the background: a job row the admin follows, a file at the end."""

import logging
import tempfile
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import secrets
from core.errors import DomainError
from payments.models import ExportJob
from payments.reports import Filters, SettlementReport, report_csv, report_get

logger = logging.getLogger(__name__)

EXPORT_TTL = timedelta(days=7)
PROGRESS_EVERY = 5000  # rows between progress updates
STALE_RUNNING = timedelta(hours=1)  # the task's time limit


def filters_from_params(params: dict) -> Filters:
    """Validate what a person typed; DomainError with a clear message otherwise."""
    try:
        since = date.fromisoformat(str(params.get("since", "")))
        until = date.fromisoformat(str(params.get("until", "")))
    except ValueError:
        raise DomainError("Give the dates as YYYY-MM-DD.", code="bad_date") from None
    try:
        tz = ZoneInfo(params.get("tz") or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(f"Unknown time zone {params.get('tz')!r}.", code="bad_tz") from None
    return Filters(
        since=since,
        until=until,
        tz=tz,
        currency=(params.get("currency") or "").upper(),
        status=params.get("status") or "",
        provider=params.get("provider") or "",
        include_test=bool(params.get("include_test")),
    )


def export_start(*, report: str, params: dict, user: AbstractBaseUser | None) -> ExportJob:
    report_get(report)
    filters_from_params(params)  # refuse bad input now, not in the worker
    job = ExportJob.objects.create(report=report, params=params, created_by=user)
    from payments import tasks

    transaction.on_commit(lambda: tasks.export_run.delay(job.pk))
    return job


def export_run(*, job_id: int) -> str:
    """Write the job's file; a second run of the same job does nothing."""
    now = timezone.now()
    # Pending, or left running by a worker that died (the task is then delivered again).
    claimable = Q(status=ExportJob.Status.PENDING) | Q(
        status=ExportJob.Status.RUNNING, started_at__lt=now - STALE_RUNNING
    )
    claimed = ExportJob.objects.filter(claimable, pk=job_id).update(
        status=ExportJob.Status.RUNNING, started_at=now, row_count=0
    )
    if not claimed:
        return "skipped"
    job = ExportJob.objects.get(pk=job_id)
    try:
        filters = filters_from_params(job.params)
        report = report_get(job.report)
        estimate = report.filtered(filters).count()
        if isinstance(report, SettlementReport):
            estimate = max(1, (filters.until - filters.since).days + 1)
        ExportJob.objects.filter(pk=job.pk).update(total_estimate=estimate)
        progress = _Progress(job.pk)
        chunks = report_csv(job.report, filters, bom=bool(job.params.get("bom")), progress=progress)
        with tempfile.TemporaryFile("w+b") as handle:
            for chunk in chunks:
                handle.write(chunk.encode("utf-8"))
            handle.seek(0)
            name = f"{job.report}-{filters.since}-{filters.until}-{job.pk}.csv"
            job.file.save(name, File(handle), save=False)
    except Exception as error:  # kept on the job for staff to see
        logger.exception("Export %s failed", job_id)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED,
            error=secrets.mask(str(error))[:2000],
            finished_at=timezone.now(),
        )
        return ExportJob.Status.FAILED
    now = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.DONE,
        file=job.file.name,
        row_count=progress.rows,
        finished_at=now,
        expires_at=now + EXPORT_TTL,
    )
    return ExportJob.Status.DONE


class _Progress:
    """Told the rows written so far; tells the job every PROGRESS_EVERY rows."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.rows = 0
        self.reported = 0

    def __call__(self, rows: int) -> None:
        self.rows = rows
        if rows - self.reported >= PROGRESS_EVERY:
            ExportJob.objects.filter(pk=self.job_id).update(row_count=rows)
            self.reported = rows


def exports_purge(*, now=None) -> int:
    """Remove the files of expired exports (beat, daily); the job rows stay as history."""
    now = now or timezone.now()
    expired = ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lte=now)
    removed = 0
    for job in expired:
        if job.file:
            job.file.delete(save=False)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.EXPIRED, file="")
        removed += 1
    return removed
