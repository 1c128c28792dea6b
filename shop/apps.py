from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        # Its tasks are published by name (shop.publish): registered in every process.
        from shop import tasks  # noqa: F401
