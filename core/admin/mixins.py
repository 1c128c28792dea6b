"""Permission shapes the admins share."""


class RecordAdminMixin:
    """Rows that come from outside (Telegram, customers) or stand for money: never added or
    deleted by hand; they are corrected by new rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdminMixin(RecordAdminMixin):
    """Append-only records (ledger, audit events, raw updates): the admin only shows them."""

    def has_change_permission(self, request, obj=None):
        return False
