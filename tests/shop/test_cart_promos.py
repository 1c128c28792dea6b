"""Cart and promo code services: the rules, the held and counted uses, and the races."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from botbridge import services as bot_services
from botbridge.models import TelegramUpdate
from core.errors import DomainError
from payments import reports
from payments import services as payment_services
from shop import services as shop_services
from shop.models import Order, Product, PromoCode, PromoRedemption
from tests.botbridge.test_webhook import payment_update, pre_checkout_update
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def cart_order(customer, product, quantity=1, code=""):
    """A customer's cart with `quantity` of a product (and a code), checked out: the order."""
    shop_services.cart_add(customer=customer, product=product, quantity=quantity)
    if code:
        shop_services.cart_promo_apply(customer=customer, code=code)
    return shop_services.cart_checkout(customer=customer)


def test_percent_and_fixed_discounts_round_down_and_respect_products_and_currency():
    tea = ProductFactory(price=333, currency="USD")
    mug = ProductFactory(price=1000, currency="USD")
    customer = CustomerFactory()
    PromoCode.objects.create(code="P15", percent=15)
    only_mug = PromoCode.objects.create(code="MUG", kind="fixed", amount=250, currency="USD")
    only_mug.products.add(mug)
    shop_services.cart_add(customer=customer, product=tea, quantity=3)
    shop_services.cart_add(customer=customer, product=mug)
    cart = shop_services.cart_promo_apply(customer=customer, code="p15")
    view = shop_services.cart_view(cart=cart)
    assert (view.subtotal, view.discount, view.total) == (1999, 299, 1700)  # 299.85 → 299
    cart = shop_services.cart_promo_apply(customer=customer, code="MUG")
    assert shop_services.cart_view(cart=cart).discount == 250
    eur = PromoCode.objects.create(code="EUR", kind="fixed", amount=100, currency="EUR")
    with pytest.raises(DomainError) as refused:
        shop_services.cart_promo_apply(customer=customer, code=eur.code)
    assert refused.value.code == "promo_not_applicable"


def test_a_code_that_would_take_the_total_below_telegrams_minimum_is_refused():
    product = ProductFactory(price=120, currency="USD")  # Telegram's USD minimum is 1.00
    customer = CustomerFactory()
    PromoCode.objects.create(code="HALF", percent=50)
    shop_services.cart_add(customer=customer, product=product)
    with pytest.raises(DomainError) as refused:
        shop_services.cart_promo_apply(customer=customer, code="HALF")
    assert refused.value.code == "promo_too_much"


def test_quantities_are_capped_by_stock_and_a_stale_product_is_refused_at_checkout():
    product = ProductFactory(price=500, currency="USD", stock=2)
    customer = CustomerFactory()
    shop_services.cart_add(customer=customer, product=product, quantity=2)
    with pytest.raises(DomainError) as refused:
        shop_services.cart_add(customer=customer, product=product)
    assert refused.value.code == "out_of_stock"
    Product.objects.filter(pk=product.pk).update(is_active=False)
    with pytest.raises(DomainError) as refused:
        shop_services.cart_checkout(customer=customer)
    assert refused.value.code == "cart_stale"
    assert not Order.objects.exists()
    shop_services.cart_refresh(customer=customer)
    assert not shop_services.cart_get(customer=customer).lines.exists()


def test_the_cart_is_stored_across_sessions():
    product = ProductFactory(price=500, currency="USD")
    customer = CustomerFactory()
    shop_services.cart_add(customer=customer, product=product, quantity=2)
    again = shop_services.cart_get(customer=type(customer).objects.get(pk=customer.pk))
    assert list(again.lines.values_list("quantity", flat=True)) == [2]


def test_expiry_and_cancel_give_the_held_use_and_the_stock_back(fake_telegram, settings):
    product = ProductFactory(price=1000, currency="USD", stock=5)
    promo = PromoCode.objects.create(code="ONE", percent=10, max_uses=1)
    first = cart_order(CustomerFactory(), product, quantity=3, code="ONE")
    assert bot_services.update_receive(payload=pre_checkout_update(1, first, query_id="a"))["ok"]
    promo.refresh_from_db()
    product.refresh_from_db()
    assert (promo.uses_held, product.stock) == (1, 2)
    shop_services.order_expire_stale(older_than=timedelta(0), now=timezone.now() + timedelta(1))
    promo.refresh_from_db()
    product.refresh_from_db()
    assert (promo.uses_held, promo.times_used, product.stock) == (0, 0, 5)
    assert PromoRedemption.objects.get(order=first).status == "released"

    second = cart_order(CustomerFactory(), product, quantity=1, code="ONE")
    assert bot_services.update_receive(payload=pre_checkout_update(2, second, query_id="b"))["ok"]
    shop_services.order_cancel(order=second)
    promo.refresh_from_db()
    assert promo.uses_held == 0


def test_a_refund_with_restock_puts_the_units_back_once(
    fake_telegram, django_capture_on_commit_callbacks
):
    product = ProductFactory(price=1000, currency="EUR", kind="physical", stock=5)
    customer = CustomerFactory()
    order = cart_order(customer, product, quantity=2)
    bot_services.update_receive(payload=pre_checkout_update(3, order, query_id="c"))
    with django_capture_on_commit_callbacks(execute=True):
        bot_services.update_receive(payload=payment_update(4, order, charge="restock-1"))
    product.refresh_from_db()
    assert product.stock == 3
    payment = order.payments.get()
    refund = payment_services.refund_create(
        payment=payment, amount=500, reason="defective", restock=True
    )
    payment_services.refund_complete(refund=refund, external_reference="R1")
    second = payment_services.refund_create(
        payment=payment, amount=500, reason="defective", restock=True
    )
    payment_services.refund_complete(refund=second, external_reference="R2")
    product.refresh_from_db()
    assert product.stock == 5
    order.refresh_from_db()
    assert order.restocked_at is not None
    assert order.events.filter(message="Back in stock: 2 × " + product.sku).count() == 1


def test_a_refund_without_restock_leaves_stock_alone(
    fake_telegram, django_capture_on_commit_callbacks
):
    product = ProductFactory(price=1000, currency="EUR", kind="physical", stock=5)
    order = cart_order(CustomerFactory(), product, quantity=2)
    bot_services.update_receive(payload=pre_checkout_update(5, order, query_id="d"))
    with django_capture_on_commit_callbacks(execute=True):
        bot_services.update_receive(payload=payment_update(6, order, charge="restock-2"))
    refund = payment_services.refund_create(
        payment=order.payments.get(), amount=2000, reason="other"
    )
    payment_services.refund_complete(refund=refund, external_reference="R3")
    product.refresh_from_db()
    assert product.stock == 3


def test_the_promo_codes_report_counts_paid_uses_and_discount(
    fake_telegram, django_capture_on_commit_callbacks
):
    product = ProductFactory(price=2000, currency="USD")
    PromoCode.objects.create(code="TEN", percent=10)
    for n in range(2):
        order = cart_order(CustomerFactory(), product, code="TEN")
        bot_services.update_receive(payload=pre_checkout_update(10 + n, order, query_id=f"r{n}"))
        with django_capture_on_commit_callbacks(execute=True):
            bot_services.update_receive(payload=payment_update(20 + n, order, charge=f"rep-{n}"))
    cart_order(CustomerFactory(), product, code="TEN")  # not paid: not a use
    today = timezone.localdate()
    rows = list(reports.report_rows("promo_codes", reports.Filters(since=today, until=today)))
    assert rows == [["TEN", "USD", 2, 400, "4.00", 3600, "36.00"]]
    orders = list(reports.report_rows("orders", reports.Filters(since=today, until=today)))
    header = reports.report_get("orders").header
    promo_col = header.index("promo_code")
    assert sorted(row[promo_col] for row in orders) == ["TEN", "TEN", "TEN"]


# --- races on PostgreSQL: parallel pre-checkouts --------------------------------------------


def _parallel_pre_checkouts(orders):
    """Telegram asks the pre-checkout question for each order at the same moment."""
    barrier = threading.Barrier(len(orders))
    answers, errors = {}, []

    def ask(n, order):
        try:
            barrier.wait()
            update = pre_checkout_update(900 + n, order, query_id=f"race-{n}")
            answers[order.pk] = bot_services.update_receive(payload=update)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=ask, args=(n, o)) for n, o in enumerate(orders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return answers


@pytest.mark.django_db(transaction=True)
def test_parallel_checkouts_of_the_last_allowed_use_hold_it_once(fake_telegram):
    product = ProductFactory(price=1000, currency="USD")
    promo = PromoCode.objects.create(code="LAST", percent=10, max_uses=3)
    PromoCode.objects.filter(pk=promo.pk).update(uses_held=2)  # two uses already taken
    orders = [cart_order(CustomerFactory(), product, code="LAST") for _ in range(6)]

    answers = _parallel_pre_checkouts(orders)

    accepted = [pk for pk, answer in answers.items() if answer["ok"]]
    assert len(accepted) == 1
    refused = [a for a in answers.values() if not a["ok"]]
    assert {a["error_message"] for a in refused} == {"This promo code has been used up."}
    promo.refresh_from_db()
    assert promo.uses_held == 3
    assert PromoRedemption.objects.filter(status="held").count() == 1
    # Only the accepted checkout pays; a redelivered payment counts nothing more.
    winner = Order.objects.get(pk=accepted[0])
    bot_services.update_receive(payload=payment_update(950, winner, charge="last-1"))
    bot_services.update_receive(payload=payment_update(950, winner, charge="last-1"))
    bot_services.update_receive(payload=payment_update(951, winner, charge="last-1"))
    promo.refresh_from_db()
    assert (promo.times_used, promo.uses_held) == (1, 3)
    assert TelegramUpdate.objects.filter(update_id__in=[950, 951]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_parallel_checkouts_of_the_last_use_per_customer_hold_it_once(fake_telegram):
    product = ProductFactory(price=1000, currency="USD")
    PromoCode.objects.create(code="MINE", percent=10, max_uses_per_customer=1)
    customer = CustomerFactory()
    orders = [cart_order(customer, product, code="MINE") for _ in range(4)]

    answers = _parallel_pre_checkouts(orders)

    assert sum(answer["ok"] for answer in answers.values()) == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_checkouts_of_the_last_units_reserve_them_once(fake_telegram):
    product = ProductFactory(price=1000, currency="EUR", kind="physical", stock=5)
    orders = [cart_order(CustomerFactory(), product, quantity=2) for _ in range(5)]

    answers = _parallel_pre_checkouts(orders)

    assert sum(answer["ok"] for answer in answers.values()) == 2  # 2 + 2 of 5; 1 left over
    product.refresh_from_db()
    assert product.stock == 1


def test_pre_checkout_reads_sqlites_zoneless_times_as_utc():
    """SQLite (the embedded default) returns raw rows' times without a zone."""
    from datetime import UTC

    from shop.services import CheckoutLine

    order = cart_order(CustomerFactory(telegram_id=515151), ProductFactory(price=500))
    created = order.created_at.astimezone(UTC).replace(tzinfo=None)
    line = CheckoutLine(
        order.pk, order.status, order.currency, order.total_amount, False, None, 515151, False,
        True, order.items.get().product_id, 1, None, created, 500, 500, None, order.customer_id, 0,
    )  # fmt: skip
    refusal = shop_services.order_checkout(
        lines=[line], telegram_id=515151, currency=order.currency, total_amount=order.total_amount
    )
    assert refusal is None
    stale = line._replace(created_at=created - timedelta(days=2))
    assert (
        shop_services.order_checkout(
            lines=[stale], telegram_id=515151, currency=order.currency, total_amount=500
        )
        == "expired"
    )


def _promo_form(**values):
    base = {"code": "", "is_active": "on", "kind": "percent", "percent": "", "amount": "",
            "currency": "", "max_uses": "", "max_uses_per_customer": "",
            "redemptions-TOTAL_FORMS": "0", "redemptions-INITIAL_FORMS": "0"}  # fmt: skip
    return {**base, **values}


def test_staff_add_codes_with_amounts_in_major_units_and_bad_input_changes_nothing(admin_client):
    url = "/admin/shop/promocode/add/"
    response = admin_client.post(
        url, _promo_form(code="spring 5", kind="fixed", amount="5.00", currency="USD")
    )
    assert response.status_code == 302, response.content[:2000]
    promo = PromoCode.objects.get()
    assert (promo.code, promo.kind, promo.amount, promo.currency) == (
        "SPRING5",
        "fixed",
        500,
        "USD",
    )
    assert promo.percent is None
    for bad, field in (
        (_promo_form(code="X1", kind="fixed", amount="5.555", currency="USD"), "amount"),
        (_promo_form(code="X2", kind="fixed", amount="", currency="USD"), "amount"),
        (_promo_form(code="X3", kind="percent", percent="0"), "percent"),
        (_promo_form(code="X4", kind="percent", percent="150"), "percent"),
        (_promo_form(code="X-5", kind="percent", percent="10"), "code"),
        (_promo_form(code="spring5", kind="percent", percent="10"), "code"),  # taken
    ):
        response = admin_client.post(url, bad)
        assert response.status_code == 200
        assert field in response.context["adminform"].form.errors, (bad, field)
    assert PromoCode.objects.count() == 1


def test_the_cart_refuses_bad_additions_and_changes_nothing():
    product = ProductFactory(price=500, currency="USD")
    subscription = ProductFactory(kind="subscription", price=100, currency="XTR")
    customer = CustomerFactory()
    for kwargs, code in (
        ({"product": product, "quantity": 0}, "bad_quantity"),
        ({"product": product, "quantity": 100}, "bad_quantity"),
        ({"product": product, "option": "XL"}, "bad_option"),
        ({"product": subscription}, "not_in_cart"),
    ):
        with pytest.raises(DomainError) as refused:
            shop_services.cart_add(customer=customer, **kwargs)
        assert refused.value.code == code
    customer.is_blocked = True
    customer.save()
    with pytest.raises(DomainError) as refused:
        shop_services.cart_add(customer=customer, product=product)
    assert refused.value.code == "customer_blocked"
    assert not shop_services.cart_get(customer=customer).lines.exists()
