"""python manage.py import_provider_statement apay FILE [--currency CUR]
python manage.py import_provider_statement apay --fetch --since YYYY-MM-DD --until YYYY-MM-DD"""

from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.cli import day
from core.errors import DomainError
from payments.models import StatementImport
from payments.reports import days_window
from payments.services import statements


class Command(BaseCommand):
    help = (
        "Import a provider's statement (A-Pay's CSV), match it to the payments, post its fees "
        "once and list the differences. The file is checked whole first: any bad line and "
        "nothing is imported. The same file twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("provider", choices=["apay"])
        parser.add_argument("file", nargs="?", help="The CSV downloaded from A-Pay.")
        parser.add_argument(
            "--currency",
            default=settings.APAY_STATEMENT_CURRENCY,
            help="The statement's currency when it has no currency column.",
        )
        parser.add_argument(
            "--fetch", action="store_true", help="Fetch it through A-Pay's Reports API instead."
        )
        parser.add_argument("--since", help="With --fetch: first day, inclusive (YYYY-MM-DD).")
        parser.add_argument("--until", help="With --fetch: last day, inclusive (YYYY-MM-DD).")

    def handle(self, *args, provider, file, currency, fetch, since, until, **options):
        try:
            if fetch:
                if file or not since or not until:
                    raise CommandError("--fetch takes --since and --until, and no file.")
                start, end = days_window(day(since), day(until), ZoneInfo(settings.TIME_ZONE))
                results = statements.statement_fetch_import(start=start, end=end)
            else:
                if not file:
                    raise CommandError("Give the statement file (or --fetch).")
                path = Path(file)
                if not path.is_file():
                    raise CommandError(f"No such file: {file}")
                results = [
                    statements.statement_import(
                        path=path,
                        source=StatementImport.Source.COMMAND,
                        filename=path.name,
                        currency=currency,
                    )
                ]
        except DomainError as error:
            raise CommandError(error.message) from None
        for result in results:
            self.stdout.write(f"Statement #{result.statement.pk}: {result.summary()}")
