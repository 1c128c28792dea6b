from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        from shop.roles import roles_sync

        # After every migrate (permissions exist by then): the staff groups, up to date.
        post_migrate.connect(roles_sync, dispatch_uid="shop.roles_sync")
