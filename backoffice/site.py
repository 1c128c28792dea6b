from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from backoffice import twofactor


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

    login_form = twofactor.StaffAuthenticationForm

    def has_permission(self, request) -> bool:
        """Staff, and with STAFF_REQUIRE_2FA on, signed in with a second factor too."""
        if not super().has_permission(request):
            return False
        return not settings.STAFF_REQUIRE_2FA or request.user.is_verified()

    def login(self, request, extra_context=None):
        user = request.user
        if (
            settings.STAFF_REQUIRE_2FA
            and user.is_authenticated
            and user.is_active
            and user.is_staff
            and not user.is_verified()
            and not twofactor.is_enrolled(user)
        ):
            # Password accepted, no authenticator yet: enrolling is the only way on.
            return redirect("admin:twofactor")
        return super().login(request, extra_context)

    def get_urls(self):
        return [
            path("2fa/", lambda request: twofactor.enrol_view(self, request), name="twofactor"),
            path("golive/", self.admin_view(self.golive_view), name="golive"),
            *super().get_urls(),
        ]

    def golive_view(self, request):
        """The go-live checklist, as `manage.py golive_check` prints it."""
        from backoffice import golive

        if not request.user.has_perm("backoffice.run_golive_check"):
            raise PermissionDenied
        context = {
            **self.each_context(request),
            "title": "Go-live check",
            "items": golive.golive_items(),
        }
        return TemplateResponse(request, "admin/backoffice/golive.html", context)

    def index(self, request, extra_context=None):
        from backoffice.dashboard import dashboard_context

        return super().index(request, {**dashboard_context(request), **(extra_context or {})})
