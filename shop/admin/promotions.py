"""Promo codes (amounts typed in major units) and Stars subscriptions with their steps."""

from django import forms
from django.contrib import admin
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core import money
from core.admin.mixins import ReadOnlyAdminMixin
from core.admin.steps import StepsAdminMixin
from shop import services as shop_services
from shop.admin.base import NoteForm, ReadOnlyInline
from shop.models import PromoCode, PromoRedemption, Subscription, SubscriptionEvent


class PromoCodeForm(forms.ModelForm):
    """A fixed discount is typed as people write it (5.00), in its currency."""

    amount = forms.CharField(
        max_length=32,
        required=False,
        label="Fixed amount off",
        help_text="For a fixed discount: as you would write it, in the currency below (5.00).",
    )

    class Meta:
        model = PromoCode
        fields = [
            "code", "is_active", "kind", "percent", "amount", "currency", "valid_from",
            "valid_until", "max_uses", "max_uses_per_customer", "products",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk and instance.amount and money.is_known_currency(instance.currency):
            self.initial["amount"] = money.major_text(instance.amount, instance.currency)

    def clean_code(self):
        return "".join((self.cleaned_data.get("code") or "").split()).upper()

    def clean(self):
        data = super().clean()
        typed, currency = (data.get("amount") or "").strip(), data.get("currency")
        if data.get("kind") == PromoCode.Kind.FIXED and typed and currency:
            try:
                data["amount"] = money.to_minor(typed, currency)
            except ValueError as error:
                self.add_error("amount", str(error))
        else:
            data["amount"] = None if data.get("kind") == PromoCode.Kind.PERCENT or not typed else 0
        if data.get("kind") == PromoCode.Kind.FIXED and not typed:
            self.add_error("amount", "A fixed discount needs an amount.")
        if data.get("kind") == PromoCode.Kind.PERCENT:
            data["currency"] = ""
        return data


class PromoRedemptionInline(ReadOnlyInline):
    model = PromoRedemption
    fields = ["created_at", "order", "customer", "discount_display", "status", "used_at"]
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = "Uses (held at checkout, used when paid)"
    ordering = ["-created_at"]

    @admin.display(description="Discount")
    def discount_display(self, obj: PromoRedemption) -> str:
        return money.format_amount(obj.discount_amount, obj.currency)


@admin.register(PromoCode)
class PromoCodeAdmin(admin.ModelAdmin):
    form = PromoCodeForm
    list_display = ["code", "value_display", "is_active", "window_display", "uses_display",
                    "limit_display"]  # fmt: skip
    list_filter = ["is_active", "kind"]
    search_fields = ["code"]
    filter_horizontal = ["products"]
    readonly_fields = ["times_used", "uses_held", "created_at"]
    inlines = [PromoRedemptionInline]
    fieldsets = [
        (None, {"fields": ["code", "is_active"]}),
        ("Discount", {"fields": ["kind", "percent", "amount", "currency"],
                      "description": "A percent comes off every product it applies to; a fixed "
                      "amount applies to carts in its currency only."}),
        ("When", {"fields": ["valid_from", "valid_until"]}),
        ("Limits", {"fields": ["max_uses", "max_uses_per_customer", "products"],
                    "description": "Empty limits mean none. No products chosen: every product."}),
        ("Uses", {"fields": ["times_used", "uses_held", "created_at"],
                  "description": "Paid uses count when the payment is recorded; held uses "
                  "are checkouts in progress, given back if never paid."}),
    ]  # fmt: skip

    @admin.display(description="Discount")
    def value_display(self, obj: PromoCode) -> str:
        return obj.value_display

    @admin.display(description="Valid")
    def window_display(self, obj: PromoCode) -> str:
        start = f"{timezone.localtime(obj.valid_from):%Y-%m-%d}" if obj.valid_from else "always"
        end = f"{timezone.localtime(obj.valid_until):%Y-%m-%d}" if obj.valid_until else "no end"
        return f"{start} → {end}"

    @admin.display(description="Paid uses", ordering="times_used")
    def uses_display(self, obj: PromoCode) -> int:
        return obj.times_used

    @admin.display(description="Limit")
    def limit_display(self, obj: PromoCode) -> str:
        total = "no limit" if obj.max_uses is None else f"{obj.max_uses} in total"
        each = "" if obj.max_uses_per_customer is None else f", {obj.max_uses_per_customer} each"
        return total + each


class SubscriptionEventInline(ReadOnlyInline):
    model = SubscriptionEvent
    fields = ["created_at", "kind", "message", "actor", "source"]
    readonly_fields = fields
    show_change_link = False
    ordering = ["created_at", "id"]
    verbose_name_plural = "History"


@admin.register(Subscription)
class SubscriptionAdmin(StepsAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["product", "customer", "status", "renewal_display", "expires_at",
                    "renewals", "started_at"]  # fmt: skip
    list_filter = ["status", "is_canceled", "product"]
    search_fields = ["=customer__telegram_id", "customer__username", "=telegram_payment_charge_id"]
    list_select_related = ["product", "customer"]
    fields = ["customer", "product", "status", "renewal_display", "started_at", "expires_at",
              "renewals", "first_order", "telegram_payment_charge_id", "cancelled_at",
              "expired_at"]  # fmt: skip
    readonly_fields = fields
    inlines = [SubscriptionEventInline]
    step_views = (("cancel", "cancel_view"), ("reenable", "reenable_view"))

    @admin.display(description="Renewal")
    def renewal_display(self, obj: Subscription) -> str:
        if obj.status == Subscription.Status.EXPIRED:
            return "ended"
        return "cancelled" if obj.is_canceled else "on"

    def steps_for(self, request, obj):
        if not request.user.has_perm("shop.change_subscription"):
            return []
        if obj.status != Subscription.Status.ACTIVE:
            return []
        if obj.is_canceled:
            return [{"label": "Re-enable renewal", "url": self.step_url(obj, "reenable")}]
        return [{"label": "Cancel renewal", "url": self.step_url(obj, "cancel")}]

    def cancel_view(self, request, object_id):
        return self._renewal_step(request, object_id, cancel=True)

    def reenable_view(self, request, object_id):
        return self._renewal_step(request, object_id, cancel=False)

    def _renewal_step(self, request, object_id, *, cancel: bool):
        subscription = get_object_or_404(Subscription, pk=object_id)
        label = "Cancel renewal" if cancel else "Re-enable renewal"

        def act(data):
            shop_services.subscription_set_renewal(
                subscription=subscription, cancel=cancel, actor=request.user, note=data["note"]
            )
            return (
                f"Renewal {'cancelled' if cancel else 're-enabled'}: Telegram is told "
                "(editUserStarSubscription) and so is the customer."
            )

        return self.run_step(
            request,
            subscription,
            permission="shop.change_subscription",
            title=f"{label}: {subscription}",
            intro=(
                "Telegram stops charging; access stays until the end of the period already paid."
                if cancel
                else "Telegram charges again at the end of the period."
            ),
            form_class=NoteForm,
            act=act,
            submit_label=label,
        )
