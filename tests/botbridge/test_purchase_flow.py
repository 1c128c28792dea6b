"""End to end: the fake Telegram plays the customer, the real webhook view handles it."""

import pytest
from django.conf import settings

from botbridge.models import TelegramUpdate
from payments.models import LedgerEntry, Payment
from shop.models import Customer, DigitalItem, Message, Order, Product
from tests.factories import ProductFactory

ALEX = {"id": 424242, "first_name": "Alex", "username": "alex", "language_code": "en"}
MASHA = {"id": 434343, "first_name": "Маша", "language_code": "ru"}

pytestmark = pytest.mark.django_db


def bot_messages(fake, chat_id):
    return [e["message"] for e in fake.chat(chat_id) if e["from"] == "bot"]


def last_bot_message(fake, chat_id):
    return bot_messages(fake, chat_id)[-1]


def press_button(fake, user, starts_with):
    """Press the newest button whose callback data starts with `starts_with`."""
    for message in reversed(bot_messages(fake, user["id"])):
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if button["callback_data"].startswith(starts_with):
                    return fake.user_press(user, message["message_id"], button["callback_data"])
    raise AssertionError(f"no button {starts_with!r}")


def buy(fake, user, sku):
    """/start with the product's deep link, Buy, accept the terms if asked: the invoice."""
    fake.user_message(user, f"/start {sku}")
    press_button(fake, user, f"buy:{sku}")
    if "invoice" not in last_bot_message(fake, user["id"]):
        press_button(fake, user, "terms:")
    invoice = last_bot_message(fake, user["id"])
    assert "invoice" in invoice, invoice
    return invoice


@pytest.fixture
def catalog(db):
    return {
        "topup": ProductFactory(
            sku="coins", title="500 coins", kind="topup", price=500, currency="USD"
        ),
        "digital": ProductFactory(
            sku="ebook", title="E-book", kind="digital", price=1250, currency="EUR"
        ),
        "physical": ProductFactory(
            sku="mug", title="Mug", kind="physical", price=1800, currency="EUR", stock=2
        ),
        "stars": ProductFactory(
            sku="vip", title="VIP pass", kind="digital", price=250, currency="XTR"
        ),
    }


@pytest.fixture
def items(catalog):
    for product in (catalog["digital"], catalog["stars"]):
        DigitalItem.objects.create(product=product, content=f"CODE-{product.sku}-1")
        DigitalItem.objects.create(product=product, content=f"CODE-{product.sku}-2")


def test_start_and_catalog_show_products_with_buy_buttons(webhook, fake_telegram, catalog):
    fake_telegram.user_message(ALEX, "/start")
    assert "Hello, Alex" in last_bot_message(fake_telegram, ALEX["id"])["text"]

    fake_telegram.user_message(ALEX, "/catalog")

    catalog_message = last_bot_message(fake_telegram, ALEX["id"])
    buttons = [
        b["callback_data"]
        for row in catalog_message["reply_markup"]["inline_keyboard"]
        for b in row
    ]
    assert buttons == [
        *("buy:coins", "add:coins"),
        *("buy:ebook", "add:ebook"),
        *("buy:mug", "add:mug"),
        *("buy:vip", "add:vip"),
    ]
    assert "500 coins — 5.00 USD" in catalog_message["text"]
    assert "VIP pass — 250 XTR" in catalog_message["text"]
    customer = Customer.objects.get(telegram_id=ALEX["id"])
    assert customer.username == "alex"
    transcript = list(Message.objects.filter(customer=customer).values_list("direction", "text"))
    assert transcript[0] == ("in", "/start")
    assert transcript[2] == ("in", "/catalog")


def test_catalog_is_paged(webhook, fake_telegram, db):
    for n in range(7):
        ProductFactory(sku=f"p{n}", title=f"Item {n}")
    fake_telegram.user_message(ALEX, "/catalog")
    first = last_bot_message(fake_telegram, ALEX["id"])
    assert "page 1 of 2" in first["text"]
    press_button(fake_telegram, ALEX, "catalog:2")
    second = last_bot_message(fake_telegram, ALEX["id"])
    assert "page 2 of 2" in second["text"]
    assert [b["callback_data"] for b in second["reply_markup"]["inline_keyboard"][-1]] == [
        "catalog:1"
    ]


def test_terms_gate_before_first_invoice_stores_acceptance(webhook, fake_telegram, catalog):
    fake_telegram.user_message(ALEX, "/start coins")
    press_button(fake_telegram, ALEX, "buy:coins")

    gate = last_bot_message(fake_telegram, ALEX["id"])
    assert "accept our terms" in gate["text"]
    assert not Order.objects.exists()
    assert fake_telegram.calls("sendInvoice") == []

    press_button(fake_telegram, ALEX, "terms:coins")

    customer = Customer.objects.get(telegram_id=ALEX["id"])
    assert customer.terms_version == settings.SHOP_TERMS_VERSION
    assert customer.terms_accepted_at is not None
    assert "invoice" in last_bot_message(fake_telegram, ALEX["id"])
    assert Order.objects.get().status == Order.Status.INVOICED


@pytest.mark.parametrize(
    ("kind", "ledger", "final_status"),
    [
        ("topup", [("credit", 500)], Order.Status.FULFILLED),
        ("digital", [("credit", 1250), ("purchase", -1250)], Order.Status.FULFILLED),
        ("physical", [("credit", 1800), ("purchase", -1800)], Order.Status.AWAITING_SHIPMENT),
        ("stars", [("credit", 250), ("purchase", -250)], Order.Status.FULFILLED),
    ],
)
def test_happy_path_for_each_kind(
    webhook, fake_telegram, catalog, items, kind, ledger, final_status
):
    product = catalog[kind]
    invoice = buy(fake_telegram, ALEX, product.sku)

    result = fake_telegram.user_pay(ALEX, invoice["message_id"])

    assert result["pre_checkout"]["ok"] is True
    assert result["paid"] is True
    order = Order.objects.get()
    assert order.status == final_status
    payment = Payment.objects.get()
    assert (payment.order, payment.amount, payment.currency) == (
        order,
        product.price,
        product.currency,
    )
    assert payment.provider == ("stars" if product.currency == "XTR" else "apay")
    assert payment.credited_at is not None
    entries = list(LedgerEntry.objects.order_by("pk").values_list("kind", "amount"))
    assert entries == ledger
    receipt = last_bot_message(fake_telegram, ALEX["id"])["text"]
    assert f"Receipt for order {order.reference}" in receipt
    assert payment.telegram_payment_charge_id in receipt
    if kind in ("digital", "stars"):
        assert f"CODE-{product.sku}-1" in receipt
        assert DigitalItem.objects.filter(order_item__order=order).count() == 1
    if kind == "physical":
        assert order.shipping_address["city"] == "Berlin"
        assert Product.objects.get(pk=product.pk).stock == 1


def test_invoice_parameters_follow_the_bot_api(webhook, fake_telegram, catalog):
    buy(fake_telegram, ALEX, "mug")
    buy(fake_telegram, ALEX, "vip")

    apay, stars = (c["params"] for c in fake_telegram.calls("sendInvoice"))
    assert apay["provider_token"] == "apay:test-provider-token"
    assert apay["currency"] == "EUR"
    assert apay["prices"] == '[{"label": "Mug", "amount": 1800}]'
    assert apay["need_shipping_address"] == "True"
    assert stars["provider_token"] == ""
    assert stars["currency"] == "XTR"
    assert stars["prices"] == '[{"label": "VIP pass", "amount": 250}]'
    assert "need_shipping_address" not in stars
    for params in (apay, stars):
        assert len(params["payload"].encode()) <= 128
    # The provider token is a secret: it is added when sending, never stored.
    assert "provider_token" not in str(list(Message.objects.values_list("params", flat=True)))


def test_russian_customer_is_answered_in_russian(webhook, fake_telegram, catalog):
    fake_telegram.user_message(MASHA, "/start")
    assert last_bot_message(fake_telegram, MASHA["id"])["text"].startswith("Здравствуйте, Маша")
    fake_telegram.user_message(MASHA, "/help")
    assert "каталог" in last_bot_message(fake_telegram, MASHA["id"])["text"]


def test_orders_and_balance_commands(webhook, fake_telegram, catalog, items):
    invoice = buy(fake_telegram, ALEX, "coins")
    fake_telegram.user_pay(ALEX, invoice["message_id"])
    reference = Order.objects.get().reference

    fake_telegram.user_message(ALEX, "/orders")
    assert f"{reference} · " in last_bot_message(fake_telegram, ALEX["id"])["text"]
    assert "fulfilled" in last_bot_message(fake_telegram, ALEX["id"])["text"]

    fake_telegram.user_message(ALEX, "/balance")
    assert "5.00 USD" in last_bot_message(fake_telegram, ALEX["id"])["text"]


def test_declined_payment_leaves_order_awaiting_payment(webhook, fake_telegram, catalog):
    invoice = buy(fake_telegram, ALEX, "coins")
    result = fake_telegram.user_pay(ALEX, invoice["message_id"], outcome="decline")
    assert result["paid"] is False
    assert Order.objects.get().status == Order.Status.INVOICED
    assert not Payment.objects.exists()


def test_terms_and_support_commands(webhook, fake_telegram, catalog):
    fake_telegram.user_message(ALEX, "/terms")
    assert "Terms of sale (version" in last_bot_message(fake_telegram, ALEX["id"])["text"]

    fake_telegram.user_message(ALEX, "/support")
    fake_telegram.user_message(ALEX, "Where is my mug?")

    request = Customer.objects.get(telegram_id=ALEX["id"]).support_requests.get()
    assert request.text == "Where is my mug?"
    assert f"request #{request.pk}" in last_bot_message(fake_telegram, ALEX["id"])["text"]

    fake_telegram.user_message(ALEX, "/support Also, a refund please")
    assert Customer.objects.get(telegram_id=ALEX["id"]).support_requests.count() == 2


def test_unknown_text_gets_help_and_no_support_request(webhook, fake_telegram, db):
    fake_telegram.user_message(ALEX, "hello?")
    assert "did not understand" in last_bot_message(fake_telegram, ALEX["id"])["text"]
    assert not Customer.objects.get(telegram_id=ALEX["id"]).support_requests.exists()


def test_every_update_is_stored_processed(webhook, fake_telegram, catalog):
    buy(fake_telegram, ALEX, "coins")
    statuses = set(TelegramUpdate.objects.values_list("status", flat=True))
    assert statuses == {"processed"}
    assert TelegramUpdate.objects.filter(kind="callback_query").count() == 2


def test_a_declined_payment_leaves_the_chat_usable_and_the_next_try_pays(
    webhook, fake_telegram, catalog
):
    invoice = buy(fake_telegram, ALEX, "coins")
    result = fake_telegram.user_pay(ALEX, invoice["message_id"], outcome="decline")
    assert result["declined"] and not result["paid"]
    notes = [e for e in fake_telegram.chat(ALEX["id"]) if e["from"] == "telegram"]
    assert "declined" in notes[-1]["message"]["text"]
    # The chat goes on: commands, buttons, and paying again.
    fake_telegram.user_message(ALEX, "/catalog")
    press_button(fake_telegram, ALEX, "buy:coins")
    assert fake_telegram.user_pay(ALEX, invoice["message_id"])["paid"]
    assert Payment.objects.count() == 1
    assert Order.objects.filter(status="fulfilled").count() == 1


def test_a_restarted_sandbox_never_repeats_update_message_or_charge_ids(webhook, catalog, settings):
    """`make run` restarted: a new local Telegram whose ids start above the last run's."""
    import time

    from botbridge.sandbox.server import FakeTelegram

    def run(id_base):
        fake = FakeTelegram(webhook.fake.state.token, id_base=id_base)
        fake.serve()
        try:
            settings.TELEGRAM_API_URL = fake.url
            fake.transport = webhook.fake.transport
            webhook.fake = fake
            invoice = buy(fake, ALEX, "coins")
            assert fake.user_pay(ALEX, invoice["message_id"])["paid"]
        finally:
            fake.stop()
        return fake

    first = run(int(time.time() * 1000))
    second = run(int(time.time() * 1000) + 1)
    assert Payment.objects.count() == 2  # the second charge was not taken for a repeat
    assert Order.objects.filter(status="fulfilled").count() == 2
    assert (
        TelegramUpdate.objects.filter(status="processed").count() == TelegramUpdate.objects.count()
    )
    assert min(c["at"] for c in second.calls()) >= min(c["at"] for c in first.calls())
