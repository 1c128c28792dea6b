import contextlib
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from botbridge import services


class Command(BaseCommand):
    help = (
        "Wake the worker for stored Telegram updates (commands, text, buttons) several times a "
        "second. Run one beside the Celery workers; more are harmless (a lane is claimed once)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between passes (default TELEGRAM_DISPATCH_INTERVAL).",
        )
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args, interval, once, **options):
        interval = settings.TELEGRAM_DISPATCH_INTERVAL if interval is None else interval
        if interval <= 0:
            self.stderr.write("--interval must be more than 0 seconds.")
            raise SystemExit(2)
        if once:
            self.stdout.write(f"Woke {services.updates_dispatch()} lane(s).")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.stdout.write(f"Dispatching stored updates every {interval:g} s; Ctrl+C stops.")
        with contextlib.suppress(KeyboardInterrupt):
            services.updates_dispatch_forever(interval=interval, stop=stop)
