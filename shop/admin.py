"""Staff screens for the shop's own models.

Product, support requests, the audit trail and the conversation with customers are
registered here. Orders and customers are shown with their payments and balance, which
live in a higher layer: their admins here are bases that `backoffice.admin` extends and
registers.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from core import money
from core.admin.mixins import ReadOnlyAdminMixin, RecordAdminMixin
from core.admin.pagination import EstimatedCountPaginator
from core.admin.steps import StepsAdminMixin
from core.errors import DomainError, IllegalTransition
from shop import outbox
from shop import services as shop_services
from shop.models import (
    Customer,
    CustomerEvent,
    DigitalItem,
    Message,
    Order,
    OrderEvent,
    OrderItem,
    Product,
    SupportRequest,
)


class NoteForm(forms.Form):
    note = forms.CharField(required=False, max_length=255, help_text="Kept in the audit trail.")


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    show_change_link = True


class DigitalItemInline(admin.TabularInline):
    model = DigitalItem
    extra = 1
    fields = ["content", "order_item", "delivered_at"]
    readonly_fields = ["order_item", "delivered_at"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "sku", "kind", "price_display", "stock_display", "is_active"]
    list_filter = ["kind", "currency", "is_active"]
    search_fields = ["sku", "title", "description"]
    list_editable = ["is_active"]
    inlines = [DigitalItemInline]
    fieldsets = [
        (None, {"fields": ["sku", "title", "description", "kind", "is_active"]}),
        (
            "Price",
            {
                "fields": ["price", "currency"],
                "description": "Price in minor units (cents): 1250 USD is 12.50 USD; Stars (XTR) and JPY have no minor unit.",
            },
        ),
        ("Catalog", {"fields": ["photo_url", "stock"]}),
    ]

    @admin.display(description="Price", ordering="price")
    def price_display(self, obj: Product) -> str:
        return money.format_amount(obj.price, obj.currency)

    @admin.display(description="Stock", ordering="stock")
    def stock_display(self, obj: Product) -> str:
        return "unlimited" if obj.stock is None else str(obj.stock)


class CustomerOrderInline(ReadOnlyInline):
    model = Order
    fields = ["reference", "status", "total_display", "created_at"]
    readonly_fields = fields
    ordering = ["-created_at"]
    max_num = 0


class SupportHistoryInline(ReadOnlyInline):
    model = SupportRequest
    fields = ["created_at", "status", "text", "answer", "answered_by"]
    readonly_fields = fields
    ordering = ["-created_at"]
    verbose_name_plural = "Support history"


class CustomerHistoryInline(ReadOnlyInline):
    model = CustomerEvent
    fields = ["created_at", "message", "note", "actor", "source"]
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = "History"


class CustomerAdmin(StepsAdminMixin, admin.ModelAdmin):
    """Registered by backoffice.admin (with the customer's balance)."""

    list_display = [
        "__str__",
        "telegram_id",
        "full_name",
        "language_code",
        "terms_version",
        "is_blocked",
        "is_flagged",
        "created_at",
    ]
    list_filter = ["is_blocked", "is_flagged", "has_blocked_bot", "language_code"]
    search_fields = ["=telegram_id", "username", "first_name", "last_name"]
    readonly_fields = [
        "telegram_id",
        "username",
        "first_name",
        "last_name",
        "language_code",
        "terms_version",
        "terms_accepted_at",
        "has_blocked_bot",
        "created_at",
        "updated_at",
        "support_prompted_at",
    ]
    fields = readonly_fields[:7] + [
        "is_blocked",
        "is_flagged",
        "flag_reason",
        "has_blocked_bot",
        "created_at",
    ]
    actions = ["block", "unblock"]
    inlines = [CustomerOrderInline, SupportHistoryInline, CustomerHistoryInline]
    step_views = (("block", "block_view"), ("unblock", "unblock_view"))

    def steps_for(self, request, obj):
        if not request.user.has_perm("shop.change_customer"):
            return []
        name = "unblock" if obj.is_blocked else "block"
        return [{"label": name.title(), "url": self.step_url(obj, name)}]

    def _block_step(self, request, object_id, is_blocked: bool):
        customer = get_object_or_404(Customer, pk=object_id)
        verb = "Block" if is_blocked else "Unblock"

        def act(data):
            shop_services.customer_set_blocked(
                customer=customer, is_blocked=is_blocked, actor=request.user, note=data["note"]
            )
            return f"{verb}ed {customer}."

        return self.run_step(
            request,
            customer,
            permission="shop.change_customer",
            title=f"{verb} {customer}",
            intro="A blocked customer cannot order or pay." if is_blocked else "",
            form_class=NoteForm,
            act=act,
            submit_label=verb,
        )

    def block_view(self, request, object_id):
        return self._block_step(request, object_id, True)

    def unblock_view(self, request, object_id):
        return self._block_step(request, object_id, False)

    def has_add_permission(self, request):
        return False  # customers come from Telegram

    @admin.action(description="Block selected customers (they cannot pay)", permissions=["change"])
    def block(self, request, queryset: QuerySet[Customer]):
        for customer in queryset:
            shop_services.customer_set_blocked(
                customer=customer, is_blocked=True, actor=request.user
            )
        self.message_user(request, f"Blocked {queryset.count()} customer(s).", messages.SUCCESS)

    @admin.action(description="Unblock selected customers", permissions=["change"])
    def unblock(self, request, queryset: QuerySet[Customer]):
        for customer in queryset:
            shop_services.customer_set_blocked(
                customer=customer, is_blocked=False, actor=request.user
            )
        self.message_user(request, f"Unblocked {queryset.count()} customer(s).", messages.SUCCESS)


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ["sku", "title", "kind", "unit_price", "quantity", "currency"]
    readonly_fields = fields
    show_change_link = False


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "kind", "message", "from_status", "to_status", "actor", "source"]
    readonly_fields = fields
    show_change_link = False
    ordering = ["created_at", "id"]


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ["created_at", "direction", "text", "status"]
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = "Messages about this order"


class OrderAdmin(StepsAdminMixin, RecordAdminMixin, admin.ModelAdmin):
    """Registered by backoffice.admin (with payments, refunds, disputes and the timeline)."""

    list_display = [
        "reference",
        "customer",
        "status",
        "total_display",
        "needs_review",
        "created_at",
        "paid_at",
    ]
    list_filter = ["status", "needs_review", "currency", "created_at"]
    search_fields = [
        "=reference",
        "=customer__telegram_id",
        "customer__username",
        "=payments__telegram_payment_charge_id",
        "=payments__provider_payment_charge_id",
    ]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    readonly_fields = [
        "reference",
        "customer",
        "status",
        "currency",
        "total_amount",
        "stock_reserved",
        "shipping_address",
        "status_before_dispute",
        "review_reason",
        "created_at",
        "updated_at",
        "invoiced_at",
        "paid_at",
        "fulfilled_at",
    ]
    fields = [*readonly_fields[:3], "needs_review", *readonly_fields[3:]]
    inlines = [OrderItemInline, OrderEventInline, MessageInline]
    # A million orders: no second COUNT(*) for "N total", and an estimated page count.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["mark_shipped"]

    step_views = (("ship", "ship_view"), ("cancel", "cancel_view"))

    def steps_for(self, request, obj):
        """Only what the order's status allows."""
        steps = []
        if request.user.has_perm("shop.change_order"):
            if obj.status == Order.Status.AWAITING_SHIPMENT:
                steps.append({"label": "Mark shipped", "url": self.step_url(obj, "ship")})
            if obj.can_transition_to(Order.Status.CANCELLED):
                steps.append({"label": "Cancel order", "url": self.step_url(obj, "cancel")})
        return steps

    @admin.display(description="Total", ordering="total_amount")
    def total_display(self, obj: Order) -> str:
        return obj.total_display

    def _order_step(self, request, object_id, *, to_status, title, done):
        order = get_object_or_404(Order, pk=object_id)

        def act(data):
            if to_status == Order.Status.CANCELLED:
                shop_services.order_cancel(order=order, actor=request.user, note=data["note"])
            else:
                shop_services.order_transition(
                    order=order,
                    to_status=to_status,
                    actor=request.user,
                    message=(data.get("note") or title)[:255],
                )
            return f"Order {order.reference} {done}."

        return self.run_step(
            request,
            order,
            permission="shop.change_order",
            title=f"{title}: order {order.reference}",
            form_class=NoteForm,
            act=act,
            submit_label=title,
        )

    def ship_view(self, request, object_id):
        return self._order_step(
            request,
            object_id,
            to_status=Order.Status.FULFILLED,
            title="Mark shipped",
            done="shipped",
        )

    def cancel_view(self, request, object_id):
        return self._order_step(
            request,
            object_id,
            to_status=Order.Status.CANCELLED,
            title="Cancel order",
            done="cancelled",
        )

    @admin.action(description="Mark selected orders shipped (fulfilled)", permissions=["change"])
    def mark_shipped(self, request, queryset: QuerySet[Order]):
        done, refused = 0, []
        for order in queryset:
            try:
                shop_services.order_transition(
                    order=order,
                    to_status=Order.Status.FULFILLED,
                    actor=request.user,
                    message="Shipped",
                )
                done += 1
            except IllegalTransition as error:
                refused.append(error.message)
        if done:
            self.message_user(request, f"Marked {done} order(s) shipped.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.ERROR)


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "order", "kind", "message", "actor", "source"]
    list_filter = ["kind", "source"]
    search_fields = ["=order__reference", "message"]
    list_select_related = ["order", "actor"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    """The support queue: open requests first, oldest first."""

    list_display = ["pk", "customer", "status", "short_text", "created_at", "answered_at"]
    ordering = ["-status", "created_at"]
    list_filter = ["status"]
    search_fields = ["text", "=customer__telegram_id", "customer__username"]
    list_select_related = ["customer"]
    readonly_fields = ["customer", "text", "status", "answered_by", "answered_at", "created_at"]
    fields = ["customer", "created_at", "text", "status", "answer", "answered_by", "answered_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != SupportRequest.Status.OPEN:
            return [*self.readonly_fields, "answer"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        # The answer goes to the customer in Telegram; the service sends it and records it.
        if "answer" in form.changed_data:
            try:
                shop_services.support_request_answer(
                    support_request=obj, answer=form.cleaned_data["answer"], actor=request.user
                )
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request, "Answer sent to the customer in Telegram.", messages.SUCCESS
                )

    @admin.display(description="Question")
    def short_text(self, obj: SupportRequest) -> str:
        return obj.text[:80]

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(RecordAdminMixin, admin.ModelAdmin):
    """The conversation with customers; failed outbound messages can be sent again."""

    list_display = [
        "created_at",
        "direction",
        "customer",
        "method",
        "short_text",
        "status",
        "attempts",
    ]
    list_filter = ["direction", "status", "method"]
    search_fields = ["=chat_id", "customer__username", "text"]
    list_select_related = ["customer"]
    readonly_fields = [f.name for f in Message._meta.fields if f.name != "id"]
    actions = ["retry"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    @admin.display(description="Text")
    def short_text(self, obj: Message) -> str:
        return obj.text[:80]

    @admin.action(description="Retry selected failed messages", permissions=["change"])
    def retry(self, request, queryset: QuerySet[Message]):
        done = 0
        for message in queryset:
            try:
                outbox.message_retry(message=message)
                done += 1
            except DomainError as error:
                self.message_user(request, f"Message {message.pk}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, f"Queued {done} message(s) again.", messages.SUCCESS)
