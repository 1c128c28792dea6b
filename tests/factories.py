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
