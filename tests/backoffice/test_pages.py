"""Pages as staff read them: no raw values, no dead ends."""

import pytest
from django.utils import timezone

from payments import services as payment_services
from shop.models import Message
from tests.conftest import role_user
from tests.factories import CustomerFactory, ProductFactory, paid_order

pytestmark = pytest.mark.django_db


def test_403_and_404_have_the_admins_look_and_a_way_back(client, settings):
    settings.DEBUG = False
    client.force_login(role_user("Support"))
    forbidden = client.get("/admin/payments/payment/")
    assert forbidden.status_code == 403
    page = forbidden.content.decode()
    assert "You are not allowed to see this page" in page
    assert settings.PRODUCT_NAME in page and 'href="/admin/"' in page
    missing = client.get("/admin/no/such/page/")
    assert missing.status_code == 404
    page = missing.content.decode()
    assert "There is nothing here" in page and 'href="/admin/"' in page


def test_view_site_opens_the_sandbox_or_is_gone(client, settings):
    client.force_login(role_user("Manager"))
    settings.TELEGRAM_SANDBOX = True
    assert 'href="/sandbox/"' in client.get("/admin/").content.decode()
    settings.TELEGRAM_SANDBOX = False
    assert "View site" not in client.get("/admin/").content.decode()


def test_dashboard_money_per_currency_links_to_its_lists(
    client, fake_telegram, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        paid = paid_order(customer, ProductFactory(price=149000, currency="RUB"))
        paid_order(customer, ProductFactory(price=1250, currency="USD"))
        refund = payment_services.refund_request(payment=paid, amount=49000, reason="duplicate")
        payment_services.refund_complete(refund=refund, external_reference="R1")
    client.force_login(role_user("Finance"))
    page = client.get("/admin/").content.decode()
    assert "1,490.00 RUB" in page and "490.00 RUB" in page and "1,000.00 RUB" in page
    assert "12.50 USD" in page
    assert (
        "payments/payment/?currency__exact=RUB&amp;review_reason__exact=&amp;paid_at__gte=" in page
    )
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    listing = client.get(
        "/admin/payments/payment/",
        {"currency__exact": "RUB", "review_reason__exact": "", "paid_at__gte": start},
    ).content.decode()
    assert paid.telegram_payment_charge_id in listing and "12.50 USD" not in listing
    assert 'id="chart-currencies"' in page and 'id="chart-legend"' in page


def test_the_order_timeline_is_of_that_order_only(
    client, fake_telegram, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        first = paid_order(customer, ProductFactory(price=500, currency="USD"))
        second = paid_order(customer, ProductFactory(price=700, currency="USD"))
    client.force_login(role_user("Support"))
    page = client.get(f"/admin/shop/order/{first.order_id}/change/").content.decode()
    timeline = page[
        page.index('class="order-timeline"') : page.index(
            "</table>", page.index('class="order-timeline"')
        )
    ]
    assert first.order.reference in timeline
    assert second.order.reference not in timeline
    assert Message.objects.filter(order=second.order).exists()
    assert "Invoiced, awaiting payment → Paid" in timeline


def test_the_reports_form_offers_zones_and_statuses_and_checks_them(client):
    client.force_login(role_user("Finance"))
    page = client.get("/admin/payments/exportjob/add/").content.decode()
    assert '<optgroup label="Common">' in page and "Europe/Moscow" in page
    assert '<optgroup label="Refunds">' in page and "Partially refunded" in page
    form = {"report": "refunds", "since": "2026-11-01", "until": "2026-11-30", "tz": "UTC",
            "currency": "", "status": "charged_back", "provider": "", "_download": "1"}  # fmt: skip
    response = client.post("/admin/payments/exportjob/add/", form)
    assert "The Refunds report has no such status." in response.content.decode()


def test_the_chart_reads_today_live_and_closed_days_once(
    client, fake_telegram, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backoffice import dashboard
    from payments.models import LedgerEntry

    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        old = paid_order(customer, ProductFactory(price=700, currency="EUR"))
    LedgerEntry.objects.filter(payment=old).update(created_at=timezone.now() - timedelta(days=3))
    days = dashboard.ledger_days()
    three_days_ago = timezone.localdate() - timedelta(days=3)
    assert days["EUR"][three_days_ago]["paid"] == 700

    with django_capture_on_commit_callbacks(execute=True):
        paid_order(customer, ProductFactory(price=500, currency="EUR"))
    with CaptureQueriesContext(connection) as queries:
        days = dashboard.ledger_days()
    assert len(queries) == 1  # today only; the closed days came from the cache
    assert days["EUR"][timezone.localdate()]["paid"] == 500
    assert days["EUR"][three_days_ago]["paid"] == 700
    assert dashboard.chart_currencies(days) == ["EUR"]
