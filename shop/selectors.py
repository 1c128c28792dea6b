"""Reads for the bot, the admin and reports."""

from django.db.models import QuerySet

from shop.models import Cart, Customer, Order, Product, ProductOption, Subscription


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


def subscription_list_for_customer(*, customer: Customer, limit: int = 10) -> list[Subscription]:
    """Active ones first, then the most recently ended."""
    return list(
        Subscription.objects.filter(customer=customer)
        .select_related("product", "first_order")
        .order_by("status", "-expires_at")[:limit]
    )


def subscription_get_for_customer(*, customer: Customer, pk: str | int) -> Subscription | None:
    try:
        return Subscription.objects.filter(customer=customer, pk=int(pk)).first()
    except (TypeError, ValueError):
        return None


def subscription_active(*, customer: Customer, product: Product) -> Subscription | None:
    return Subscription.objects.filter(
        customer=customer, product=product, status=Subscription.Status.ACTIVE
    ).first()


def cart_promo_prompted_at(*, customer: Customer):
    """When the bot asked this customer for a promo code (their next message is the code)."""
    return (
        Cart.objects.filter(customer=customer).values_list("promo_prompted_at", flat=True).first()
    )
