from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Installed for its templates (the admin steps); it has no models."""

    name = "core"
    verbose_name = "Core"
