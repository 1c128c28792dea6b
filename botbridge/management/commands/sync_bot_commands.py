from django.core.management.base import BaseCommand, CommandError

from botbridge import bot
from botbridge.handlers import COMMAND_DESCRIPTIONS


class Command(BaseCommand):
    help = "Publish the bot's command menu (setMyCommands) in English (default) and Russian."

    def handle(self, *args, **options):
        try:
            for language, commands in COMMAND_DESCRIPTIONS.items():
                bot.set_commands(
                    commands=commands, language_code=None if language == "en" else language
                )
        except bot.TelegramError as error:
            raise CommandError(f"Telegram refused: {error.description}") from error
        self.stdout.write(
            f"Commands published: {', '.join(c for c, _ in COMMAND_DESCRIPTIONS['en'])}."
        )
