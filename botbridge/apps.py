from django.apps import AppConfig


class BotbridgeConfig(AppConfig):
    name = "botbridge"
    verbose_name = "Telegram"
