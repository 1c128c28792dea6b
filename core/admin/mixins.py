"""Permission shapes and displays the admins share."""

import json

from django.contrib import admin
from django.utils.html import format_html


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


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Related records shown on a page, each linking to its own."""

    extra = 0
    show_change_link = True


def folded_json(value) -> str:
    """Raw data from outside (Telegram's payloads), folded away until someone needs it."""
    if not value:
        return "—"
    return format_html(
        "<details><summary>Show</summary><pre>{}</pre></details>",
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )
