import logging
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from botbridge import bot, services

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Fetch updates by long polling (getUpdates) for local work with a real token."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=int, default=25)
        parser.add_argument("--once", action="store_true", help="One getUpdates call, then exit.")

    def handle(self, *args, timeout, once, **options):
        offset = 0
        self.stdout.write("Polling Telegram for updates; Ctrl+C stops.")
        while True:
            try:
                updates = bot.get_raw_updates(offset=offset, timeout=0 if once else timeout)
            except bot.TelegramError as error:
                logger.warning("getUpdates failed: %s", error)
                if once:
                    raise
                time.sleep(3)
                continue
            for payload in updates:
                if not connection.in_atomic_block:
                    # A long-running loop: drop connections the database closed meanwhile.
                    close_old_connections()
                # The same path as the webhook: stored under update_id, handled once; what
                # a webhook would send back in its response is sent as a call instead.
                reply = services.update_receive(payload=payload)
                if reply is not None:
                    bot.answer_query(reply)
                offset = payload["update_id"] + 1
            if once:
                self.stdout.write(f"Handled {len(updates)} update(s).")
                return
