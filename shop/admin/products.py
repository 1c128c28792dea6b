"""The catalog: products, their options and digital items, prices typed in major units."""

from django import forms
from django.contrib import admin

from core import money
from shop.models import (
    DigitalItem,
    Product,
    ProductOption,
)


class DigitalItemInline(admin.TabularInline):
    model = DigitalItem
    extra = 1
    fields = ["content", "order_item", "delivered_at"]
    readonly_fields = ["order_item", "delivered_at"]


class ProductForm(forms.ModelForm):
    """The price is typed as people write it (12.50), in the product's currency."""

    price = forms.CharField(
        max_length=32,
        help_text="As you would write it, in the currency below: 12.50 USD, 1490 RUB, 350 XTR.",
    )

    class Meta:
        model = Product
        fields = [
            "sku", "kind", "is_active", "title", "description", "option_name", "title_ru",
            "description_ru", "option_name_ru", "price", "currency", "photo_url", "stock",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and money.is_known_currency(self.instance.currency):
            self.initial["price"] = money.major_text(self.instance.price, self.instance.currency)

    def clean(self):
        data = super().clean()
        currency, typed = data.get("currency"), data.get("price")
        if currency and typed:
            try:
                data["price"] = money.to_minor(typed, currency)
            except ValueError as error:
                self.add_error("price", str(error))
        return data


class ProductOptionInline(admin.TabularInline):
    model = ProductOption
    extra = 0
    fields = ["value", "label", "label_ru", "position", "is_active"]
    verbose_name_plural = "Options the bot asks before the invoice (e.g. sizes)"


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = ["title", "sku", "kind", "price_display", "stock_display", "is_active"]
    list_filter = ["kind", "currency", "is_active"]
    search_fields = ["sku", "title", "description", "title_ru"]
    list_editable = ["is_active"]
    inlines = [ProductOptionInline, DigitalItemInline]
    fieldsets = [
        (None, {"fields": ["sku", "kind", "is_active"]}),
        ("English", {"fields": ["title", "description", "option_name"]}),
        (
            "Russian",
            {
                "fields": ["title_ru", "description_ru", "option_name_ru"],
                "description": "Shown to customers whose Telegram speaks Russian; empty "
                "fields fall back to English.",
            },
        ),
        ("Price", {"fields": ["price", "currency"]}),
        ("Catalog", {"fields": ["photo_url", "stock"]}),
    ]

    @admin.display(description="Price", ordering="price")
    def price_display(self, obj: Product) -> str:
        return money.format_amount(obj.price, obj.currency)

    @admin.display(description="Stock", ordering="stock")
    def stock_display(self, obj: Product) -> str:
        return "unlimited" if obj.stock is None else str(obj.stock)
