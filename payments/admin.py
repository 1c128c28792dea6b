from django.contrib import admin

from payments.models import Dispute, LedgerEntry, Payment, Refund
from shop import money
from shop.admin_mixins import ReadOnlyAdminMixin, RecordAdminMixin
from shop.pagination import EstimatedCountPaginator


class MoneyDisplayMixin:
    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj) -> str:
        return money.format_amount(obj.amount, obj.currency)


@admin.register(Payment)
class PaymentAdmin(RecordAdminMixin, MoneyDisplayMixin, admin.ModelAdmin):
    list_display = [
        "telegram_payment_charge_id",
        "order",
        "customer",
        "provider",
        "amount_display",
        "refunded_amount",
        "review_reason",
        "paid_at",
        "credited_at",
    ]
    list_filter = ["provider", "currency", "review_reason", "paid_at"]
    search_fields = [
        "=telegram_payment_charge_id",
        "=provider_payment_charge_id",
        "=order__reference",
        "=customer__telegram_id",
        "customer__username",
    ]
    list_select_related = ["order", "customer"]
    raw_id_fields = ["order", "customer"]
    readonly_fields = [f.name for f in Payment._meta.fields if f.name != "id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(Refund)
class RefundAdmin(RecordAdminMixin, MoneyDisplayMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "payment",
        "order",
        "amount_display",
        "reason",
        "status",
        "source",
        "author",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "reason", "source", "currency"]
    search_fields = [
        "=payment__telegram_payment_charge_id",
        "=order__reference",
        "external_reference",
    ]
    list_select_related = ["payment", "order", "author"]
    readonly_fields = [f.name for f in Refund._meta.fields if f.name != "id"]


@admin.register(Dispute)
class DisputeAdmin(MoneyDisplayMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "payment",
        "order",
        "amount_display",
        "reason",
        "status",
        "evidence_due_by",
        "assignee",
        "is_overdue",
    ]
    list_filter = ["status", "reason", "is_due_soon", "is_overdue"]
    search_fields = [
        "=payment__telegram_payment_charge_id",
        "=order__reference",
        "provider_reference",
    ]
    list_select_related = ["payment", "order", "assignee"]
    raw_id_fields = ["payment", "order"]
    ordering = ["evidence_due_by"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, MoneyDisplayMixin, admin.ModelAdmin):
    """Append-only: nothing is added, changed or deleted here; corrections are new entries."""

    list_display = [
        "created_at",
        "customer",
        "kind",
        "amount_display",
        "order",
        "memo",
        "idempotency_key",
    ]
    list_filter = ["kind", "currency"]
    search_fields = [
        "=customer__telegram_id",
        "customer__username",
        "=order__reference",
        "=idempotency_key",
    ]
    list_select_related = ["customer", "order"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
