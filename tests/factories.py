import factory
from django.contrib.auth import get_user_model

from shop.models import Customer, Product


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "secret-pass-123")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    telegram_id = factory.Sequence(lambda n: 5_000_000_000 + n)
    username = factory.Sequence(lambda n: f"buyer{n}")
    first_name = "Buyer"
    language_code = "en"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"sku-{n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    description = "A fine product."
    kind = Product.Kind.TOPUP
    price = 500
    currency = "USD"


def paid_order(customer: Customer, product: Product, *, charge: str | None = None):
    """An order for one product, invoiced and paid the way the bot records a successful_payment
    (its credit task is published on commit). Returns the Payment; its order is `.order`."""
    from payments import services as payment_services
    from shop import services as shop_services
    from shop.models import Order

    order = shop_services.order_create(customer=customer, product=product)
    shop_services.order_transition(order=order, to_status=Order.Status.INVOICED)
    stars = product.currency == "XTR"
    payment, _ = payment_services.payment_record(
        customer=customer,
        order=order,
        telegram_payment_charge_id=charge or f"{'stars' if stars else 'tg'}-{order.pk}",
        provider_payment_charge_id="" if stars else f"apay-{order.pk}",
        amount=product.price,
        currency=product.currency,
        raw={},
    )
    return payment
