from django.core.management.base import BaseCommand, CommandError

from backoffice import backups


class Command(BaseCommand):
    help = (
        "Restore a backup (a file, or its name in backup storage) into an empty database, "
        "then verify row counts and ledger sums against the backup's manifest."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--database-url", help="Restore there instead of into the configured database."
        )
        parser.add_argument(
            "--force", action="store_true", help="Replace what a non-empty database holds."
        )
        parser.add_argument("--media-root", help="Restore media files there (default MEDIA_ROOT).")

    def handle(self, *args, file, database_url, force, media_root, **options):
        try:
            report = backups.backup_restore(
                source=file, database_url=database_url, force=force, media_root=media_root
            )
        except backups.BackupError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Restored and verified: {report.tables} tables, {report.rows:,} rows, ledger "
            f"{report.ledger_sums}, {report.media_files} media file(s)."
        )
