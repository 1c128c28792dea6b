import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("load_demo")


def test_every_model_is_registered():
    labels = {model._meta.label for model in admin.site._registry}
    expected = {
        "shop.Product",
        "shop.Customer",
        "shop.Order",
        "shop.OrderEvent",
        "shop.SupportRequest",
        "payments.Payment",
        "payments.Refund",
        "payments.Dispute",
        "payments.LedgerEntry",
        "botbridge.TelegramUpdate",
        "shop.Message",
    }
    assert expected <= labels


def test_every_changelist_and_change_page_renders(admin_client, demo):
    for model in admin.site._registry:
        meta = model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/"
        assert admin_client.get(url).status_code == 200, url
        obj = model.objects.first()
        if obj is not None:
            assert admin_client.get(f"{url}{obj.pk}/change/").status_code == 200, url


def test_searches_find_by_telegram_id_username_reference_and_charge_id(manager_client, demo):
    from payments.models import Payment
    from shop.models import Order

    order = Order.objects.filter(payments__isnull=False).first()
    payment = Payment.objects.get(order=order)
    for term in (
        order.reference,
        str(order.customer.telegram_id),
        order.customer.username,
        payment.telegram_payment_charge_id,
    ):
        page = manager_client.get("/admin/shop/order/", {"q": term}).content.decode()
        assert order.reference in page, term
    page = manager_client.get("/admin/shop/customer/", {"q": "not-a-number"})
    assert page.status_code == 200


def test_order_list_does_not_count_the_whole_table_twice(manager_client, demo):
    with CaptureQueriesContext(connection) as queries:
        manager_client.get("/admin/shop/order/")
    counts = [
        q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "shop_order" in q["sql"]
    ]
    assert len(counts) <= 1


def test_estimated_paginator_uses_the_planner_estimate_for_big_unfiltered_lists(monkeypatch):
    from core.admin import pagination
    from shop.models import Order

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE shop_order")
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", -1)
    paginator = pagination.EstimatedCountPaginator(Order.objects.all(), 100)
    with CaptureQueriesContext(connection) as queries:
        estimate = paginator.count
    assert estimate >= 0
    assert all("COUNT(" not in q["sql"].upper() for q in queries)
    filtered = pagination.EstimatedCountPaginator(Order.objects.filter(status="paid"), 100)
    assert filtered.count == 0


def test_ledger_and_events_are_read_only(manager_client, demo):
    from payments.models import LedgerEntry
    from shop.models import OrderEvent

    entry = LedgerEntry.objects.first()
    assert manager_client.get("/admin/payments/ledgerentry/add/").status_code == 403
    assert manager_client.post(f"/admin/payments/ledgerentry/{entry.pk}/delete/").status_code == 403
    event = OrderEvent.objects.first()
    response = manager_client.post(
        f"/admin/shop/orderevent/{event.pk}/change/", {"message": "changed"}
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.message != "changed"


def test_admin_is_themed_with_the_product_name(manager_client):
    page = manager_client.get("/admin/").content.decode()
    assert "Shopbot back office" in page


def test_support_answer_from_admin_is_sent_to_the_customer(
    support_client, fake_telegram, django_capture_on_commit_callbacks
):
    from shop.services import support_request_create
    from tests.factories import CustomerFactory

    customer = CustomerFactory(telegram_id=818181, language_code="en")
    fake_telegram._user({"id": customer.telegram_id})
    request = support_request_create(customer=customer, text="Where is my order?")
    with django_capture_on_commit_callbacks(execute=True):
        response = support_client.post(
            f"/admin/shop/supportrequest/{request.pk}/change/",
            {"answer": "It ships today."},
            follow=True,
        )
    assert "Answer sent to the customer" in response.content.decode()
    request.refresh_from_db()
    assert (request.status, request.answer) == ("answered", "It ships today.")
    sent = fake_telegram.calls("sendMessage")[-1]["params"]
    assert sent["chat_id"] == str(customer.telegram_id)
    assert "It ships today." in sent["text"]
    assert customer.messages.filter(direction="out", text__contains="It ships today.").exists()


def test_each_search_shape_finds_its_record_through_its_own_lookup(
    manager_client, fake_telegram, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import CustomerFactory, ProductFactory, paid_order

    customer = CustomerFactory(username="Buyer_One", telegram_id=5551234)
    other = CustomerFactory(username="someone_else")
    with django_capture_on_commit_callbacks(execute=True):
        payment = paid_order(customer, ProductFactory())
        paid_order(other, ProductFactory())
    reference = payment.order.reference
    for term in (
        reference,
        reference.lower(),
        "5551234",
        "@buyer_one",
        "BUYER_ONE",
        payment.telegram_payment_charge_id,
        payment.provider_payment_charge_id,
    ):
        page = manager_client.get("/admin/shop/order/", {"q": term}).content.decode()
        assert reference in page, term
        assert "1 result" in page, term
    assert (
        "0 results"
        in manager_client.get("/admin/shop/order/", {"q": "no such thing!"}).content.decode()
    )
    for term in (payment.telegram_payment_charge_id, payment.provider_payment_charge_id, reference):
        page = manager_client.get("/admin/payments/payment/", {"q": term}).content.decode()
        assert payment.telegram_payment_charge_id in page and "1 result" in page, term
    page = manager_client.get("/admin/shop/customer/", {"q": "@Buyer_one"}).content.decode()
    assert "5551234" in page and "someone_else" not in page
    with CaptureQueriesContext(connection) as queries:
        manager_client.get("/admin/shop/order/", {"q": "5551234"})
    search = [q["sql"] for q in queries.captured_queries if "UNION" in q["sql"]]
    assert search, "the search runs as a UNION of indexed lookups"
