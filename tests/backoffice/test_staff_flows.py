"""What staff do every day, as they do it: each step lands where the work continues, is
written to *Recent actions* and to the order's or customer's history, with who did it."""

import pytest
from django.contrib.admin.models import LogEntry

from payments.models import ChargeConflict, Dispute, Payment, Refund
from shop.models import Message, Order, Product, ProductOption
from tests.botbridge.test_purchase_flow import MASHA, last_bot_message, press_button
from tests.botbridge.test_webhook import payment_update
from tests.conftest import post_step, role_user
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tshirt(db):
    product = ProductFactory(
        sku="tshirt", title="T-shirt", title_ru="Футболка", description="Cotton.",
        description_ru="Хлопок.", kind=Product.Kind.PHYSICAL, price=1990, currency="EUR",
        option_name="Size", option_name_ru="Размер", stock=10,
    )  # fmt: skip
    for position, size in enumerate(["S", "M", "L", "XL"]):
        ProductOption.objects.create(product=product, value=size, label=size, position=position)
    return product


def test_a_size_is_asked_before_the_invoice_and_shipping_reaches_the_customer(
    webhook, fake_telegram, tshirt, client, django_capture_on_commit_callbacks
):
    fake_telegram.user_message(MASHA, "/start tshirt")
    card = last_bot_message(fake_telegram, MASHA["id"])
    assert "Футболка" in card["text"] and "19,90 EUR" in card["text"]
    press_button(fake_telegram, MASHA, "buy:tshirt")
    question = last_bot_message(fake_telegram, MASHA["id"])
    assert question["text"] == "Футболка: выберите Размер."
    sizes = [b["text"] for row in question["reply_markup"]["inline_keyboard"] for b in row]
    assert sizes == ["S", "M", "L", "XL"]
    press_button(fake_telegram, MASHA, "buy:tshirt:M")
    press_button(fake_telegram, MASHA, "terms:tshirt:M")
    invoice = last_bot_message(fake_telegram, MASHA["id"])
    assert invoice["invoice"]["title"] == "Футболка"
    assert invoice["invoice"]["description"] == "Хлопок. (Размер: M)"
    assert fake_telegram.user_pay(MASHA, invoice["message_id"])["paid"]

    order = Order.objects.get()
    item = order.items.get()
    assert (order.status, item.option, item.option_label) == ("awaiting_shipment", "M", "Size: M")

    manager = role_user("Manager")
    client.force_login(manager)
    page = client.get(f"/admin/shop/order/{order.pk}/change/").content.decode()
    assert "Size: M" in page and "19.90 EUR" in page and "Berlin" in page
    assert f"/admin/shop/order/{order.pk}/ship/" in page
    packing = client.get(f"/admin/shop/order/{order.pk}/packing/").content.decode()
    assert "Size: M" in packing and "Unter den Linden 1" in packing

    refused = post_step(client, django_capture_on_commit_callbacks,
                        f"/admin/shop/order/{order.pk}/ship/", {"carrier": "DHL"})  # fmt: skip
    assert "This field is required" in refused.content.decode()
    post_step(
        client, django_capture_on_commit_callbacks, f"/admin/shop/order/{order.pk}/ship/",
        {"carrier": "DHL", "tracking_number": "JD0123", "tracking_url": "https://dhl.example/JD0123"},
    )  # fmt: skip
    shipped = last_bot_message(fake_telegram, MASHA["id"])["text"]
    assert shipped == (
        f"Ваш заказ {order.reference} в пути, служба доставки DHL.\nТрек-номер: JD0123\n"
        "Отследить: https://dhl.example/JD0123"
    )
    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number) == ("shipped", "DHL", "JD0123")
    post_step(client, django_capture_on_commit_callbacks,
              f"/admin/shop/order/{order.pk}/deliver/", {"note": ""})  # fmt: skip
    order.refresh_from_db()
    assert order.status == "fulfilled" and order.delivered_at is not None
    assert "доставлен" in last_bot_message(fake_telegram, MASHA["id"])["text"]

    events = list(order.events.filter(actor=manager).values_list("to_status", flat=True))
    assert events == ["shipped", "fulfilled"]
    logged = list(LogEntry.objects.filter(user=manager).values_list("change_message", flat=True))
    assert any("Mark shipped" in message for message in logged)
    assert any("Mark delivered" in message for message in logged)


def test_refund_lands_on_the_refund_and_dispute_on_the_dispute(
    webhook, fake_telegram, invoiced_order, client, django_capture_on_commit_callbacks
):
    webhook.post(payment_update(5, invoiced_order))
    payment = Payment.objects.get()
    finance = role_user("Finance")
    client.force_login(finance)

    response = post_step(
        client, django_capture_on_commit_callbacks, f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "1.00", "reason": "customer_request", "note": ""},
    )  # fmt: skip
    refund = Refund.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/payments/refund/{refund.pk}/change/"
    assert "Confirm refund made" in response.content.decode()
    assert "1.00 USD" in response.content.decode()

    response = post_step(
        client, django_capture_on_commit_callbacks, f"/admin/payments/payment/{payment.pk}/dispute/",
        {"amount": "4.00", "reason": "fraudulent", "evidence_due_by": "2030-01-01 12:00"},
    )  # fmt: skip
    assert response.status_code == 200
    # The refund still pending holds 1.00 of 5.00: at most 4.00 can be disputed.
    dispute = Dispute.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/payments/dispute/{dispute.pk}/change/"
    assert LogEntry.objects.filter(user=finance).count() == 2

    page = client.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert f"/admin/payments/refund/{refund.pk}/change/" in page
    assert f"/admin/payments/dispute/{dispute.pk}/change/" in page
    assert "Record refund" not in page and "Open dispute" not in page  # an open dispute


def test_amounts_typed_with_too_many_decimals_are_refused_with_a_clear_message(
    webhook, fake_telegram, invoiced_order, client, django_capture_on_commit_callbacks
):
    webhook.post(payment_update(6, invoiced_order))
    payment = Payment.objects.get()
    client.force_login(role_user("Finance"))
    response = post_step(
        client, django_capture_on_commit_callbacks, f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "1.005", "reason": "customer_request", "note": ""},
    )  # fmt: skip
    assert "USD has 2 digits after the decimal point at most." in response.content.decode()
    assert not Refund.objects.exists()


def test_product_price_is_typed_in_major_units(client):
    client.force_login(role_user("Manager"))
    form = {
        "sku": "mug", "kind": "physical", "is_active": "on", "title": "Mug",
        "description": "A mug.", "price": "12.50", "currency": "USD", "stock": "3",
        "options-TOTAL_FORMS": "0", "options-INITIAL_FORMS": "0",
        "digital_items-TOTAL_FORMS": "0", "digital_items-INITIAL_FORMS": "0",
    }  # fmt: skip
    response = client.post("/admin/shop/product/add/", {**form, "price": "12.505"})
    assert "USD has 2 digits after the decimal point at most." in response.content.decode()
    response = client.post("/admin/shop/product/add/", {**form, "price": "0.50"})
    assert "Telegram accepts USD invoices from" in response.content.decode()
    assert not Product.objects.exists()
    response = client.post("/admin/shop/product/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get()
    assert (product.price, product.currency) == (1250, "USD")
    page = client.get(f"/admin/shop/product/{product.pk}/change/").content.decode()
    assert 'value="12.50"' in page


def test_a_charge_id_reported_again_with_other_figures_is_kept_for_review(
    webhook, fake_telegram, invoiced_order, client
):
    webhook.post(payment_update(7, invoiced_order, charge="c-1"))
    webhook.post(payment_update(8, invoiced_order, charge="c-1"))  # a true repeat
    assert not ChargeConflict.objects.exists()
    webhook.post(payment_update(9, invoiced_order, charge="c-1", amount=999))
    webhook.post(payment_update(10, invoiced_order, charge="c-1", amount=999))
    conflict = ChargeConflict.objects.get()
    assert (conflict.amount, conflict.payment.amount) == (999, 500)
    assert Payment.objects.count() == 1
    client.force_login(role_user("Finance"))
    home = client.get("/admin/").content.decode()
    assert "Charge ids reported twice" in home
    assert Message.objects.filter(dedupe_key__startswith="receipt:").count() == 1
