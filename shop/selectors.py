"""Reads for the bot, the admin and reports."""

from django.db.models import QuerySet

from shop.models import Customer, Order, Product, ProductOption


def product_list_for_sale() -> QuerySet[Product]:
    return Product.objects.filter(is_active=True).order_by("title", "pk")


def product_get_for_sale(*, sku: str) -> Product | None:
    return product_list_for_sale().filter(sku=sku).first()


def order_list_for_customer(*, customer: Customer, limit: int = 10) -> list[Order]:
    return list(Order.objects.filter(customer=customer).order_by("-created_at", "-id")[:limit])


def order_get_by_reference(*, reference: str) -> Order | None:
    return Order.objects.select_related("customer").filter(reference=reference).first()


def product_options(*, product: Product) -> list[ProductOption]:
    """The options offered for a product, in their order (empty: it has none)."""
    return [option for option in product.options.all() if option.is_active]
