"""Orders and customers as staff see them: with their payments, refunds, disputes, balance.

The shop's admins for these models are bases (shop.admin); this layer adds what comes from
payments and registers them, once. Payment steps shown on the order page are the payment
admin's own, so a step is offered on both pages under the same rules.
"""

from django.contrib import admin

from backoffice.models import Backup
from backoffice.timeline import order_timeline_html
from core import money
from core.admin.mixins import ReadOnlyAdminMixin
from payments.admin import DisputeInline, PaymentInline, RefundInline
from payments.admin_exports import ExportActionMixin
from payments.models import Payment
from payments.selectors import customer_balances
from shop import admin as shop_admin
from shop.models import Customer, Order


@admin.register(Order)
class OrderAdmin(ExportActionMixin, shop_admin.OrderAdmin):
    export_report = "orders"
    fields = ["timeline", *shop_admin.OrderAdmin.fields]
    # The timeline above shows the order's events and messages; these are its records.
    inlines = [shop_admin.OrderItemInline, PaymentInline, RefundInline, DisputeInline]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "timeline"]

    @admin.display(description="Timeline")
    def timeline(self, obj: Order) -> str:
        return order_timeline_html(obj)

    def steps_for(self, request, obj):
        """The order's own steps, then each payment's (refund, dispute) where allowed."""
        steps = super().steps_for(request, obj)
        payment_admin = self.admin_site.get_model_admin(Payment)
        for payment in obj.payments.all():
            for step in payment_admin.steps_for(request, payment):
                steps.append(
                    {**step, "label": f"{step['label']} ({payment.telegram_payment_charge_id})"}
                )
        return steps


@admin.register(Customer)
class CustomerAdmin(shop_admin.CustomerAdmin):
    fields = [*shop_admin.CustomerAdmin.fields[:7], "balance", *shop_admin.CustomerAdmin.fields[7:]]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "balance"]

    @admin.display(description="Balance")
    def balance(self, obj: Customer) -> str:
        balances = customer_balances(customer=obj)
        return ", ".join(money.format_amount(v, k) for k, v in balances.items()) or "0"


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Backups as they were taken: nightly by beat, or `manage.py backup`."""

    list_display = ["created_at", "name", "size_display", "short_checksum", "status",
                    "is_verified"]  # fmt: skip
    list_filter = ["status"]
    fields = ["name", "status", "created_at", "finished_at", "size_display", "sha256",
              "verified_at", "database", "ledger_display", "rows_display", "error"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Size", ordering="size")
    def size_display(self, obj: Backup) -> str:
        return f"{obj.size / 1_000_000:,.1f} MB" if obj.size >= 100_000 else f"{obj.size:,} bytes"

    @admin.display(description="SHA-256")
    def short_checksum(self, obj: Backup) -> str:
        return f"{obj.sha256[:12]}…" if obj.sha256 else "—"

    @admin.display(description="Verified", boolean=True, ordering="verified_at")
    def is_verified(self, obj: Backup) -> bool:
        return obj.verified_at is not None

    @admin.display(description="Ledger per currency")
    def ledger_display(self, obj: Backup) -> str:
        sums = obj.ledger_sums or {}
        return ", ".join(money.format_amount(v, k) for k, v in sorted(sums.items())) or "—"

    @admin.display(description="Rows")
    def rows_display(self, obj: Backup) -> str:
        return f"{sum((obj.counts or {}).values()):,} in {len(obj.counts or {})} tables"
