from django.core.management.base import BaseCommand, CommandError

from botbridge import bot


class Command(BaseCommand):
    help = "Remove the webhook, e.g. before run_bot_polling."

    def add_arguments(self, parser):
        parser.add_argument("--drop-pending-updates", action="store_true")

    def handle(self, *args, drop_pending_updates, **options):
        try:
            bot.delete_webhook(drop_pending_updates=drop_pending_updates)
        except bot.TelegramError as error:
            raise CommandError(f"Telegram refused: {error.description}") from error
        self.stdout.write("Webhook deleted.")
