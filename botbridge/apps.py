from django.apps import AppConfig


class BotbridgeConfig(AppConfig):
    name = "botbridge"
    verbose_name = "Telegram"

    def ready(self) -> None:
        # Lower layers publish these tasks by name (shop.outbox, payments' Stars refunds):
        # they must be registered in every process, web included.
        from botbridge import tasks  # noqa: F401
