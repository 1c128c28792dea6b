from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from botbridge import bot


class Command(BaseCommand):
    help = "Register the webhook with Telegram (URL, secret, allowed updates, max connections)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.TELEGRAM_WEBHOOK_URL)
        parser.add_argument(
            "--max-connections", type=int, default=settings.TELEGRAM_WEBHOOK_MAX_CONNECTIONS
        )

    def handle(self, *args, url, max_connections, **options):
        if not url:
            raise CommandError("Set TELEGRAM_WEBHOOK_URL or pass --url (the public HTTPS URL).")
        if not settings.TELEGRAM_WEBHOOK_SECRET:
            raise CommandError(
                "Set TELEGRAM_WEBHOOK_SECRET first: Telegram sends it with every update."
            )
        if not 1 <= max_connections <= 100:
            raise CommandError("--max-connections must be between 1 and 100.")
        try:
            bot.set_webhook(
                url=url, secret=settings.TELEGRAM_WEBHOOK_SECRET, max_connections=max_connections
            )
        except bot.TelegramError as error:
            raise CommandError(f"Telegram refused: {error.description}") from error
        self.stdout.write(
            f"Webhook set to {url} (updates: {', '.join(bot.ALLOWED_UPDATES)}; "
            f"max_connections {max_connections})."
        )
