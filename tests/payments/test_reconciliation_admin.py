"""Finance at the Reconciliation page: the day table, uploads, the differences' steps."""

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from botbridge.reconcile import stars_reconcile
from payments.models import Difference, LedgerEntry, Payment, StatementImport, StatementRow
from tests.conftest import post_step
from tests.factories import CustomerFactory, ProductFactory, paid_order
from tests.payments.test_statements import HEADER, line

pytestmark = pytest.mark.django_db

PAGE = "/admin/payments/difference/reconciliation/"


@pytest.fixture(autouse=True)
def _no_horizon(settings):
    settings.RECONCILE_HORIZON_SECONDS = 0


def upload(client, text: str, name="statement.csv", **extra):
    data = {"file": SimpleUploadedFile(name, text.encode("utf-8"), "text/csv"), "_upload": "1"}
    return client.post(f"{PAGE}?provider=apay", {**data, **extra}, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_bad_statement_uploaded_is_refused_with_its_lines_and_nothing_changes(finance_client, db):
    text = "\n".join([HEADER, "t1;a;;;12.50;12.13;USD;Success;2026-11-01T10:00:00Z;;",
                      "t2;b;;;12,50;12.13;USD;Success;2026-11-01T10:00:00Z;;"])  # fmt: skip

    response = upload(finance_client, text)

    (message,) = messages_of(response)
    assert "Line 3: amount '12,50' is not a number" in message
    assert "nothing was changed" in message
    assert not StatementImport.objects.exists() and not StatementRow.objects.exists()


def test_a_statement_uploaded_is_imported_once_and_logged(finance_client, finance_user, db):
    payment = paid_order(CustomerFactory(), ProductFactory(price=1250, currency="USD"))
    text = "\n".join([HEADER, line("t1", payment.provider_payment_charge_id, "12.50", "12.13")])

    response = upload(finance_client, text)

    assert "1 new" in messages_of(response)[0]
    assert StatementRow.objects.get().payment == payment
    assert LedgerEntry.objects.get(kind="fee").amount == -37
    imported = StatementImport.objects.get()
    assert (imported.imported_by, imported.source) == (finance_user, "upload")
    assert LogEntry.objects.filter(object_id=str(imported.pk)).exists()
    again = upload(finance_client, text)
    assert "nothing changed" in messages_of(again)[0]
    assert StatementImport.objects.count() == 1


def test_the_page_shows_each_day_ours_beside_telegrams_in_major_units(
    finance_client, fake_telegram, db
):
    customer = CustomerFactory()
    paid_order(customer, ProductFactory(price=1250, currency="XTR"), charge="stars-p-1")
    paid_order(customer, ProductFactory(price=250, currency="XTR"), charge="stars-p-2")
    fake_telegram.star_transaction_add(
        {"id": "stars-p-1", "amount": 1250, "source": {"type": "user",
         "transaction_type": "invoice_payment", "user": {"id": customer.telegram_id}}}
    )  # fmt: skip
    stars_reconcile()

    response = finance_client.get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    day = response.context["days"][0]
    assert (day.our_count, day.our_sum, day.their_count, day.their_sum) == (2, 1500, 1, 1250)
    assert "1,500 XTR" in html or "1 500 XTR" in html or "1500 XTR" in html
    assert "1 open difference" in html
    assert "Opening balance" in html


def test_resolve_record_and_confirm_steps(
    finance_client, finance_user, fake_telegram, db, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    fake_telegram.star_transaction_add(
        {"id": "stars-q-1", "amount": 99, "source": {"type": "user",
         "transaction_type": "invoice_payment", "user": {"id": customer.telegram_id}}}
    )  # fmt: skip
    paid_order(customer, ProductFactory(price=10, currency="XTR"), charge="stars-q-2")
    stars_reconcile()
    missing_here = Difference.objects.get(kind="missing_here")
    missing_there = Difference.objects.get(kind="missing_there")
    base = "/admin/payments/difference"
    capture = django_capture_on_commit_callbacks

    refused = post_step(finance_client, capture, f"{base}/{missing_there.pk}/resolve/", {})
    assert "This field is required" in refused.content.decode()
    post_step(finance_client, capture, f"{base}/{missing_there.pk}/resolve/",
              {"note": "A test charge; refunded by hand."})  # fmt: skip
    missing_there.refresh_from_db()
    assert (missing_there.status, missing_there.resolved_by) == ("resolved", finance_user)
    assert LogEntry.objects.filter(object_id=str(missing_there.pk)).exists()

    page = finance_client.get(f"{base}/{missing_here.pk}/change/").content.decode()
    assert "Record the payment" in page
    done = post_step(finance_client, capture, f"{base}/{missing_here.pk}/record/", {})
    payment = Payment.objects.get(telegram_payment_charge_id="stars-q-1")
    assert done.redirect_chain[-1][0].endswith(f"/payments/payment/{payment.pk}/change/")
    assert payment.review_reason == "unmatched"  # no order payload: held for review
    missing_here.refresh_from_db()
    assert missing_here.status == "resolved"


def test_check_at_apay_shows_apays_record_beside_ours(finance_client, fake_apay, db):
    payment = paid_order(CustomerFactory(), ProductFactory(price=1250, currency="USD"))
    fake_apay.deposit_add(order_id=payment.provider_payment_charge_id, amount=1250,
                          currency="USD", status="Rejected fraud")  # fmt: skip

    page = finance_client.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert "Check at A-Pay" in page
    response = finance_client.get(f"/admin/payments/payment/{payment.pk}/apay/")

    html = response.content.decode()
    assert "Rejected fraud" in html and "12.50" in html
    rows = {label: same for label, _, _, same in response.context["rows"]}
    assert rows["Amount"] is True and rows["Status"] is False


def test_check_at_apay_says_clearly_when_apay_cannot_be_reached(finance_client, settings, db):
    settings.APAY_API_URL = "http://127.0.0.1:9"
    settings.APAY_API_KEY, settings.APAY_PROJECT_ID = "k" * 32, "1"
    payment = paid_order(CustomerFactory(), ProductFactory(price=1250, currency="USD"))
    html = finance_client.get(f"/admin/payments/payment/{payment.pk}/apay/").content.decode()
    assert "A-Pay could not be reached" in html


def test_the_dashboard_counts_open_differences_and_the_report_lists_them(
    finance_client, fake_telegram, db, tmp_path
):
    paid_order(CustomerFactory(), ProductFactory(price=10, currency="XTR"), charge="stars-d-1")
    stars_reconcile()

    html = finance_client.get("/admin/").content.decode()
    assert "Reconciliation differences" in html
    tile = next(t for t in finance_client.get("/admin/").context["tiles"]
                if t.label == "Reconciliation differences")  # fmt: skip
    assert tile.value == "1"
    today = timezone.localdate().isoformat()
    out = tmp_path / "d.csv"
    call_command("export_csv", "reconciliation", "--since", today, "--until", today,
                 "--output", str(out))  # fmt: skip
    header, row = out.read_text().splitlines()[:2]
    assert header.startswith("difference_id,occurred_at,provider,kind,status,currency,ours_minor")
    assert ",stars,missing_there,open,XTR,10,10," in row


def test_run_stars_now_reads_telegram(finance_client, fake_telegram, db):
    customer = CustomerFactory()
    fake_telegram.star_transaction_add(
        {"id": "stars-n-1", "amount": 5, "source": {"type": "user",
         "transaction_type": "invoice_payment", "user": {"id": customer.telegram_id}}}
    )  # fmt: skip
    response = finance_client.post(PAGE, {"_run_stars": "1"}, follow=True)
    assert "Stars reconciliation started" in messages_of(response)[0]
    assert Difference.objects.get().kind == "missing_here"
