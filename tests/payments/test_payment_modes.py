"""Test payments never count as money; the sandbox's demo money does, as its own kind."""

import csv
import io

import pytest
from django.utils import timezone

from payments import reports
from payments.models import LedgerEntry, Payment
from shop.models import Order
from tests.botbridge.test_purchase_flow import ALEX, buy
from tests.conftest import role_user
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def purchase(fake, sku="coins"):
    invoice = buy(fake, ALEX, sku)
    assert fake.user_pay(ALEX, invoice["message_id"])["paid"]
    return Payment.objects.order_by("-pk").first()


@pytest.mark.parametrize(
    ("sandbox", "token", "mode"),
    [(False, "381764678:TEST:53311", "test"), (False, "381764678:LIVE:90210", "live"),
     (True, "sandbox:apay-test-token", "sandbox")],
)  # fmt: skip
def test_the_token_the_invoice_was_sent_with_decides_the_mode(
    webhook, fake_telegram, settings, sandbox, token, mode
):
    settings.TELEGRAM_SANDBOX, settings.TELEGRAM_PROVIDER_TOKEN = sandbox, token
    ProductFactory(sku="coins", price=500, currency="USD")
    payment = purchase(fake_telegram)
    assert (payment.mode, Order.objects.get().payment_mode) == (mode, mode)
    assert payment.credited_at is not None  # credited in the bot as usual
    # The token changing before the payment arrives does not change whose money it was.
    settings.TELEGRAM_PROVIDER_TOKEN = "381764678:LIVE:1" if mode == "test" else token
    assert Payment.objects.get(pk=payment.pk).mode == mode


def test_test_payments_are_badged_and_left_out_of_money_and_reports(
    webhook, fake_telegram, settings, client
):
    settings.TELEGRAM_SANDBOX = False
    ProductFactory(sku="coins", price=500, currency="USD")
    ProductFactory(sku="gems", price=1200, currency="USD")
    settings.TELEGRAM_PROVIDER_TOKEN = "381764678:TEST:53311"
    test_payment = purchase(fake_telegram, "coins")
    settings.TELEGRAM_PROVIDER_TOKEN = "381764678:LIVE:90210"
    live_payment = purchase(fake_telegram, "gems")
    assert LedgerEntry.objects.filter(payment=test_payment).exists()  # the bot credited it

    client.force_login(role_user("Finance"))
    listing = client.get("/admin/payments/payment/").content.decode()
    assert listing.count('class="badge-test"') == 1
    home = client.get("/admin/").content.decode()
    assert "12.00 USD" in home and "17.00 USD" not in home and "5.00 USD" not in home

    today = timezone.localdate()
    for include_test, expected in ((False, {live_payment.telegram_payment_charge_id}),
                                   (True, {live_payment.telegram_payment_charge_id,
                                           test_payment.telegram_payment_charge_id})):  # fmt: skip
        filters = reports.Filters(since=today, until=today, include_test=include_test)
        rows = list(csv.DictReader(io.StringIO("".join(reports.report_csv("payments", filters)))))
        assert {row["telegram_payment_charge_id"] for row in rows} == expected
        settlement = "".join(reports.report_csv("settlement", filters))
        assert ("17.00" in settlement) is include_test
