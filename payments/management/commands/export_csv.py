"""python manage.py export_csv REPORT --since YYYY-MM-DD --until YYYY-MM-DD [options]"""

import os
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.cli import day
from core.errors import DomainError
from payments.reports import REPORTS, Filters, report_csv


class Command(BaseCommand):
    help = "Write a finance report as RFC 4180 CSV (UTF-8) to standard output or a file."

    def add_arguments(self, parser):
        parser.add_argument("report", choices=sorted(REPORTS))
        parser.add_argument("--since", required=True, help="First day, inclusive (YYYY-MM-DD).")
        parser.add_argument("--until", required=True, help="Last day, inclusive (YYYY-MM-DD).")
        parser.add_argument("--tz", default=settings.TIME_ZONE, help="Time zone of the days.")
        parser.add_argument("--currency", default="", help="Only this currency (e.g. USD).")
        parser.add_argument("--status", default="", help="Only this status (kind, for ledger).")
        parser.add_argument("--provider", default="", help="Only this provider: apay, stars.")
        parser.add_argument(
            "--include-test",
            action="store_true",
            help="Include payments made with a TEST provider token (left out by default).",
        )
        parser.add_argument("--bom", action="store_true", help="Start with a BOM (for Excel).")
        parser.add_argument("--output", default="-", help="File to write; '-' for stdout.")

    def handle(self, *args, report, since, until, tz, currency, status, provider, bom, output,
               include_test, **options):  # fmt: skip
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CommandError(f"Unknown time zone {tz!r}.") from None
        try:
            filters = Filters(
                since=day(since),
                until=day(until),
                tz=zone,
                currency=currency.upper(),
                status=status,
                provider=provider,
                include_test=include_test,
            )
            chunks = report_csv(report, filters, bom=bom)
            if output == "-":
                for chunk in chunks:
                    sys.stdout.write(chunk)
                sys.stdout.flush()
                return
            partial = f"{output}.partial"
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        except DomainError as error:
            raise CommandError(error.message) from None
        os.replace(partial, output)  # a reader never sees half a report
