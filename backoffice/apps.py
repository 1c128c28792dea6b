from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back office"

    def ready(self) -> None:
        from backoffice.roles import roles_sync

        # After every migrate (permissions exist by then): the staff groups, up to date.
        post_migrate.connect(roles_sync, dispatch_uid="backoffice.roles_sync")


class BackofficeAdminConfig(AdminConfig):
    """django.contrib.admin with the back office's site (the dashboard on its home page)."""

    default_site = "backoffice.site.BackofficeSite"
