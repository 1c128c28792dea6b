"""Differences between the books and a provider's own records: found once, closed once.

A reconciliation run hands over everything it found in a window; each is stored under its
key (a second run finds the same keys and adds nothing), an open one whose figures moved is
brought up to date, and an open one the run no longer finds is closed with that reason. A
difference finance closed stays closed. Closing by hand needs a note; the admin also writes
it to the audit log with who and when.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from payments.models import Difference

_FIGURES = ("occurred_at", "currency", "our_amount", "their_amount", "detail")


@dataclass(frozen=True)
class Found:
    key: str
    kind: str
    occurred_at: datetime
    currency: str
    our_amount: int | None = None
    their_amount: int | None = None
    detail: str = ""
    payment_id: int | None = None
    refund_id: int | None = None
    star_transaction_id: int | None = None
    statement_row_id: int | None = None


@dataclass
class SyncResult:
    found: int = 0
    new: int = 0
    updated: int = 0
    closed: int = 0


def differences_sync(
    *,
    provider: str,
    start: datetime,
    end: datetime,
    found: Iterable[Found],
    kinds: Iterable[str],
) -> SyncResult:
    """Store what a run found in [start, end) for these kinds; close what it no longer finds."""
    result = SyncResult()
    keys: set[str] = set()
    with transaction.atomic():
        for batch in _batches(found, 1000):
            existing = {d.key: d for d in Difference.objects.filter(key__in=[f.key for f in batch])}
            new = []
            for item in batch:
                keys.add(item.key)
                result.found += 1
                known = existing.get(item.key)
                if known is None:
                    fields = {f: getattr(item, f) for f in Found.__dataclass_fields__}
                    new.append(Difference(provider=provider, **fields))
                    continue
                changes = {
                    f: getattr(item, f) for f in _FIGURES if getattr(known, f) != getattr(item, f)
                }
                if known.is_open and changes:
                    Difference.objects.filter(pk=known.pk).update(**changes)
                    result.updated += 1
            # Two runs at once store each key once.
            Difference.objects.bulk_create(new, ignore_conflicts=True)
            result.new += len(new)
        gone = Difference.objects.filter(
            provider=provider,
            kind__in=list(kinds),
            status=Difference.Status.OPEN,
            occurred_at__gte=start,
            occurred_at__lt=end,
        ).exclude(key__in=keys)
        result.closed = gone.update(
            status=Difference.Status.RESOLVED,
            resolved_at=timezone.now(),
            resolution=f"No longer found by the reconciliation of {timezone.now():%Y-%m-%d %H:%M} UTC.",
        )
    return result


def _batches(items: Iterable[Found], size: int) -> Iterator[list[Found]]:
    batch: list[Found] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def difference_resolve(
    *, difference: Difference, note: str, actor: AbstractBaseUser | None = None
) -> Difference:
    """Finance looked into it: what they found is kept with it, with who and when."""
    note = (note or "").strip()
    if not note:
        raise DomainError("Say what you found and did.", code="no_note")
    with transaction.atomic():
        locked = Difference.objects.select_for_update().get(pk=difference.pk)
        if not locked.is_open:
            raise DomainError("This difference is already resolved.", code="resolved")
        locked.status = Difference.Status.RESOLVED
        locked.resolved_at = timezone.now()
        locked.resolved_by = actor
        locked.resolution = note
        locked.save(update_fields=["status", "resolved_at", "resolved_by", "resolution"])
    return locked


def difference_close(
    *, key: str, resolution: str, actor: AbstractBaseUser | None = None, **links
) -> int:
    """Close the open difference under `key` because something settled it (a payment recorded
    from it, a match confirmed): with why, who, and what it now points at."""
    return Difference.objects.filter(key=key, status=Difference.Status.OPEN).update(
        status=Difference.Status.RESOLVED,
        resolved_at=timezone.now(),
        resolved_by=actor,
        resolution=resolution,
        **links,
    )


def differences_open_count() -> int:
    return Difference.objects.filter(status=Difference.Status.OPEN).count()
