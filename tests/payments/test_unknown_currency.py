"""A successful_payment in a currency not in Telegram's table is kept, held for review,
shown with its raw amount and code, never formatted by guess, and breaks no page."""

import csv
import io

import pytest
from django.utils import timezone

from payments import reports
from payments.models import LedgerEntry, Payment
from tests.botbridge.test_webhook import payment_update

pytestmark = pytest.mark.django_db


def test_payment_in_an_unknown_currency_is_kept_flagged_and_shown_raw(
    webhook, invoiced_order, finance_client
):
    assert (
        webhook.post(payment_update(40, invoiced_order, currency="ZZZ", amount=1234)).status_code
        == 200
    )

    payment = Payment.objects.get()
    assert (payment.amount, payment.currency, payment.review_reason) == (
        1234,
        "ZZZ",
        "unknown_currency",
    )
    assert payment.credited_at is None and not LedgerEntry.objects.exists()
    invoiced_order.refresh_from_db()
    assert invoiced_order.needs_review is True

    listing = finance_client.get("/admin/payments/payment/")
    assert listing.status_code == 200
    assert "1234 ZZZ (unknown currency, minor units)" in listing.content.decode()
    page = finance_client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert page.status_code == 200
    order_page = finance_client.get(f"/admin/shop/order/{invoiced_order.pk}/change/")
    assert order_page.status_code == 200
    review = finance_client.get("/admin/payments/payment/?credit=review").content.decode()
    assert payment.telegram_payment_charge_id in review

    today = timezone.localdate()
    filters = reports.Filters(since=today, until=today)
    for text in (
        "".join(reports.report_csv("payments", filters)),  # PostgreSQL's COPY
        "".join(reports.queryset_csv("payments", Payment.objects.all())),  # Python's writer
    ):
        row = next(csv.DictReader(io.StringIO(text)))
        assert (row["amount_minor"], row["currency"], row["amount"]) == ("1234", "ZZZ", "")
