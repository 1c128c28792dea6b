import os
import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from tqdm import tqdm

from backoffice.roles import ROLES
from payments import services as payment_services
from payments.models import LedgerEntry, Payment
from shop import outbox
from shop import services as shop_services
from shop.models import (
    Customer,
    DigitalItem,
    Message,
    Order,
    OrderEvent,
    OrderItem,
    Product,
    PromoCode,
)

CATALOG = [
    # sku, title, description, kind, price (minor units), currency, stock, photo
    (
        "coins-500",
        "500 coins",
        "500 in-game coins, credited to your balance at once.",
        "topup",
        500,
        "USD",
        None,
    ),
    (
        "coins-2500",
        "2500 coins",
        "2500 in-game coins with a 20% bonus, credited at once.",
        "topup",
        2000,
        "EUR",
        None,
    ),
    (
        "stars-credit-100",
        "100 credits for Stars",
        "100 credits paid with Telegram Stars.",
        "topup",
        100,
        "XTR",
        None,
    ),
    (
        "ebook-django",
        "Django payments e-book",
        "PDF e-book: taking payments in Telegram bots, 120 pages. Download link sent after payment.",
        "digital",
        1250,
        "USD",
        None,
    ),
    (
        "vip-month",
        "VIP pass, 30 days",
        "A personal activation code for 30 days of VIP access.",
        "digital",
        250,
        "XTR",
        None,
    ),
    (
        "club-monthly",
        "Members' club",
        "Members' club: weekly guides and early access. 30 days, renewed each month in Stars.",
        "subscription",
        150,
        "XTR",
        None,
    ),
    (
        "mug-classic",
        "Shopbot mug",
        "Ceramic mug, 330 ml, dishwasher safe. Shipped within 3 days.",
        "physical",
        1800,
        "EUR",
        25,
    ),
    (
        "tshirt-black",
        "Black T-shirt",
        "Cotton T-shirt, black, sizes S–XL.",
        "physical",
        149000,
        "RUB",
        10,
    ),
]
# Russian titles and descriptions, and the T-shirt's sizes (asked before the invoice).
RUSSIAN = {
    "coins-500": ("500 монет", "500 игровых монет, зачисляются на баланс сразу."),
    "coins-2500": ("2500 монет", "2500 игровых монет с бонусом 20%, зачисляются сразу."),
    "stars-credit-100": ("100 кредитов за звёзды", "100 кредитов, оплата звёздами Telegram."),
    "ebook-django": ("Книга о платежах в Django", "PDF, 120 страниц: платежи в ботах Telegram."),
    "vip-month": ("VIP на 30 дней", "Личный код активации VIP-доступа на 30 дней."),
    "club-monthly": (
        "Клуб участников",
        "Клуб: еженедельные гайды и ранний доступ. 30 дней, продлевается каждый месяц за звёзды.",
    ),
    "mug-classic": ("Кружка Shopbot", "Керамическая кружка, 330 мл. Отправка в течение 3 дней."),
    "tshirt-black": ("Чёрная футболка", "Хлопковая футболка, чёрная, размеры S–XL."),
}
SIZES = ["S", "M", "L", "XL"]
DEMO_CUSTOMERS = [
    (900000001, "anna_demo", "Anna", "Demo", "en"),
    (900000002, "ivan_demo", "Иван", "Демо", "ru"),
    (900000003, "li_demo", "Li", "Demo", "en"),
]
BENCH_PREFIX = "B"
# B and seven digits: a random customer reference can start with B too, so match it all.
BENCH_REFERENCE = rf"^{BENCH_PREFIX}[0-9]{{7}}$"


class Command(BaseCommand):
    help = "Load the demo catalog, a staff login and a few customers with orders (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--orders", type=int, default=0, help="Also make sure N paid benchmark orders exist."
        )
        parser.add_argument(
            "--admin-username", default=os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        )
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run under production settings anyway (it creates logins with known passwords).",
        )
        parser.add_argument(
            "--admin-password", default=os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        )

    def handle(self, *args, orders, admin_username, admin_password, **options):
        if settings.IS_PRODUCTION and not options["allow_production"]:
            raise CommandError(
                "Refusing to load demo data under production settings: it creates staff logins "
                "with known passwords (admin/admin, support/support, …). Pass "
                "--allow-production if this really is a demo installation."
            )
        if orders < 0:
            raise CommandError("--orders must be zero or more.")
        products = self._catalog()
        self._promo_codes()
        self._staff(admin_username, admin_password)
        with outbox.held():
            self._customers_and_orders(products)
        # The demo customers are made up: nobody can receive their receipts and notices.
        # Their history is shown as sent, so no demo message waits in the queue forever.
        demo_chats = [c[0] for c in DEMO_CUSTOMERS]
        Message.objects.filter(
            chat_id__in=demo_chats,
            direction=Message.Direction.OUTBOUND,
            status=Message.Status.QUEUED,
        ).update(status=Message.Status.SENT, sent_at=F("created_at"))
        if orders:
            self._bench_orders(orders, products["coins-500"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {Product.objects.count()} products, {Order.objects.count()} orders."
            )
        )
        self.stdout.write(
            f"Admin login: {admin_username} / {admin_password}  →  http://127.0.0.1:8000/admin/"
            "  (roles: support/support, finance/finance, manager/manager)"
        )

    def _promo_codes(self) -> None:
        """DEMO10: 10% off any product, no limits, so the sandbox can show a discount."""
        PromoCode.objects.get_or_create(
            code="DEMO10", defaults={"kind": PromoCode.Kind.PERCENT, "percent": 10}
        )

    def _catalog(self) -> dict[str, Product]:
        products = {}
        for sku, title, description, kind, price, currency, stock in CATALOG:
            product = Product.objects.filter(sku=sku).first()
            if product is None:
                product = Product(
                    sku=sku,
                    title=title,
                    description=description,
                    kind=kind,
                    price=price,
                    currency=currency,
                    stock=stock,
                )
                product.title_ru, product.description_ru = RUSSIAN.get(sku, ("", ""))
                product.full_clean()
                product.save()
                if sku == "tshirt-black":
                    product.option_name, product.option_name_ru = "Size", "Размер"
                    product.save(update_fields=["option_name", "option_name_ru"])
                    for position, size in enumerate(SIZES):
                        product.options.create(value=size, label=size, position=position)
            products[sku] = product
        for sku, prefix in (
            ("ebook-django", "https://example.com/dl/ebook-"),
            ("vip-month", "VIP-"),
        ):
            product = products[sku]
            missing = 20 - DigitalItem.objects.filter(product=product).count()
            DigitalItem.objects.bulk_create(
                DigitalItem(product=product, content=f"{prefix}{random.randbytes(5).hex().upper()}")
                for _ in range(max(0, missing))
            )
        return products

    def _staff(self, username: str, password: str) -> None:
        User = get_user_model()
        if not User.objects.filter(username=username).exists():
            User.objects.create_superuser(
                username=username, email=f"{username}@example.com", password=password
            )
        # One demo login per role (password = the name), to see what each group sees.
        for role in ROLES:
            login = role.lower()
            user, created = User.objects.get_or_create(
                username=login, defaults={"email": f"{login}@example.com", "is_staff": True}
            )
            if created:
                user.set_password(login)
                user.save()
            user.groups.add(Group.objects.get(name=role))

    def _customers_and_orders(self, products: dict[str, Product]) -> None:
        if Order.objects.filter(customer__telegram_id__in=[c[0] for c in DEMO_CUSTOMERS]).exists():
            return
        customers = []
        for telegram_id, username, first, last, lang in DEMO_CUSTOMERS:
            customer = shop_services.customer_upsert_from_telegram(
                telegram_id=telegram_id,
                username=username,
                first_name=first,
                last_name=last,
                language_code=lang,
            )
            customers.append(
                shop_services.customer_accept_terms(customer=customer, version="2026-11-01")
            )
        anna, ivan, li = customers
        self._paid(anna, products["coins-500"])
        self._paid(anna, products["ebook-django"])
        self._paid(
            ivan,
            products["tshirt-black"],
            option="L",
            address={
                "country_code": "RU",
                "city": "Moscow",
                "street_line1": "Tverskaya 1",
                "street_line2": "",
                "state": "",
                "post_code": "125009",
            },
        )
        self._paid(li, products["vip-month"])
        refunded = self._paid(li, products["coins-2500"])
        refund = payment_services.refund_request(
            payment=refunded.payments.get(),
            amount=1000,
            reason="customer_request",
            note="Demo partial refund",
        )
        payment_services.refund_complete(refund=refund, external_reference="APAY-R-0001")
        invoiced = shop_services.order_create(customer=ivan, product=products["mug-classic"])
        shop_services.order_transition(order=invoiced, to_status=Order.Status.INVOICED)
        cancelled = shop_services.order_create(customer=anna, product=products["coins-500"])
        shop_services.order_cancel(order=cancelled, note="Customer changed their mind")
        expired = shop_services.order_create(customer=li, product=products["ebook-django"])
        shop_services.order_transition(order=expired, to_status=Order.Status.INVOICED)
        shop_services.order_transition(
            order=expired, to_status=Order.Status.EXPIRED, message="Invoice expired"
        )
        shop_services.support_request_create(customer=ivan, text="Когда придёт футболка?")

    def _paid(self, customer: Customer, product: Product, address=None, option="") -> Order:
        with transaction.atomic():
            order = shop_services.order_create(customer=customer, product=product, option=option)
            shop_services.order_transition(order=order, to_status=Order.Status.INVOICED)
            shop_services.order_reserve_stock(order=order)
            payment, _ = payment_services.payment_record(
                customer=customer,
                order=order,
                telegram_payment_charge_id=f"demo-{order.reference}",
                provider_payment_charge_id=""
                if product.currency == "XTR"
                else f"apay-demo-{order.reference}",
                amount=order.total_amount,
                currency=order.currency,
                raw={"demo": True},
                shipping_address=address,
            )
        # Credit now rather than wait for a worker; the queued task then finds nothing to do.
        payment_services.payment_credit(payment_id=payment.pk)
        order.refresh_from_db()
        return order

    def _bench_orders(self, wanted: int, product: Product) -> None:
        """N paid, credited orders for benchmarks, in bulk; re-running tops up to N."""
        existing = Order.objects.filter(reference__regex=BENCH_REFERENCE).count()
        if existing >= wanted:
            self.stdout.write(f"{existing} benchmark orders already exist.")
            return
        customers = self._bench_customers(max(1, wanted // 50))
        now = timezone.now()
        batch = 5000
        with tqdm(total=wanted, initial=existing, desc="benchmark orders", unit="order") as bar:
            for start in range(existing, wanted, batch):
                stop = min(wanted, start + batch)
                with transaction.atomic():
                    self._bench_batch(range(start, stop), customers, product, now)
                bar.update(stop - start)

    def _bench_customers(self, count: int) -> list[Customer]:
        base = 800_000_000
        Customer.objects.bulk_create(
            [
                Customer(
                    telegram_id=base + i,
                    username=f"bench{i}",
                    first_name="Bench",
                    language_code="en",
                )
                for i in range(count)
            ],
            ignore_conflicts=True,
        )
        return list(
            Customer.objects.filter(telegram_id__gte=base, telegram_id__lt=base + count).order_by(
                "telegram_id"
            )
        )

    def _bench_batch(
        self, numbers: range, customers: list[Customer], product: Product, now
    ) -> None:
        rng = random.Random(numbers.start)
        orders = []
        for n in numbers:
            paid_at = now - timedelta(seconds=rng.randrange(90 * 86400))
            orders.append(
                Order(
                    reference=f"{BENCH_PREFIX}{n:07d}",
                    customer=customers[n % len(customers)],
                    status=Order.Status.FULFILLED,
                    currency=product.currency,
                    total_amount=product.price,
                    stock_reserved=True,
                    invoiced_at=paid_at - timedelta(seconds=30),
                    paid_at=paid_at,
                    fulfilled_at=paid_at,
                )
            )
        Order.objects.bulk_create(orders)
        OrderItem.objects.bulk_create(OrderItem.snapshot(order=o, product=product) for o in orders)
        OrderEvent.objects.bulk_create(
            OrderEvent(
                order=o,
                kind=OrderEvent.Kind.STATUS,
                message="Benchmark order",
                from_status="invoiced",
                to_status="fulfilled",
            )
            for o in orders
        )
        payments = Payment.objects.bulk_create(
            Payment(
                order=o,
                customer=o.customer,
                telegram_payment_charge_id=f"bench-{o.reference}",
                provider_payment_charge_id=f"apay-bench-{o.reference}",
                provider=Payment.Provider.APAY,
                amount=o.total_amount,
                currency=o.currency,
                paid_at=o.paid_at,
                credited_at=o.paid_at,
            )
            for o in orders
        )
        LedgerEntry.objects.bulk_create(
            LedgerEntry(
                customer=p.customer,
                kind=LedgerEntry.Kind.CREDIT,
                amount=p.amount,
                currency=p.currency,
                idempotency_key=f"payment:{p.pk}:credit",
                order=p.order,
                payment=p,
                memo="Benchmark payment",
            )
            for p in payments
        )
        # Dated as a real shop's rows would be (auto_now_add stamps them all "now"): the order
        # when it was invoiced, its events and ledger entries when it was paid.
        order_ids = [o.pk for o in orders]
        Order.objects.filter(pk__in=order_ids).update(created_at=F("invoiced_at"))
        paid_at = Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("paid_at")[:1])
        OrderEvent.objects.filter(order_id__in=order_ids).update(created_at=paid_at)
        LedgerEntry.objects.filter(order_id__in=order_ids).update(created_at=paid_at)
