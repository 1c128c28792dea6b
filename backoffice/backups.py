"""Backups with a restore that proves itself.

A backup is one tar file in backup storage (STORAGES["backups"]: a local directory by
default, any Django storage backend by setting, e.g. S3 through django-storages):

- `database.pgdump`: `pg_dump --format=custom` on PostgreSQL, taken from an exported snapshot
  so that it and the figures below describe the same instant; `database.sqlite3` (SQLite's
  online backup) on the embedded default;
- `media/…`: the uploaded files that matter (finance exports are left out: they expire);
- `manifest.json`: when, which database, the row count of every table and the ledger's sum
  per currency at that instant.

Beside it, `<name>.sha256`. A restore refuses a file whose checksum does not match (truncated
or altered), restores into an empty database only (unless told), then counts the rows and
sums the ledger again and compares them with the manifest.
"""

import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import connection, connections
from django.utils import timezone

from backoffice.models import Backup
from core import secrets
from core.errors import DomainError
from shop import alerts

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PG_DUMP = "database.pgdump"
SQLITE_FILE = "database.sqlite3"
SKIPPED_MEDIA = ("exports/",)  # finance exports expire after 7 days: not worth keeping
LEDGER_SUMS = "SELECT currency, SUM(amount) FROM payments_ledgerentry GROUP BY currency"


class BackupError(DomainError):
    code = "backup"


def backup_storage():
    return storages["backups"]


def _tables(cursor) -> list[str]:
    return sorted(connection.introspection.table_names(cursor))


def _figures(cursor, tables: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    counts = {}
    for table in tables:
        cursor.execute(f'SELECT COUNT(*) FROM "{table}"')  # noqa: S608 (introspected names)
        counts[table] = cursor.fetchone()[0]
    cursor.execute(LEDGER_SUMS)
    sums = {currency: int(total) for currency, total in cursor.fetchall()}
    return counts, sums


def _pg_args(db: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    args = ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432)]
    if db.get("USER"):
        args += ["-U", db["USER"]]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return args, env


def backup_create() -> Backup:
    """Take a backup now, store it, read it back to verify it; the Backup row says how it went."""
    now = timezone.now()
    backup = Backup.objects.create(
        name=f"backup-{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}.tar", database=connection.vendor
    )
    try:
        with tempfile.TemporaryDirectory() as work:
            archive = Path(work) / backup.name
            counts, sums = _write_archive(archive, Path(work), created=now)
            digest = _sha256(archive)
            store = backup_storage()
            with archive.open("rb") as handle:
                stored = store.save(backup.name, File(handle))
            store.save(f"{stored}.sha256", File(io.BytesIO(f"{digest}  {stored}\n".encode())))
            Backup.objects.filter(pk=backup.pk).update(
                name=stored, size=archive.stat().st_size, sha256=digest, counts=counts,
                ledger_sums=sums, status=Backup.Status.DONE, finished_at=timezone.now(),
            )  # fmt: skip
    except Exception as error:
        logger.exception("Backup %s failed", backup.name)
        Backup.objects.filter(pk=backup.pk).update(
            status=Backup.Status.FAILED,
            error=secrets.mask(f"{type(error).__name__}: {error}")[:4000],
            finished_at=timezone.now(),
        )
        backup.refresh_from_db()
        _alert_failed(backup)
        return backup
    backup.refresh_from_db()
    backup_verify(backup=backup)
    backup.refresh_from_db()
    return backup


def _write_archive(archive: Path, work: Path, *, created) -> tuple[dict, dict]:
    if connection.vendor == "postgresql":
        dump, counts, sums = _pg_dump(work)
        database_member = PG_DUMP
    elif connection.vendor == "sqlite":
        dump, counts, sums = _sqlite_copy(work)
        database_member = SQLITE_FILE
    else:  # pragma: no cover - the project runs on PostgreSQL and SQLite only
        raise BackupError(f"No backup for the {connection.vendor} database.")
    manifest = {
        "created_at": created.isoformat(),
        "database": connection.vendor,
        "database_sha256": _sha256(dump),
        "counts": counts,
        "ledger_sums": sums,
    }
    with tarfile.open(archive, "w") as tar:
        tar.add(dump, arcname=database_member)
        media = Path(settings.MEDIA_ROOT)
        if media.is_dir():
            for path in sorted(media.rglob("*")):
                relative = path.relative_to(media).as_posix()
                if path.is_file() and not relative.startswith(SKIPPED_MEDIA):
                    tar.add(path, arcname=f"media/{relative}")
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return counts, sums


def _pg_dump(work: Path) -> tuple[Path, dict, dict]:
    """pg_dump from a snapshot exported by a transaction that counts the same rows."""
    db = connection.settings_dict
    dump = work / PG_DUMP
    args, env = _pg_args(db)
    with connection.cursor() as cursor:
        # Outside of Django's transactions: this connection holds the snapshot open.
        raw = connection.connection
        raw.autocommit = False
        try:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            counts, sums = _figures(cursor, _tables(cursor))
            subprocess.run(
                ["pg_dump", "--format=custom", f"--snapshot={snapshot}", *args,
                 "-d", db["NAME"], "-f", str(dump)],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as error:
            raise BackupError(f"pg_dump failed: {error.stderr.decode(errors='replace')}") from None
        finally:
            raw.rollback()
            raw.autocommit = True
    return dump, counts, sums


def _sqlite_copy(work: Path) -> tuple[Path, dict, dict]:
    """SQLite's online backup: a consistent copy while the app keeps running."""
    copy = work / SQLITE_FILE
    connection.ensure_connection()
    target = sqlite3.connect(copy)
    try:
        connection.connection.backup(target)
    finally:
        target.close()
    with sqlite3.connect(copy) as copied:
        cursor = copied.cursor()
        tables = [
            name
            for (name,) in cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts, sums = _figures(cursor, sorted(tables))
    return copy, counts, sums


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup_verify(*, backup: Backup) -> bool:
    """Read the stored file back whole: verified when its checksum is the one recorded."""
    digest = hashlib.sha256()
    try:
        with backup_storage().open(backup.name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        Backup.objects.filter(pk=backup.pk).update(error=f"Could not read it back: {error}")
        return False
    if digest.hexdigest() != backup.sha256:
        Backup.objects.filter(pk=backup.pk).update(
            status=Backup.Status.FAILED, error="Read back with another checksum."
        )
        _alert_failed(backup)
        return False
    Backup.objects.filter(pk=backup.pk).update(verified_at=timezone.now())
    return True


def backups_prune(*, keep_daily: int, keep_weekly: int) -> int:
    """Keep the newest `keep_daily` backups and the newest of each of `keep_weekly` weeks."""
    done = list(Backup.objects.filter(status=Backup.Status.DONE).order_by("-created_at"))
    keep = {backup.pk for backup in done[:keep_daily]}
    weeks: dict[tuple[int, int], Backup] = {}
    for backup in done:
        week = tuple(backup.created_at.isocalendar())[:2]
        weeks.setdefault(week, backup)
    for week in sorted(weeks, reverse=True)[:keep_weekly]:
        keep.add(weeks[week].pk)
    removed = 0
    store = backup_storage()
    for backup in done:
        if backup.pk in keep:
            continue
        for name in (backup.name, f"{backup.name}.sha256"):
            if store.exists(name):
                store.delete(name)
        Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.DELETED)
        removed += 1
    return removed


def last_good_backup() -> Backup | None:
    return (
        Backup.objects.filter(status=Backup.Status.DONE, verified_at__isnull=False)
        .order_by("-created_at")
        .first()
    )


def backup_is_overdue(now=None) -> bool:
    """No verified backup in the last 26 hours (a nightly one plus some slack)."""
    last = last_good_backup()
    return last is None or last.created_at < (now or timezone.now()) - timedelta(hours=26)


def _alert_failed(backup: Backup) -> None:
    alerts.staff_alert(
        key=f"backup:{backup.pk}:failed",
        text=f"Backup {backup.name} failed: {backup.error[:300]}",
        path=f"/admin/backoffice/backup/{backup.pk}/change/",
    )


# --- restore -------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    database: str
    tables: int
    rows: int
    ledger_sums: dict[str, int]
    media_files: int


def _open_file(source: str) -> Path:
    """A path on disk, or the name of a backup in backup storage (copied to a temp file)."""
    path = Path(source)
    if path.exists():
        return path
    store = backup_storage()
    if not store.exists(source):
        raise BackupError(f"No backup file {source!r} on disk or in backup storage.")
    local = Path(tempfile.mkdtemp()) / Path(source).name
    with store.open(source, "rb") as remote, local.open("wb") as handle:
        shutil.copyfileobj(remote, handle)
    if store.exists(f"{source}.sha256"):
        with store.open(f"{source}.sha256", "rb") as remote:
            Path(f"{local}.sha256").write_bytes(remote.read())
    return local


def backup_restore(
    *, source: str, database_url: str | None = None, force: bool = False, media_root=None
) -> RestoreReport:
    """Restore a backup into an empty database and prove it: counts and ledger sums."""
    path = _open_file(source)
    try:
        return _restore(path, database_url=database_url, force=force, media_root=media_root)
    finally:
        if not Path(source).exists():  # a copy fetched from backup storage: not kept
            shutil.rmtree(path.parent, ignore_errors=True)


def _restore(path: Path, *, database_url, force: bool, media_root) -> RestoreReport:
    sidecar = Path(f"{path}.sha256")
    if not sidecar.exists():
        raise BackupError(f"{sidecar.name} is missing: the file cannot be checked, nothing done.")
    expected = sidecar.read_text().split()[0]
    if _sha256(path) != expected:
        raise BackupError(
            "The file's checksum does not match its .sha256: it is truncated or altered. "
            "Nothing was restored."
        )
    db = environ.Env.db_url_config(database_url) if database_url else connection.settings_dict
    with tempfile.TemporaryDirectory() as work, tarfile.open(path) as tar:
        tar.extractall(work, filter="data")
        manifest = json.loads((Path(work) / MANIFEST).read_text())
        vendor = "postgresql" if "postgresql" in db["ENGINE"] else "sqlite"
        if manifest["database"] != vendor:
            raise BackupError(f"This is a {manifest['database']} backup; the target is {vendor}.")
        if vendor == "postgresql":
            _pg_restore(Path(work) / PG_DUMP, db, force=force)
        else:
            _sqlite_restore(Path(work) / SQLITE_FILE, Path(db["NAME"]), force=force)
        media_files = _restore_media(Path(work) / "media", Path(media_root or settings.MEDIA_ROOT))
    counts, sums = _target_figures(db, vendor, list(manifest["counts"]))
    differences = [
        f"{table}: {manifest['counts'][table]} in the backup, {counts.get(table)} restored"
        for table in manifest["counts"]
        if counts.get(table) != manifest["counts"][table]
    ]
    if sums != manifest["ledger_sums"]:
        differences.append(f"ledger sums {sums} restored, {manifest['ledger_sums']} in the backup")
    if differences:
        raise BackupError("The restore does not match the backup: " + "; ".join(differences))
    return RestoreReport(vendor, len(counts), sum(counts.values()), sums, media_files)


def _pg_restore(dump: Path, db: dict[str, Any], *, force: bool) -> None:
    import psycopg

    args, env = _pg_args(db)
    with psycopg.connect(_dsn(db), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
        if tables and not force:
            raise BackupError(
                f"The database {db['NAME']} is not empty ({tables} tables): restore into an "
                "empty one, or pass --force to replace what is there."
            )
        if tables:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    result = subprocess.run(
        ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", *args,
         "-d", db["NAME"], str(dump)],
        env=env, capture_output=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.decode(errors='replace')}")


def _sqlite_restore(copy: Path, target: Path, *, force: bool) -> None:
    if target.exists() and target.stat().st_size:
        with sqlite3.connect(target) as existing:
            tables = existing.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
        if tables and not force:
            raise BackupError(
                f"{target} is not empty ({tables} tables): restore into an empty database, or "
                "pass --force to replace it."
            )
    # Close Django's connection to it first: the file is replaced underneath.
    for alias in connections:
        connections[alias].close()
    shutil.copyfile(copy, target)


def _restore_media(source: Path, media_root: Path) -> int:
    restored = 0
    if source.is_dir():
        for path in source.rglob("*"):
            if path.is_file():
                destination = media_root / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
                restored += 1
    return restored


def _dsn(db: dict[str, Any]) -> str:
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgresql://{user}{password}@{host}:{port}/{db['NAME']}"


def _target_figures(db: dict[str, Any], vendor: str, tables: list[str]) -> tuple[dict, dict]:
    if vendor == "postgresql":
        import psycopg

        with psycopg.connect(_dsn(db)) as conn, conn.cursor() as cursor:
            return _figures(cursor, tables)
    with sqlite3.connect(db["NAME"]) as conn:
        return _figures(conn.cursor(), tables)
