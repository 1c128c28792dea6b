import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from botbridge.sandbox.server import FakeTelegram
from payments.apay.fake import FakeAPay


class Command(BaseCommand):
    help = (
        "Serve the local Telegram (a fake Bot API) that the bot uses when no token is set, "
        "and the local A-Pay (deposit-info, Reports API) that records its fiat payments."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8081)
        parser.add_argument("--apay-port", type=int, default=8082)
        parser.add_argument(
            "--webhook-url",
            default=settings.TELEGRAM_WEBHOOK_URL or "http://127.0.0.1:8000/telegram/webhook/",
        )

    def handle(self, *args, port, apay_port, webhook_url, **options):
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
        apay = FakeAPay(
            api_key=settings.APAY_API_KEY,
            project_id=settings.APAY_PROJECT_ID,
            reports_token=settings.APAY_REPORTS_TOKEN,
        )
        fake.on_fiat_payment = apay.on_telegram_payment
        try:
            fake.serve(port=port)
            apay.serve(port=apay_port)
        except OSError as error:
            raise CommandError(f"Cannot listen on 127.0.0.1: {error}") from error
        self.stdout.write(f"Local Telegram on {fake.url}, delivering updates to {webhook_url}")
        self.stdout.write(f"Local A-Pay on {apay.url}")
        threading.Event().wait()
