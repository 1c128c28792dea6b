"""End to end through the local Telegram: a cart with quantities and a promo code, one invoice;
a Stars subscription bought by invoice link, renewed, cancelled and expired."""

from datetime import timedelta

import pytest
from django.utils import timezone

from botbridge.sandbox.server import validate
from payments.models import LedgerEntry, Payment
from shop import services as shop_services
from shop.models import (
    Cart,
    Customer,
    DigitalItem,
    Order,
    Product,
    PromoCode,
    PromoRedemption,
    Subscription,
    SubscriptionEvent,
)
from tests.botbridge.test_purchase_flow import ALEX, MASHA, bot_messages, last_bot_message
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def press(fake, user, data_prefix):
    """Press the newest callback button whose data starts with `data_prefix`."""
    for message in reversed(bot_messages(fake, user["id"])):
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if button.get("callback_data", "").startswith(data_prefix):
                    return fake.user_press(user, message["message_id"], button["callback_data"])
    raise AssertionError(f"no button {data_prefix!r}")


def link_button(fake, user):
    for message in reversed(bot_messages(fake, user["id"])):
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if button.get("url"):
                    return message, button
    raise AssertionError("no link button")


def sent(fake, method):
    """The last call of `method`, its parameters as the Bot API reads them."""
    return validate(method, fake.calls(method)[-1]["params"])


def texts(fake, user):
    return [m.get("text", "") for m in bot_messages(fake, user["id"])]


@pytest.fixture
def shelf(db):
    products = {
        "tea": ProductFactory(sku="tea", title="Tea", kind="digital", price=400, currency="USD"),
        "mug": ProductFactory(
            sku="mug", title="Mug", kind="physical", price=1500, currency="USD", stock=3
        ),
        "vip": ProductFactory(sku="vip", title="VIP", kind="digital", price=250, currency="XTR"),
        "club": ProductFactory(
            sku="club", title="Club", kind="subscription", price=150, currency="XTR"
        ),
    }
    for product in (products["tea"], products["vip"]):
        for n in range(5):
            DigitalItem.objects.create(product=product, content=f"{product.sku}-{n}")
    return products


def accept_terms(fake, user):
    fake.user_message(user, "/terms")
    press(fake, user, "terms:")


def test_a_cart_with_quantities_and_a_promo_code_is_one_invoice_and_one_payment(
    webhook, fake_telegram, shelf, settings
):
    settings.SHOP_DELIVERY_FEES = "USD:4.90"
    PromoCode.objects.create(code="DEMO10", percent=10)
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start tea")
    press(fake_telegram, ALEX, "add:tea")
    cart = Cart.objects.get(customer__telegram_id=ALEX["id"])
    press(fake_telegram, ALEX, "cq:")  # each line's first button is "−": at one, the line goes
    assert cart.lines.count() == 0
    fake_telegram.user_message(ALEX, "/start tea")
    press(fake_telegram, ALEX, "add:tea")
    line = cart.lines.get()
    press(fake_telegram, ALEX, f"cq:{line.pk}:+")
    press(fake_telegram, ALEX, f"cq:{line.pk}:+")
    # − and + change the cart message in place; the emptied one says so.
    said = texts(fake_telegram, ALEX)
    assert sum(t.startswith("Your cart:") for t in said) == 1
    assert "Tea × 3 — 12.00 USD" in said[-1]
    assert "Your cart is empty" in said[-3]
    assert fake_telegram.calls("editMessageText")
    fake_telegram.user_message(ALEX, "/start mug")
    press(fake_telegram, ALEX, "add:mug")
    assert sorted(cart.lines.values_list("product__sku", "quantity")) == [("mug", 1), ("tea", 3)]
    view = last_bot_message(fake_telegram, ALEX["id"])["text"]
    assert "Tea × 3 — 12.00 USD" in view and "Mug × 1 — 15.00 USD" in view
    assert "Subtotal: 27.00 USD" in view and "Delivery: 4.90 USD" in view

    fake_telegram.user_message(ALEX, "/promo demo10")
    view = last_bot_message(fake_telegram, ALEX["id"])["text"]
    assert "Promo code DEMO10: −2.70 USD" in view
    assert "Total: 29.20 USD" in view

    press(fake_telegram, ALEX, "checkout:")
    invoice = last_bot_message(fake_telegram, ALEX["id"])
    assert invoice["invoice"]["total_amount"] == 2920
    order = Order.objects.get(customer__telegram_id=ALEX["id"])
    assert (order.total_amount, order.discount_amount, order.delivery_amount) == (2920, 270, 490)
    assert order.promo_code.code == "DEMO10"
    prices = sent(fake_telegram, "sendInvoice")["prices"]
    assert [p["label"] for p in prices] == ["Tea × 3", "Mug", "Promo code DEMO10", "Delivery"]
    assert [p["amount"] for p in prices] == [1200, 1500, -270, 490]
    assert cart.lines.count() == 0  # the cart became the order
    note = f"Your cart became order {order.reference} (29.20 USD)"
    assert any(t.startswith(note) for t in texts(fake_telegram, ALEX))

    result = fake_telegram.user_pay(ALEX, invoice["message_id"])
    assert result["paid"], result
    promo = PromoCode.objects.get(code="DEMO10")
    assert (promo.times_used, promo.uses_held) == (1, 1)
    payment = Payment.objects.get()
    assert (payment.promo_code, payment.discount_amount) == ("DEMO10", 270)
    entries = dict(
        LedgerEntry.objects.filter(kind__in=["credit", "discount"]).values_list("kind", "amount")
    )
    assert entries == {"credit": 2920, "discount": 270}
    # Balance: the credit spent on the lines and delivery, the code giving back its part.
    assert sum(LedgerEntry.objects.values_list("amount", flat=True)) == 0
    assert Product.objects.get(sku="mug").stock == 2  # reserved per quantity
    # Redelivered payment: the use is not counted again.
    update = result["payment"]["update"]
    fake_telegram.deliver(update)
    promo.refresh_from_db()
    assert promo.times_used == 1
    assert PromoRedemption.objects.get().status == "used"


def test_a_product_in_another_currency_offers_a_new_cart(
    webhook, fake_telegram, shelf, admin_client
):
    fake_telegram.user_message(MASHA, "/start tea")
    press(fake_telegram, MASHA, "add:tea")
    fake_telegram.user_message(MASHA, "/start vip")
    press(fake_telegram, MASHA, "add:vip")
    said = last_bot_message(fake_telegram, MASHA["id"])["text"]
    assert "USD" in said and "XTR" in said and "одна валюта" in said
    cart = Cart.objects.get(customer__telegram_id=MASHA["id"])
    assert list(cart.lines.values_list("product__sku", flat=True)) == ["tea"]
    customer = Customer.objects.get(telegram_id=MASHA["id"])
    page = admin_client.get(f"/admin/shop/customer/{customer.pk}/change/").content.decode()
    assert "1 × Tea: 4.00 USD" in page  # staff see the cart
    press(fake_telegram, MASHA, "cartnew:vip")
    cart.refresh_from_db()
    assert cart.currency == "XTR"
    assert list(cart.lines.values_list("product__sku", flat=True)) == ["vip"]


def test_a_stale_cart_is_refused_at_checkout_and_can_be_updated(webhook, fake_telegram, shelf):
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start tea")
    press(fake_telegram, ALEX, "add:tea")
    Product.objects.filter(sku="tea").update(price=500)
    press(fake_telegram, ALEX, "cart:")
    view = last_bot_message(fake_telegram, ALEX["id"])["text"]
    assert "the price is now 5.00 USD" in view
    # The stale cart offers an update instead of a checkout; an old checkout button is refused.
    fake_telegram.user_message(ALEX, "/cart")
    assert not any(
        b.get("callback_data") == "checkout:"
        for row in last_bot_message(fake_telegram, ALEX["id"])["reply_markup"]["inline_keyboard"]
        for b in row
    )
    customer = Customer.objects.get(telegram_id=ALEX["id"])
    with pytest.raises(Exception) as refused:
        shop_services.cart_checkout(customer=customer)
    assert refused.value.code == "cart_stale"
    assert not Order.objects.exists()
    press(fake_telegram, ALEX, "cartfix:")
    press(fake_telegram, ALEX, "checkout:")
    assert last_bot_message(fake_telegram, ALEX["id"])["invoice"]["total_amount"] == 500


def test_an_empty_cart_cannot_be_checked_out(webhook, fake_telegram, shelf):
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/cart")
    assert "cart is empty" in last_bot_message(fake_telegram, ALEX["id"])["text"]
    customer = Customer.objects.get(telegram_id=ALEX["id"])
    with pytest.raises(Exception) as refused:
        shop_services.cart_checkout(customer=customer)
    assert refused.value.code == "cart_empty"


def test_a_stars_cart_has_one_price_line_with_the_items_and_discount_in_the_description(
    webhook, fake_telegram, shelf
):
    PromoCode.objects.create(code="STAR20", percent=20)
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start vip")
    press(fake_telegram, ALEX, "add:vip")
    press(fake_telegram, ALEX, "cq:")  # "−" first: back to empty
    fake_telegram.user_message(ALEX, "/start vip")
    press(fake_telegram, ALEX, "add:vip")
    line = Cart.objects.get(customer__telegram_id=ALEX["id"]).lines.get()
    press(fake_telegram, ALEX, f"cq:{line.pk}:+")
    fake_telegram.user_message(ALEX, "/promo STAR20")
    press(fake_telegram, ALEX, "checkout:")
    params = sent(fake_telegram, "sendInvoice")
    assert len(params["prices"]) == 1 and params["prices"][0]["amount"] == 400  # 500 − 20%
    assert "VIP × 2" in params["description"] and "STAR20" in params["description"]


def test_promo_refusals_in_the_customers_language(webhook, fake_telegram, shelf):
    now = timezone.now()
    PromoCode.objects.create(code="OLD", percent=10, valid_until=now - timedelta(days=1))
    PromoCode.objects.create(code="MUGONLY", percent=10).products.add(shelf["mug"])
    PromoCode.objects.create(code="EUR5", kind="fixed", amount=500, currency="EUR")
    fake_telegram.user_message(MASHA, "/start tea")
    press(fake_telegram, MASHA, "add:tea")
    for code, expected in (
        ("NOPE", "Такого промокода нет"),
        ("OLD", "истёк"),
        ("MUGONLY", "не действует на товары"),
        ("EUR5", "не действует на товары"),
    ):
        fake_telegram.user_message(MASHA, f"/promo {code}")
        assert expected in last_bot_message(fake_telegram, MASHA["id"])["text"], code
    assert Cart.objects.get(customer__telegram_id=MASHA["id"]).promo_code is None
    # The button asks, and the next message is the code.
    press(fake_telegram, MASHA, "promo:")
    fake_telegram.user_message(MASHA, "mugonly")
    assert "не действует" in last_bot_message(fake_telegram, MASHA["id"])["text"]
    # Asked for a support question since: the next message is the question, not a code.
    fake_telegram.user_message(MASHA, "/support")
    fake_telegram.user_message(MASHA, "Где мой заказ?")
    assert "обращение №" in last_bot_message(fake_telegram, MASHA["id"])["text"]


def test_pre_checkout_rechecks_the_code_and_the_prices(webhook, fake_telegram, shelf):
    promo = PromoCode.objects.create(code="ONCE", percent=10, max_uses_per_customer=1)
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start tea")
    press(fake_telegram, ALEX, "add:tea")
    fake_telegram.user_message(ALEX, "/promo ONCE")
    press(fake_telegram, ALEX, "checkout:")
    invoice = last_bot_message(fake_telegram, ALEX["id"])
    # Staff switch the code off between the invoice and the payment.
    PromoCode.objects.filter(pk=promo.pk).update(is_active=False)
    result = fake_telegram.user_pay(ALEX, invoice["message_id"])
    assert result["pre_checkout"]["ok"] is False
    assert "not active" in result["pre_checkout"]["error_message"]
    PromoCode.objects.filter(pk=promo.pk).update(is_active=True)
    promo.products.add(shelf["mug"])  # narrowed to the mug since the invoice
    result = fake_telegram.user_pay(ALEX, invoice["message_id"])
    assert "does not apply to the products" in result["pre_checkout"]["error_message"]
    promo.products.clear()
    Product.objects.filter(sku="tea").update(price=450)
    result = fake_telegram.user_pay(ALEX, invoice["message_id"])
    assert "price in this order changed" in result["pre_checkout"]["error_message"]
    Product.objects.filter(sku="tea").update(price=400)
    assert fake_telegram.user_pay(ALEX, invoice["message_id"])["paid"]
    promo.refresh_from_db()
    assert (promo.times_used, promo.uses_held) == (1, 1)


def test_a_stars_subscription_is_bought_by_link_renewed_cancelled_and_expires(
    webhook, fake_telegram, shelf, django_capture_on_commit_callbacks
):
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start club")
    assert not any(  # a subscription has no "add to cart"
        b.get("callback_data", "").startswith("add:")
        for row in last_bot_message(fake_telegram, ALEX["id"])["reply_markup"]["inline_keyboard"]
        for b in row
    )
    press(fake_telegram, ALEX, "buy:club")
    created = sent(fake_telegram, "createInvoiceLink")
    assert created["subscription_period"] == 2592000 and created["currency"] == "XTR"
    message, button = link_button(fake_telegram, ALEX)
    assert button["url"].startswith("https://t.me/$")
    assert "150 XTR" in button["text"]

    paid = fake_telegram.user_pay_link(ALEX, button["url"])
    assert paid["paid"], paid
    subscription = Subscription.objects.get()
    assert subscription.status == "active" and subscription.renewals == 0
    first_expiry = subscription.expires_at
    assert first_expiry > timezone.now() + timedelta(days=29)
    first = Payment.objects.get()
    assert first.order.status == Order.Status.FULFILLED and not first.is_recurring

    renewed = fake_telegram.subscriptions_renew(ALEX)
    assert len(renewed["renewed"]) == 1
    subscription.refresh_from_db()
    assert subscription.renewals == 1
    assert subscription.expires_at - first_expiry == timedelta(days=30)
    renewal = Payment.objects.exclude(pk=first.pk).get()
    assert renewal.is_recurring and renewal.amount == 150
    assert renewal.order != first.order and renewal.order.subscription == subscription
    assert renewal.order.status == Order.Status.FULFILLED
    until = timezone.localtime(subscription.expires_at).strftime("%Y-%m-%d")
    assert f"Your subscription runs until {until}." in texts(fake_telegram, ALEX)[-1]
    assert LedgerEntry.objects.filter(kind="credit").count() == 2
    # The renewal redelivered: still one renewal.
    fake_telegram.deliver(renewed["renewed"][0]["update"])
    assert Payment.objects.count() == 2
    subscription.refresh_from_db()
    assert subscription.renewals == 1

    fake_telegram.user_message(ALEX, "/subscriptions")
    listing = last_bot_message(fake_telegram, ALEX["id"])["text"]
    assert "Club — 150 XTR / 30 days, renews on" in listing
    press(fake_telegram, ALEX, f"sub:{subscription.pk}:off")
    edit = sent(fake_telegram, "editUserStarSubscription")
    assert edit["is_canceled"] is True
    assert edit["telegram_payment_charge_id"] == first.telegram_payment_charge_id
    subscription.refresh_from_db()
    assert subscription.is_canceled
    event = subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).get()
    assert event.source == "customer"
    # Telegram no longer renews it.
    assert fake_telegram.subscriptions_renew(ALEX)["skipped"] == [first.telegram_payment_charge_id]
    assert Payment.objects.count() == 2

    # Past its date the beat ends it and tells the customer once.
    later = subscription.expires_at + timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert shop_services.subscriptions_expire(now=later) == 1
        assert shop_services.subscriptions_expire(now=later) == 0
    subscription.refresh_from_db()
    assert subscription.status == "expired"
    assert sum("has ended" in t for t in texts(fake_telegram, ALEX)) == 1


def test_staff_cancel_and_reenable_a_subscription_through_telegram(
    webhook, fake_telegram, shelf, admin_client, django_capture_on_commit_callbacks
):
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start club")
    press(fake_telegram, ALEX, "buy:club")
    _, button = link_button(fake_telegram, ALEX)
    fake_telegram.user_pay_link(ALEX, button["url"])
    subscription = Subscription.objects.get()
    url = f"/admin/shop/subscription/{subscription.pk}/"
    page = admin_client.get(url + "change/")
    assert b"Cancel renewal" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url + "cancel/", {"note": "asked by phone"})
    subscription.refresh_from_db()
    assert subscription.is_canceled
    assert sent(fake_telegram, "editUserStarSubscription")["is_canceled"] is True
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url + "reenable/", {"note": ""})
    subscription.refresh_from_db()
    assert not subscription.is_canceled
    assert sent(fake_telegram, "editUserStarSubscription")["is_canceled"] is False
    events = list(subscription.events.values_list("kind", "actor__username"))
    assert ("cancelled", "admin") in events and ("reenabled", "admin") in events
    assert (
        fake_telegram.state.subscriptions[subscription.telegram_payment_charge_id]["canceled"]
        is False
    )


def test_a_subscription_product_must_be_stars_and_at_most_10000(db):
    from django.core.exceptions import ValidationError

    product = Product(sku="s", title="S", description="d", kind="subscription", price=10001,
                      currency="XTR")  # fmt: skip
    with pytest.raises(ValidationError, match="at most 10000"):
        product.clean()
    product.price, product.currency = 500, "USD"
    with pytest.raises(ValidationError, match="Stars"):
        product.clean()


def test_the_subscriptions_report_counts_the_month(webhook, fake_telegram, shelf):
    from payments import reports

    for user in (ALEX, MASHA):
        accept_terms(fake_telegram, user)
        fake_telegram.user_message(user, "/start club")
        press(fake_telegram, user, "buy:club")
        _, button = link_button(fake_telegram, user)
        fake_telegram.user_pay_link(user, button["url"])
    fake_telegram.subscriptions_renew(ALEX)
    fake_telegram.user_message(MASHA, "/subscriptions")
    press(fake_telegram, MASHA, "sub:")
    today = timezone.localdate()
    rows = list(reports.report_rows("subscriptions", reports.Filters(since=today, until=today)))
    header = reports.report_get("subscriptions").header
    assert [dict(zip(header, row, strict=True)) for row in rows] == [
        {
            "month": today.strftime("%Y-%m"), "sku": "club", "currency": "XTR",
            "active_at_end": 2, "started": 2, "renewed": 1, "cancelled": 1, "reenabled": 0,
            "expired": 0, "revenue_minor": 450, "revenue": "450",
        }
    ]  # fmt: skip
    csv_text = "".join(
        reports.report_csv("subscriptions", reports.Filters(since=today, until=today))
    )
    assert csv_text.splitlines()[0].startswith("month,sku,currency,active_at_end")


def test_a_mixed_cart_credits_the_balance_with_its_top_up_lines_only(webhook, fake_telegram, shelf):
    ProductFactory(sku="coins", title="Coins", kind="topup", price=500, currency="USD")
    PromoCode.objects.create(code="TEN", percent=10)
    accept_terms(fake_telegram, ALEX)
    for sku in ("coins", "tea"):
        fake_telegram.user_message(ALEX, f"/start {sku}")
        press(fake_telegram, ALEX, f"add:{sku}")
    fake_telegram.user_message(ALEX, "/promo TEN")
    press(fake_telegram, ALEX, "checkout:")
    assert fake_telegram.user_pay(ALEX, last_bot_message(fake_telegram, ALEX["id"])["message_id"])[
        "paid"
    ]
    receipt = texts(fake_telegram, ALEX)[-1]
    assert "Total paid: 8.10 USD" in receipt
    assert "Your balance was credited with 5.00 USD." in receipt
    customer = Customer.objects.get(telegram_id=ALEX["id"])
    balance = sum(LedgerEntry.objects.filter(customer=customer).values_list("amount", flat=True))
    assert balance == 500


def test_the_dashboard_counts_active_subscriptions(webhook, fake_telegram, shelf, admin_client):
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start club")
    press(fake_telegram, ALEX, "buy:club")
    _, button = link_button(fake_telegram, ALEX)
    fake_telegram.user_pay_link(ALEX, button["url"])
    tiles = admin_client.get("/admin/").context["tiles"]
    tile = next(t for t in tiles if t.label == "Active subscriptions")
    assert (tile.value, tile.url) == ("1", "shop/subscription/?status__exact=active")


def test_the_reminder_for_a_cart_order_brings_a_fresh_invoice_with_its_lines_and_code(
    webhook, fake_telegram, shelf, django_capture_on_commit_callbacks, settings
):
    settings.SHOP_QUIET_HOURS = (0, 0)  # no quiet hours: this test runs at any hour
    PromoCode.objects.create(code="TEN", percent=10)
    accept_terms(fake_telegram, ALEX)
    fake_telegram.user_message(ALEX, "/start tea")
    press(fake_telegram, ALEX, "add:tea")
    press(fake_telegram, ALEX, "cq:")
    fake_telegram.user_message(ALEX, "/start tea")
    press(fake_telegram, ALEX, "add:tea")
    line = Cart.objects.get(customer__telegram_id=ALEX["id"]).lines.get()
    press(fake_telegram, ALEX, f"cq:{line.pk}:+")
    fake_telegram.user_message(ALEX, "/promo TEN")
    press(fake_telegram, ALEX, "checkout:")
    order = Order.objects.get()
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(created_at=now - timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=True):
        assert shop_services.invoices_remind(now=now) == 1
    params = sent(fake_telegram, "sendInvoice")
    assert [(p["label"], p["amount"]) for p in params["prices"]] == [
        ("Tea × 2", 800),
        ("Promo code TEN", -80),
    ]
    invoices = [m for m in bot_messages(fake_telegram, ALEX["id"]) if "invoice" in m]
    assert len(invoices) == 1  # the first one was taken back
    assert fake_telegram.user_pay(ALEX, invoices[0]["message_id"])["paid"]
    assert PromoCode.objects.get(code="TEN").times_used == 1
