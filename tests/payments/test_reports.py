"""Finance reports: exact sums, time-zone days, formula neutralisation, permissions, jobs."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from payments import exports, reports
from payments import services as payment_services
from payments.models import ExportJob, LedgerEntry, Payment, Refund
from payments.services import disputes
from shop.models import Order
from tests.factories import CustomerFactory, ProductFactory, UserFactory, paid_order

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)


def parse(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def export(name, *, since=TODAY, until=TODAY, tz="UTC", **kw) -> str:
    filters = reports.Filters(since=since, until=until, tz=ZoneInfo(tz), **kw)
    return "".join(reports.report_csv(name, filters))


@pytest.fixture
def credited(django_capture_on_commit_callbacks, fake_telegram):
    """A credited payment at a given instant (paid, credited, ledger entries all at `at`)."""

    def make(amount, currency, *, at, username="buyer", kind="topup"):
        customer = CustomerFactory(username=username)
        product = ProductFactory(price=amount, currency=currency, kind=kind)
        with django_capture_on_commit_callbacks(execute=True):
            payment = paid_order(customer, product)
        Payment.objects.filter(pk=payment.pk).update(paid_at=at)
        Order.objects.filter(pk=payment.order_id).update(created_at=at)
        LedgerEntry.objects.filter(payment=payment).update(created_at=at)
        payment.refresh_from_db()
        return payment

    return make


def noon(day=TODAY):
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def test_settlement_equals_the_ledger_to_the_minor_unit(
    credited, django_capture_on_commit_callbacks
):
    usd = [credited(1250, "USD", at=noon()), credited(999, "USD", at=noon())]
    credited(1500, "JPY", at=noon())
    credited(250, "XTR", at=noon())
    credited(700, "USD", at=noon(TODAY + timedelta(days=1)))  # outside the range
    with django_capture_on_commit_callbacks(execute=True):
        refund = payment_services.refund_request(payment=usd[0], amount=301, reason="other")
        payment_services.refund_complete(refund=refund, external_reference="R1")
        dispute = disputes.dispute_open(
            payment=usd[1], reason="fraudulent", amount=999, evidence_due_by=timezone.now()
        )
        disputes.dispute_lose(dispute=dispute, fee=1500)
    # The refund and the chargeback were booked just now: put them on the report's day.
    LedgerEntry.objects.filter(created_at__gt=noon(TODAY + timedelta(days=1))).update(
        created_at=noon()
    )

    rows = {r["currency"]: r for r in parse(export("settlement"))}
    assert set(rows) == {"USD", "JPY", "XTR"}
    usd_row = rows["USD"]
    assert usd_row["day"] == "2026-11-20"
    assert (usd_row["paid_count"], usd_row["paid_minor"], usd_row["paid"]) == ("2", "2249", "22.49")
    assert (usd_row["refunded_minor"], usd_row["refunded"]) == ("301", "3.01")
    assert (usd_row["charged_back_minor"], usd_row["fees_minor"]) == ("999", "1500")
    assert (usd_row["net_minor"], usd_row["net"]) == ("-551", "-5.51")
    assert (rows["JPY"]["paid_minor"], rows["JPY"]["paid"]) == ("1500", "1500")
    assert (rows["XTR"]["paid_minor"], rows["XTR"]["net"]) == ("250", "250")

    # The same money, straight from the ledger.
    in_range = LedgerEntry.objects.filter(created_at__date=TODAY)
    for currency, row in rows.items():
        entries = in_range.filter(currency=currency)

        def total(kind, entries=entries):
            return entries.filter(kind=kind).aggregate(t=Sum("amount"))["t"] or 0

        assert int(row["paid_minor"]) == total("credit")
        assert int(row["refunded_minor"]) == -total("refund")
        assert int(row["charged_back_minor"]) == -total("chargeback")
        assert int(row["fees_minor"]) == -total("fee")
        assert int(row["net_minor"]) == sum(
            total(k) for k in ("credit", "refund", "chargeback", "fee")
        )

    ledger = parse(export("ledger", currency="USD"))
    assert (
        sum(int(r["amount_minor"]) for r in ledger)
        == in_range.filter(currency="USD").aggregate(t=Sum("amount"))["t"]
    )
    payments = parse(export("payments"))
    assert sorted(r["amount"] for r in payments) == sorted(["1500", "12.50", "250", "9.99"])
    assert {r["refunded_minor"] for r in payments if r["currency"] == "USD"} == {"301", "0"}


def test_days_are_counted_in_the_chosen_time_zone(credited):
    # Moscow is UTC+3: 23:30 on the 10th there is 20:30 UTC; 00:30 on the 11th is 21:30 UTC.
    late = credited(100, "USD", at=datetime(2026, 3, 10, 20, 30, tzinfo=UTC))
    after_midnight = credited(200, "USD", at=datetime(2026, 3, 10, 21, 30, tzinfo=UTC))
    day = date(2026, 3, 10)

    moscow = parse(export("payments", since=day, until=day, tz="Europe/Moscow"))
    assert [r["telegram_payment_charge_id"] for r in moscow] == [late.telegram_payment_charge_id]
    utc_rows = parse(export("payments", since=day, until=day, tz="UTC"))
    assert len(utc_rows) == 2
    # Timestamps are written in UTC whatever the zone of the days.
    assert moscow[0]["paid_at"] == "2026-03-10T20:30:00.000000Z"
    next_day = parse(export("payments", since=date(2026, 3, 11), until=date(2026, 3, 11),
                            tz="Europe/Moscow"))  # fmt: skip
    assert [r["payment_id"] for r in next_day] == [str(after_midnight.pk)]
    settlement = parse(export("settlement", since=day, until=date(2026, 3, 11), tz="Europe/Moscow"))
    assert [(r["day"], r["paid_minor"]) for r in settlement] == [
        ("2026-03-10", "100"),
        ("2026-03-11", "200"),
    ]


def test_formula_cells_are_neutralised_and_csv_is_rfc4180(credited):
    payment = credited(1000, "USD", at=noon())
    refund = payment_services.refund_request(
        payment=payment,
        amount=400,
        reason="other",
        note='=HYPERLINK("http://x","y"), "quoted"\nline',
    )
    Refund.objects.filter(pk=refund.pk).update(
        created_at=noon(), external_reference="+cmd|' /C calc'!A0"
    )
    payment_services.refund_complete(refund=refund, external_reference="+cmd|' /C calc'!A0")
    Refund.objects.filter(pk=refund.pk).update(created_at=noon())
    LedgerEntry.objects.update(created_at=noon())
    text = export("refunds")
    assert text.startswith("refund_id,created_at,") and "\r\n" in text
    row = parse(text)[0]
    assert row["note"] == '\'=HYPERLINK("http://x","y"), "quoted"\nline'
    assert row["external_reference"].startswith("'+cmd")
    assert '"\'=HYPERLINK(""http://x"",""y""), ""quoted""\nline"' in text
    for bad in ("-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert reports.safe_text(bad) == "'" + bad
    # Numbers are numbers: a negative ledger amount is not "neutralised".
    ledger = parse(export("ledger", status="refund"))
    assert ledger[0]["amount_minor"] == "-400" and ledger[0]["amount"] == "-4.00"
    bom = "".join(
        reports.report_csv("refunds", reports.Filters(since=TODAY, until=TODAY), bom=True)
    )
    assert bom.startswith("\ufeffrefund_id")


def test_export_csv_command(credited, tmp_path, capsys):
    credited(1250, "USD", at=noon(), username="=evil")
    call_command("export_csv", "orders", "--since", "2026-11-20", "--until", "2026-11-20")
    out = capsys.readouterr().out
    assert out.startswith("reference,created_at,status,customer_telegram_id")
    assert parse(out)[0]["total"] == "12.50"
    target = tmp_path / "payments.csv"
    call_command(
        "export_csv", "payments", "--since", "2026-11-20", "--until", "2026-11-20",
        "--currency", "usd", "--tz", "Europe/Berlin", "--output", str(target), "--bom",
    )  # fmt: skip
    content = target.read_text(encoding="utf-8")
    assert content.startswith("\ufeff") and len(parse(content)) == 1
    for bad in (
        ["orders", "--since", "2026-13-01", "--until", "2026-11-20"],
        ["orders", "--since", "2026-11-21", "--until", "2026-11-20"],
        ["orders", "--since", "2026-11-20", "--until", "2026-11-20", "--currency", "ZZZ"],
        ["orders", "--since", "2026-11-20", "--until", "2026-11-20", "--tz", "Mars/Base"],
        ["settlement", "--since", "2026-11-20", "--until", "2026-11-20", "--status", "paid"],
    ):
        with pytest.raises(CommandError):
            call_command("export_csv", *bad)


@pytest.fixture
def finance_user(db):
    user = UserFactory(username="finance-only")
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["export_reports", "view_payment", "view_refund", "view_exportjob"]
        )
    )
    return user


def test_only_finance_can_export(client, credited, finance_user):
    payment = credited(1000, "USD", at=noon())
    support = UserFactory(username="support-only")
    support.user_permissions.add(*Permission.objects.filter(codename__in=["view_payment"]))
    client.force_login(support)
    assert client.get("/admin/payments/exportjob/add/").status_code == 403
    assert client.get("/admin/payments/exportjob/").status_code == 403
    listing = client.get("/admin/payments/payment/").content.decode()
    assert "Export as CSV" not in listing
    refused = client.post(
        "/admin/payments/payment/", {"action": "export_csv", "_selected_action": [payment.pk]}
    )
    assert refused["Content-Type"].startswith("text/html")  # the changelist, no CSV
    job = ExportJob.objects.create(report="payments", params={}, status="done", file="x.csv")
    assert client.get(f"/admin/payments/exportjob/{job.pk}/download/").status_code == 403

    client.force_login(finance_user)
    assert "Export as CSV" in client.get("/admin/payments/payment/").content.decode()
    response = client.post(
        "/admin/payments/payment/", {"action": "export_csv", "_selected_action": [payment.pk]}
    )
    body = b"".join(response.streaming_content).decode()
    assert [r["payment_id"] for r in parse(body)] == [str(payment.pk)]


def test_changelist_export_follows_the_filters(client, credited, finance_user):
    first = credited(1000, "USD", at=noon())
    second = credited(500, "EUR", at=noon())
    client.force_login(finance_user)
    response = client.post(
        "/admin/payments/payment/?currency__exact=EUR",
        {"action": "export_csv", "select_across": "1", "index": "0",
         "_selected_action": [first.pk, second.pk]},
    )  # fmt: skip
    rows = parse(b"".join(response.streaming_content).decode())
    assert [r["currency"] for r in rows] == ["EUR"]


def test_report_page_downloads_now_or_runs_a_background_job(
    client, credited, finance_user, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    credited(1250, "USD", at=noon())
    credited(99, "USD", at=noon())
    client.force_login(finance_user)
    form = {"report": "payments", "since": "2026-11-20", "until": "2026-11-20", "tz": "UTC",
            "currency": "", "status": "", "provider": ""}  # fmt: skip
    now = client.post("/admin/payments/exportjob/add/", {**form, "_download": "1"})
    direct = b"".join(now.streaming_content).decode()
    assert len(parse(direct)) == 2

    bad = client.post(
        "/admin/payments/exportjob/add/", {**form, "until": "2026-11-01", "_background": "1"}
    )
    assert "end date is before" in bad.content.decode()
    assert not ExportJob.objects.exists()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/admin/payments/exportjob/add/", {**form, "_background": "1"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and job.status == "pending"
    page = client.get(f"/admin/payments/exportjob/{job.pk}/change/").content.decode()
    assert 'id="export-bar"' in page and 'http-equiv="refresh"' in page
    for callback in callbacks:  # the worker runs it
        callback()
    job.refresh_from_db()
    assert (job.status, job.row_count, job.progress) == ("done", 2, 100)
    assert job.expires_at > timezone.now()
    page = client.get(f"/admin/payments/exportjob/{job.pk}/change/").content.decode()
    assert "Download CSV" in page and 'http-equiv="refresh"' not in page
    downloaded = b"".join(client.get(f"/admin/payments/exportjob/{job.pk}/download/")).decode()
    assert downloaded == direct

    # Old files are removed by beat; the job stays as history.
    path = job.file.path
    assert exports.exports_purge(now=timezone.now()) == 0
    assert exports.exports_purge(now=job.expires_at + timedelta(seconds=1)) == 1
    job.refresh_from_db()
    assert job.status == "expired" and not job.file
    import os

    assert not os.path.exists(path)
    assert client.get(f"/admin/payments/exportjob/{job.pk}/download/").status_code == 404


def test_export_streams_in_chunks_without_loading_all_rows(credited):
    """On PostgreSQL the rows come from COPY and are passed on block by block as they arrive;
    the portable writer cuts its output every `rows_per_chunk` rows."""
    from django.db import connection

    for n in range(7):
        credited(100 + n, "USD", at=noon())
    assert connection.vendor == "postgresql"
    seen: list[int] = []
    chunks = reports.report_csv(
        "payments", reports.Filters(since=TODAY, until=TODAY), progress=seen.append
    )
    header = next(chunks)
    assert header.startswith(",".join(reports.report_get("payments").header))
    assert seen == []  # the header is out before a row was read
    rest = list(chunks)
    assert len(rest) > 1  # COPY's blocks, each passed on, not gathered into one
    assert seen == sorted(seen) and len(set(seen)) > 1 and seen[-1] == 7
    assert len(parse(header + "".join(rest))) == 7
    chunks = list(reports.csv_chunks(["a"], ([n] for n in range(2500)), rows_per_chunk=1000))
    assert len(chunks) == 4  # header, then a piece per 1,000 rows
    assert len(parse(export("payments"))) == 7


def test_postgresql_copy_writes_exactly_what_the_python_writer_writes(
    credited, django_capture_on_commit_callbacks
):
    """The fast path (COPY) and the portable one (Python's csv) give the same bytes."""
    usd = credited(1250, "USD", at=noon(), username="=sum")
    jpy = credited(1500, "JPY", at=noon())
    credited(250, "XTR", at=noon())
    with django_capture_on_commit_callbacks(execute=True):
        refund = payment_services.refund_request(
            payment=usd, amount=301, reason="other", note='multi\nline, "quoted"\r\nand =1+1'
        )
        payment_services.refund_complete(refund=refund, external_reference="")
        dispute = disputes.dispute_open(
            payment=jpy, reason="fraudulent", amount=1500, evidence_due_by=noon(),
            provider_reference="-neg",
        )  # fmt: skip
        disputes.dispute_lose(dispute=dispute, fee=40)
    for model in (Refund, LedgerEntry):
        model.objects.update(created_at=noon())
    from payments.models import Dispute as DisputeModel

    DisputeModel.objects.update(opened_at=noon())
    filters = reports.Filters(since=TODAY, until=TODAY)
    for name in ("orders", "payments", "refunds", "disputes", "ledger"):
        report = reports.report_get(name)
        fast = "".join(reports.report_csv(name, filters))
        portable = "".join(reports.csv_chunks(report.header, report.rows(report.filtered(filters))))
        assert fast == portable, name
        assert len(parse(fast)) >= 1


def test_an_export_whose_file_is_missing_from_storage_answers_404_with_a_reason(
    client, finance_user, settings, tmp_path
):
    """The worker wrote the file where this web server cannot see it (no shared volume)."""
    settings.MEDIA_ROOT = tmp_path
    job = ExportJob.objects.create(
        report="payments", status=ExportJob.Status.DONE, file="exports/2026/11/gone.csv"
    )
    client.force_login(finance_user)
    response = client.get(f"/admin/payments/exportjob/{job.pk}/download/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "not in the shared file storage" in page and "Run the report again" in page
    assert f"/admin/payments/exportjob/{job.pk}/change/" in page  # a way back
