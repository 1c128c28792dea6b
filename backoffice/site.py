from django.conf import settings
from django.contrib import admin


class BackofficeSite(admin.AdminSite):
    """The admin, with the dashboard on its home page."""

    site_header = settings.PRODUCT_NAME
    site_title = settings.PRODUCT_NAME
    index_title = "Back office"
    # The side menu takes a quarter of a 1366 px screen from every list; the breadcrumbs
    # and the dashboard's menu lead everywhere it does.
    enable_nav_sidebar = False

    @property
    def site_url(self) -> str | None:
        """*View site*: the sandbox chat with the bot when there is one; else no link (the
        shop's storefront is the bot in Telegram)."""
        return "/sandbox/" if settings.TELEGRAM_SANDBOX else None

    def index(self, request, extra_context=None):
        from backoffice.dashboard import dashboard_context

        return super().index(request, {**dashboard_context(request), **(extra_context or {})})
