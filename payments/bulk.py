"""Helpers for reconciliation's bulk work: fresh statistics after a load, one run at a time."""

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def table_analyze(model) -> None:
    """Fresh planner statistics after a bulk load (PostgreSQL): without them the matching
    queries that follow are planned for the (near) empty table the load started from."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


_local_locks: dict[str, threading.Lock] = {}


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Run one at a time across every process: yields whether this one got to run.

    PostgreSQL's session advisory lock (held by this connection until released; freed by
    PostgreSQL if the process dies). Elsewhere (the embedded SQLite: one process) a lock in
    this process.
    """
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            got = cursor.fetchone()[0]
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    lock = _local_locks.setdefault(name, threading.Lock())
    got = lock.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            lock.release()
