"""Orders (a base: backoffice.admin adds payments and the timeline and registers it), the audit trail."""

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core import money
from core.admin.mixins import ReadOnlyAdminMixin, RecordAdminMixin
from core.admin.pagination import EstimatedCountPaginator
from core.admin.search import TELEGRAM_ID, IndexedSearchMixin, exact, username
from core.admin.steps import StepsAdminMixin
from core.errors import IllegalTransition
from shop import services as shop_services
from shop.admin.base import CurrencyFilter, NoteForm, ReadOnlyInline
from shop.models import (
    Message,
    Order,
    OrderEvent,
    OrderItem,
)


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ["title", "sku", "option_display", "quantity", "unit_price_display", "total_display"]
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = "Items"

    @admin.display(description="Option")
    def option_display(self, obj: OrderItem) -> str:
        return obj.option_label or "—"

    @admin.display(description="Unit price")
    def unit_price_display(self, obj: OrderItem) -> str:
        return money.format_amount(obj.unit_price, obj.currency)

    @admin.display(description="Total")
    def total_display(self, obj: OrderItem) -> str:
        return money.format_amount(obj.line_total, obj.currency)


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "kind", "message", "actor", "source"]
    readonly_fields = fields
    show_change_link = False
    ordering = ["created_at", "id"]


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ["created_at", "direction", "text", "status"]
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = "Messages about this order"


# Crockford's base32 (the references the shop makes), or a benchmark's B and seven digits.
REFERENCE = re.compile(r"[0-9A-Za-z]{8}")


class ShipForm(forms.Form):
    carrier = forms.CharField(max_length=64, help_text="E.g. DHL, UPS, Russian Post.")
    tracking_number = forms.CharField(max_length=64)
    tracking_url = forms.URLField(
        required=False, label="Tracking link", help_text="Optional: sent to the customer too."
    )


class OrderAdmin(IndexedSearchMixin, StepsAdminMixin, RecordAdminMixin, admin.ModelAdmin):
    """Registered by backoffice.admin (with payments, refunds, disputes and the timeline)."""

    list_display = ["reference", "customer", "status", "total_display", "needs_review",
                    "created_at", "paid_at"]  # fmt: skip
    list_filter = ["status", "needs_review", CurrencyFilter, "created_at"]
    # Shown as the search box; the lookups below are what runs (one index each).
    search_fields = ["reference"]
    search_help_text = "Order reference, Telegram id, @username, or a Telegram or A-Pay charge id."
    search_lookups = (
        exact("reference", REFERENCE, str.upper),
        exact("customer__telegram_id", TELEGRAM_ID, int),
        username("customer__username"),
        exact("payments__telegram_payment_charge_id"),
        exact("payments__provider_payment_charge_id"),
    )
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    readonly_fields = [
        "reference",
        "customer",
        "status_display",
        "total_display",
        "promo_display",
        "subscription",
        "review_reason",
        "address_display",
        "shipment_display",
        "created_at",
        "invoiced_at",
        "paid_at",
        "fulfilled_at",
        "stock_reserved",
    ]
    fields = [*readonly_fields[:6], "needs_review", *readonly_fields[6:]]
    inlines = [OrderItemInline, OrderEventInline, MessageInline]
    # A million orders: no second COUNT(*) for "N total", and an estimated page count.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["mark_delivered"]

    step_views = (
        ("ship", "ship_view"),
        ("deliver", "deliver_view"),
        ("cancel", "cancel_view"),
        ("packing", "packing_view"),
    )

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: Order) -> str:
        return obj.get_status_display()

    @admin.display(description="Total", ordering="total_amount")
    def total_display(self, obj: Order) -> str:
        return obj.total_display

    @admin.display(description="Promo code and delivery")
    def promo_display(self, obj: Order) -> str:
        parts = []
        if obj.promo_code_id:
            off = money.format_amount(obj.discount_amount, obj.currency)
            lines = money.format_amount(obj.subtotal_amount, obj.currency)
            parts.append(f"{obj.promo_code.code}: −{off} on items of {lines}")
        if obj.delivery_amount:
            parts.append(f"delivery {money.format_amount(obj.delivery_amount, obj.currency)}")
        return "; ".join(parts) or "—"

    @admin.display(description="Shipping address")
    def address_display(self, obj: Order) -> str:
        lines = obj.shipping_address_lines
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines)) or "—"

    @admin.display(description="Shipment")
    def shipment_display(self, obj: Order) -> str:
        if not obj.tracking_number:
            return "—"
        shown = format_html("{}, tracking {}", obj.carrier, obj.tracking_number)
        if obj.tracking_url:
            shown = format_html('{} (<a href="{}">follow</a>)', shown, obj.tracking_url)
        when = [f"shipped {timezone.localtime(obj.shipped_at):%Y-%m-%d}"] if obj.shipped_at else []
        if obj.delivered_at:
            when.append(f"delivered {timezone.localtime(obj.delivered_at):%Y-%m-%d}")
        return format_html("{}; {}", shown, ", ".join(when)) if when else shown

    def steps_for(self, request, obj):
        """Only what the order's status allows."""
        steps = []
        if obj.status == Order.Status.AWAITING_SHIPMENT:
            steps.append({"label": "Packing slip", "url": self.step_url(obj, "packing")})
        if request.user.has_perm("shop.change_order"):
            if obj.status == Order.Status.AWAITING_SHIPMENT:
                steps.append({"label": "Mark shipped", "url": self.step_url(obj, "ship")})
            if obj.status == Order.Status.SHIPPED:
                steps.append({"label": "Mark delivered", "url": self.step_url(obj, "deliver")})
            if obj.can_transition_to(Order.Status.CANCELLED):
                steps.append({"label": "Cancel order", "url": self.step_url(obj, "cancel")})
        return steps

    def ship_view(self, request, object_id):
        order = get_object_or_404(Order, pk=object_id)

        def act(data):
            shop_services.order_ship(order=order, actor=request.user, **data)
            return f"Order {order.reference} shipped; the customer has the tracking number."

        return self.run_step(
            request,
            order,
            permission="shop.change_order",
            title=f"Mark shipped: order {order.reference}",
            intro="The customer is told in Telegram, in their language, with the tracking number.",
            form_class=ShipForm,
            act=act,
            submit_label="Mark shipped and tell the customer",
        )

    def deliver_view(self, request, object_id):
        return self._note_step(
            request, object_id, title="Mark delivered", done="delivered",
            service=shop_services.order_deliver,
        )  # fmt: skip

    def cancel_view(self, request, object_id):
        return self._note_step(
            request, object_id, title="Cancel order", done="cancelled",
            service=shop_services.order_cancel, intro="Reserved stock goes back on sale.",
        )  # fmt: skip

    def _note_step(self, request, object_id, *, title, done, service, intro=""):
        """A step that takes only a note for the audit trail."""
        order = get_object_or_404(Order, pk=object_id)

        def act(data):
            service(order=order, actor=request.user, note=data["note"])
            return f"Order {order.reference} {done}."

        return self.run_step(
            request,
            order,
            permission="shop.change_order",
            title=f"{title}: order {order.reference}",
            intro=intro,
            form_class=NoteForm,
            act=act,
            submit_label=title,
        )

    def packing_view(self, request, object_id):
        """What to put in the parcel and where it goes, to print."""
        if not request.user.has_perm("shop.view_order"):
            raise PermissionDenied
        order = get_object_or_404(Order.objects.select_related("customer"), pk=object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Packing slip: order {order.reference}",
            "order": order,
            "items": order.items.all(),
            "address": order.shipping_address_lines,
            "back_url": self.change_url(order),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/shop/order/packing.html", context)

    @admin.action(description="Mark selected shipped orders delivered", permissions=["change"])
    def mark_delivered(self, request, queryset: QuerySet[Order]):
        done = 0
        for order in queryset:
            try:
                shop_services.order_deliver(order=order, actor=request.user)
            except IllegalTransition as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            self.log_change(request, order, "Marked delivered")
            done += 1
        if done:
            self.message_user(request, f"Marked {done} order(s) delivered.", messages.SUCCESS)


class EventSourceFilter(admin.SimpleListFilter):
    """Who caused the event; fixed choices (the field's distinct values cost a full scan)."""

    title = "source"
    parameter_name = "source__exact"

    def lookups(self, request, model_admin):
        return [("staff", "Staff"), ("customer", "Customer"), ("system", "System")]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "order", "kind", "message", "actor", "source"]
    list_filter = ["kind", EventSourceFilter]
    search_fields = ["=order__reference", "message"]
    list_select_related = ["order", "actor"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
