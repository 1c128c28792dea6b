"""Customers (a base: backoffice.admin adds the balance and registers it)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from core import money
from core.admin.search import TELEGRAM_ID, IndexedSearchMixin, exact, username
from core.admin.steps import StepsAdminMixin
from shop import services as shop_services
from shop.admin.base import NoteForm, ReadOnlyInline
from shop.models import (
    Cart,
    Customer,
    CustomerEvent,
    Order,
    SupportRequest,
)


class CustomerOrderInline(ReadOnlyInline):
    model = Order
    fields = ["reference", "status", "total", "created_at"]
    readonly_fields = fields
    ordering = ["-created_at"]
    max_num = 0
    verbose_name_plural = "Orders"

    @admin.display(description="Total")
    def total(self, obj: Order) -> str:
        return obj.total_display


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


class CustomerAdmin(IndexedSearchMixin, StepsAdminMixin, admin.ModelAdmin):
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
    search_fields = ["username"]
    search_help_text = "Telegram id, @username, or a first or last name."
    search_lookups = (
        exact("telegram_id", TELEGRAM_ID, int),
        username("username"),
        exact("first_name__iexact"),
        exact("last_name__iexact"),
    )
    # Blocking and flagging go through their steps (and the customer's history), never a
    # checkbox: every field here is read-only.
    readonly_fields = [
        "telegram_id",
        "username",
        "first_name",
        "last_name",
        "language_code",
        "terms_version",
        "terms_accepted_at",
        "is_blocked",
        "is_flagged",
        "flag_reason",
        "has_blocked_bot",
        "reminders_off_at",
        "cart_display",
        "created_at",
    ]
    fields = readonly_fields
    actions = ["block", "unblock"]
    inlines = [CustomerOrderInline, SupportHistoryInline, CustomerHistoryInline]
    step_views = (("block", "block_view"), ("unblock", "unblock_view"))

    def has_delete_permission(self, request, obj=None):
        return False  # payments and the ledger refer to customers: they are never deleted

    @admin.display(description="Cart now")
    def cart_display(self, obj: Customer) -> str:
        """What they have in the cart (when they write that checkout does not work)."""
        cart = Cart.objects.filter(customer=obj).first()
        if cart is None or not cart.lines.exists():
            return "empty"
        view = shop_services.cart_view(cart=cart)
        lines = [
            f"{line.line.quantity} × {line.product.title}"
            + (f" ({line.line.option})" if line.line.option else "")
            + (f" — {line.stale.replace('_', ' ')}" if line.stale else "")
            for line in view.lines
        ]
        total = money.format_amount(view.total, view.currency)
        code = f", code {view.promo.code}" if view.promo else ""
        return f"{'; '.join(lines)}: {total}{code}"

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
            self.log_change(request, customer, "Blocked")
        self.message_user(request, f"Blocked {queryset.count()} customer(s).", messages.SUCCESS)

    @admin.action(description="Unblock selected customers", permissions=["change"])
    def unblock(self, request, queryset: QuerySet[Customer]):
        for customer in queryset:
            shop_services.customer_set_blocked(
                customer=customer, is_blocked=False, actor=request.user
            )
            self.log_change(request, customer, "Unblocked")
        self.message_user(request, f"Unblocked {queryset.count()} customer(s).", messages.SUCCESS)
