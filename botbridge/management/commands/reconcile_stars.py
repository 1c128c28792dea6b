"""python manage.py reconcile_stars [--since YYYY-MM-DD] [--until YYYY-MM-DD]"""

from django.core.management.base import BaseCommand, CommandError

from botbridge import bot
from botbridge.reconcile import stars_reconcile
from core.cli import day
from core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Read the bot's Telegram Stars transactions (getStarTransactions) and balance "
        "(getMyStarBalance), match them to the payments and refunds here, and list the "
        "differences for the days given (default: all of them)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="First day checked, inclusive (YYYY-MM-DD).")
        parser.add_argument("--until", help="Last day checked, inclusive (YYYY-MM-DD).")

    def handle(self, *args, since, until, **options):
        since_day, until_day = since and day(since), until and day(until)
        if since_day and until_day and until_day < since_day:
            raise CommandError("--until is before --since.")
        try:
            run = stars_reconcile(since=since_day, until=until_day)
        except bot.TelegramError as error:
            raise CommandError(f"Telegram: {error}") from None
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(run.summary())
