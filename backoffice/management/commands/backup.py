from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backoffice import backups


class Command(BaseCommand):
    help = "Back up the database and media to backup storage, with a checksum; then verify it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--prune", action="store_true", help="Then apply the retention (BACKUP_KEEP_*)."
        )

    def handle(self, *args, prune, **options):
        backup = backups.backup_create()
        if backup.status != backup.Status.DONE:
            raise CommandError(f"Backup failed: {backup.error}")
        self.stdout.write(
            f"{backup.name}: {backup.size:,} bytes, sha256 {backup.sha256}, "
            f"{sum(backup.counts.values()):,} rows, ledger {backup.ledger_sums}, "
            + ("verified" if backup.verified_at else "NOT verified")
        )
        if prune:
            removed = backups.backups_prune(
                keep_daily=settings.BACKUP_KEEP_DAILY, keep_weekly=settings.BACKUP_KEEP_WEEKLY
            )
            self.stdout.write(f"Retention removed {removed} older backup(s).")
