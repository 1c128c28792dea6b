from django.contrib import admin


class ShopAdminSite(admin.AdminSite):
    """The admin, with the dashboard on its home page."""

    def index(self, request, extra_context=None):
        from shop.dashboard import dashboard_context

        return super().index(request, {**dashboard_context(request), **(extra_context or {})})
