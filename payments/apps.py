from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        # Its tasks are published by name (shop.publish): registered in every process.
        from payments import tasks  # noqa: F401
