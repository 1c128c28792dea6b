import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from botbridge.sandbox.server import FakeTelegram


class Command(BaseCommand):
    help = "Serve the local Telegram (a fake Bot API) that the bot uses when no token is set."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8081)
        parser.add_argument(
            "--webhook-url",
            default=settings.TELEGRAM_WEBHOOK_URL or "http://127.0.0.1:8000/telegram/webhook/",
        )

    def handle(self, *args, port, webhook_url, **options):
        if not settings.TELEGRAM_SANDBOX:
            raise CommandError(
                "A real TELEGRAM_BOT_TOKEN is set: the sandbox is for local work only."
            )
        fake = FakeTelegram(
            settings.TELEGRAM_BOT_TOKEN,
            webhook_url,
            settings.TELEGRAM_WEBHOOK_SECRET,
            # Ids above any earlier run's: a restarted `make run` keeps them unique.
            id_base=int(time.time() * 1000),
        )
        try:
            fake.serve(port=port)
        except OSError as error:
            raise CommandError(f"Cannot listen on 127.0.0.1:{port}: {error}") from error
        self.stdout.write(f"Local Telegram on {fake.url}, delivering updates to {webhook_url}")
        threading.Event().wait()
