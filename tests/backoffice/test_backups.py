"""Backups with a tested restore, on PostgreSQL: every table's rows and the ledger's sums."""

import re
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from backoffice import backups
from backoffice.models import Backup
from payments import services as payment_services
from shop.models import Message
from tests.conftest import role_user
from tests.factories import CustomerFactory, ProductFactory, paid_order

pytestmark = pytest.mark.django_db(transaction=True)

RESTORED = "test_shopbot_restored"


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "backups")},
        },
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media" / "evidence").mkdir(parents=True)
    (tmp_path / "media" / "evidence" / "parcel.jpg").write_bytes(b"\xff\xd8photo")
    (tmp_path / "media" / "exports").mkdir()
    (tmp_path / "media" / "exports" / "old.csv").write_text("skipped")
    return tmp_path / "backups"


@pytest.fixture
def fresh_database():
    db = connection.settings_dict
    admin = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {RESTORED}")
        conn.execute(f"CREATE DATABASE {RESTORED}")
    yield f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{RESTORED}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {RESTORED} WITH (FORCE)")


def shop_with_money(fake_telegram, capture):
    customer = CustomerFactory()
    with capture(execute=True):
        usd = paid_order(customer, ProductFactory(price=1250, currency="USD"))
        paid_order(customer, ProductFactory(price=350, currency="XTR"))
        refund = payment_services.refund_request(payment=usd, amount=250, reason="duplicate")
        payment_services.refund_complete(refund=refund, external_reference="R-1")


def test_backup_then_restore_into_a_fresh_database_matches_every_table(
    backup_dir, fresh_database, fake_telegram, django_capture_on_commit_callbacks, tmp_path
):
    shop_with_money(fake_telegram, django_capture_on_commit_callbacks)
    call_command("backup")
    backup = Backup.objects.get()
    assert (backup.status, backup.database) == ("done", "postgresql")
    assert backup.verified_at is not None and len(backup.sha256) == 64
    assert backup.ledger_sums == {"USD": 1000, "XTR": 0} or backup.ledger_sums["USD"] == 1000
    assert backup.counts["shop_message"] == Message.objects.count() > 0
    assert (backup_dir / backup.name).exists() and (backup_dir / f"{backup.name}.sha256").exists()

    restored_media = tmp_path / "restored-media"
    call_command("restore", str(backup_dir / backup.name), "--database-url", fresh_database,
                 "--media-root", str(restored_media))  # fmt: skip
    with psycopg.connect(fresh_database.replace("postgres://", "postgresql://")) as conn:
        for table, count in backup.counts.items():
            counted = conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]  # noqa: S608
            assert counted == count, table
        sums = dict(conn.execute(backups.LEDGER_SUMS).fetchall())
    assert {k: int(v) for k, v in sums.items()} == backup.ledger_sums
    assert (restored_media / "evidence" / "parcel.jpg").read_bytes() == b"\xff\xd8photo"
    assert not (restored_media / "exports").exists()

    # The database now holds the shop: a second restore there is refused unless forced.
    with pytest.raises(CommandError, match="is not empty"):
        call_command("restore", backup.name, "--database-url", fresh_database)
    call_command("restore", backup.name, "--database-url", fresh_database, "--force")


def test_a_truncated_or_altered_backup_is_refused_and_nothing_is_restored(
    backup_dir, fresh_database, fake_telegram, django_capture_on_commit_callbacks
):
    shop_with_money(fake_telegram, django_capture_on_commit_callbacks)
    backup = backups.backup_create()
    path = backup_dir / backup.name
    data = path.read_bytes()
    for broken in (data[: len(data) // 2], data[:-10] + b"0123456789"):
        path.write_bytes(broken)
        with pytest.raises(CommandError, match="checksum does not match"):
            call_command("restore", str(path), "--database-url", fresh_database)
        with psycopg.connect(fresh_database.replace("postgres://", "postgresql://")) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()[0]
        assert tables == 0
    assert backups.backup_verify(backup=backup) is False


def test_retention_keeps_the_newest_daily_and_one_per_week(backup_dir, settings):
    now = timezone.now()
    for day in range(40):
        backup = Backup.objects.create(
            name=f"b{day}.tar", database="postgresql", status="done", sha256="x",
            verified_at=now,
        )  # fmt: skip
        Backup.objects.filter(pk=backup.pk).update(created_at=now - timedelta(days=day))
    removed = backups.backups_prune(keep_daily=7, keep_weekly=4)
    kept = list(Backup.objects.filter(status="done").order_by("-created_at"))
    assert removed == 40 - len(kept)
    assert [b.name for b in kept[:7]] == [f"b{day}" + ".tar" for day in range(7)]
    weeks = {tuple(b.created_at.isocalendar())[:2] for b in kept}
    assert len(kept) <= 7 + 4 and len(weeks) >= 4


def test_the_dashboard_warns_when_the_last_good_backup_is_old(client, backup_dir):
    client.force_login(role_user("Manager"))
    assert "No verified backup in the last 26 hours" in client.get("/admin/").content.decode()
    backup = Backup.objects.create(name="a.tar", database="postgresql", status="done",
                                   verified_at=timezone.now())  # fmt: skip
    assert "No verified backup" not in client.get("/admin/").content.decode()
    Backup.objects.filter(pk=backup.pk).update(created_at=timezone.now() - timedelta(hours=27))
    assert "No verified backup in the last 26 hours" in client.get("/admin/").content.decode()
    assert client.get("/admin/backoffice/backup/").status_code == 200


def test_a_failed_backup_is_recorded_and_alerts_staff(backup_dir, settings, monkeypatch):
    settings.STAFF_ALERT_EMAILS = ["owner@example.com"]
    from django.core import mail

    def broken(*args, **kwargs):
        raise backups.BackupError("pg_dump failed: disk full")

    monkeypatch.setattr(backups, "_pg_dump", broken)
    backup = backups.backup_create()
    assert backup.status == "failed" and "disk full" in backup.error
    assert any("Backup" in m.subject and "failed" in m.body for m in mail.outbox)
    with pytest.raises(CommandError, match="Backup failed"):
        call_command("backup")


def test_docker_image_carries_pg_dump_of_the_servers_major_version():
    root = Path(__file__).resolve().parents[2]
    dockerfile = (root / "Dockerfile").read_text()
    compose = (root / "docker-compose.yml").read_text()
    assert "postgresql-client-15" in dockerfile
    assert "image: postgres:15" in compose


def test_the_docker_image_holds_every_app():
    root = Path(__file__).resolve().parents[2]
    dockerfile = (root / "Dockerfile").read_text()
    for app in ("config", "core", "shop", "payments", "botbridge", "backoffice", "templates"):
        assert f"COPY {app} ./{app}" in dockerfile, app


def test_the_embedded_default_backs_up_and_restores_its_sqlite_database(tmp_path):
    """`make run`'s SQLite: the online backup, then a restore into a new file, verified."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "CELERY"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "LOG_LEVEL": "ERROR",
    }

    def manage(*args, **extra):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=root, capture_output=True,
                              text=True, env={**env, **extra}, timeout=300)  # fmt: skip

    assert manage("migrate", "-v0").returncode == 0
    assert manage("load_demo").returncode == 0
    made = manage("backup")
    assert made.returncode == 0, made.stderr
    assert "verified" in made.stdout and "NOT verified" not in made.stdout
    name = re.search(r"(backup-[0-9-]+\.tar)", made.stdout).group(1)
    restored = manage(
        "restore", name, "--database-url", f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    )
    assert restored.returncode == 0, restored.stderr
    assert "Restored and verified" in restored.stdout
    refused = manage("restore", name)  # into the database it came from: not empty
    assert refused.returncode != 0 and "is not empty" in refused.stderr
