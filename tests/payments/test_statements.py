"""A-Pay statements: checked whole, imported once, matched, fees posted once, differences."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from payments.apay import client
from payments.apay.statement import StatementInvalid
from payments.models import Difference, LedgerEntry, StatementImport, StatementRow
from payments.services import statements
from tests.botbridge.test_purchase_flow import ALEX, buy
from tests.factories import CustomerFactory, ProductFactory, paid_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["bulk", "batches"])
def import_path(request, monkeypatch):
    """Each test on both paths: PostgreSQL's one-pass COPY and upsert, and the batches the
    embedded SQLite uses (taken here by making the import believe it is not on PostgreSQL)."""
    if request.param == "batches":
        from django.db import connection

        monkeypatch.setattr(connection, "vendor", "sqlite")
    return request.param


HEADER = ("transaction_id;order_id;custom_transaction_id;custom_user_id;amount;"
          "amount_after_commision;currency;status;created_at;updated_at;activated_at")  # fmt: skip


def line(tid, order_id, amount, after, status="Success", currency="USD", when=None):
    when = (when or timezone.now()).astimezone(UTC).isoformat()
    return f"{tid};{order_id};;42;{amount};{after};{currency};{status};{when};{when};{when}"


def write(tmp_path: Path, lines: list[str], name="statement.csv", header=HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def do_import(path: Path, **kwargs):
    return statements.statement_import(path=path, source="command", filename=path.name, **kwargs)


@pytest.fixture
def payments_usd(db):
    customer = CustomerFactory()
    product = ProductFactory(price=1250, currency="USD")
    return [paid_order(customer, product) for _ in range(3)]


def open_kinds():
    return sorted(Difference.objects.filter(status="open").values_list("kind", flat=True))


def test_rows_match_by_order_id_and_fees_are_posted_once(tmp_path, payments_usd):
    rows = [line(f"t{p.pk}", p.provider_payment_charge_id, "12.50", "12.13") for p in payments_usd]
    path = write(tmp_path, rows)

    result = do_import(path)

    assert (result.statement.rows_total, result.statement.rows_new, result.matched) == (3, 3, 3)
    assert set(StatementRow.objects.values_list("match", flat=True)) == {"exact"}
    fees = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FEE)
    assert sorted(fees.values_list("amount", "payment_id")) == sorted(
        (-37, p.pk) for p in payments_usd
    )
    assert StatementRow.objects.get(payment=payments_usd[0]).fee == 37
    assert open_kinds() == []

    again = do_import(path)

    assert again.already and again.statement == result.statement
    assert "nothing changed" in again.summary()
    assert fees.count() == 3
    assert StatementImport.objects.count() == 1


def test_an_overlapping_statement_adds_only_what_is_new(tmp_path, payments_usd):
    first = [line(f"t{p.pk}", p.provider_payment_charge_id, "12.50", "12.13") for p in payments_usd]
    do_import(write(tmp_path, first[:2], "a.csv"))
    before = LedgerEntry.objects.count()

    result = do_import(write(tmp_path, first[1:], "b.csv"))

    s = result.statement
    assert (s.rows_total, s.rows_new, s.rows_changed, s.rows_unchanged) == (2, 1, 0, 1)
    assert StatementRow.objects.count() == 3
    assert LedgerEntry.objects.count() == before + 1  # the new row's fee only


def test_a_credited_payment_not_success_at_apay_is_a_difference(tmp_path, payments_usd):
    payment = payments_usd[0]
    payment.credited_at = timezone.now()
    payment.save(update_fields=["credited_at"])
    tid, oid = f"t{payment.pk}", payment.provider_payment_charge_id
    do_import(write(tmp_path, [line(tid, oid, "12.50", "12.13")], "a.csv"))

    result = do_import(write(tmp_path, [line(tid, oid, "12.50", "12.13", "Rejected refund")]))

    assert result.statement.rows_changed == 1
    status = Difference.objects.get(kind="status", status="open")
    assert (status.payment, "Rejected refund" in status.detail) == (payment, True)
    assert LedgerEntry.objects.filter(kind="fee").count() == 1  # posted once, not again


@pytest.mark.parametrize("status", ["Failed", "Rejected", "Rejected fraud", "Chargeback?"])
def test_any_status_other_than_success_on_a_credited_payment_is_a_difference(
    tmp_path, payments_usd, status
):
    payment = payments_usd[0]
    payment.credited_at = timezone.now()
    payment.save(update_fields=["credited_at"])
    row = line("t1", payment.provider_payment_charge_id, "12.50", "12.50", status)
    do_import(write(tmp_path, [row]))
    assert "status" in open_kinds()


def test_unknown_rows_missing_payments_and_other_amounts_are_differences(tmp_path, payments_usd):
    here_only, differs, matched = payments_usd
    rows = [
        line(
            "t-unknown",
            "ffffffffffffffff",
            "99.00",
            "96.03",
            when=here_only.paid_at - timedelta(minutes=1),
        ),  # fmt: skip
        line("t-differs", differs.provider_payment_charge_id, "10.00", "9.70"),
        line("t-ok", matched.provider_payment_charge_id, "12.50", "12.13"),
    ]
    # Paid well inside the statement's period.
    later = timezone.now() + timedelta(hours=1)
    rows.append(line("t-late", "0000000000000000", "1.00", "1.00", "Failed", when=later))

    do_import(write(tmp_path, rows))

    assert open_kinds() == ["amount", "missing_here", "missing_there"]
    assert Difference.objects.get(kind="missing_there").payment == here_only
    assert Difference.objects.get(kind="amount").their_amount == 1000
    assert Difference.objects.get(kind="missing_here").their_amount == 9900


def test_a_weak_match_by_amount_and_time_waits_for_finance(tmp_path, db, finance_user):
    payment = paid_order(CustomerFactory(), ProductFactory(price=500, currency="EUR"))
    row = line("t-weak", "1234567890abcdef", "5.00", "4.85", currency="EUR",
               when=payment.paid_at + timedelta(minutes=3))  # fmt: skip

    result = do_import(write(tmp_path, [row]))

    assert result.weak == 1
    statement_row = StatementRow.objects.get()
    assert (statement_row.payment, statement_row.match) == (payment, "weak")
    assert open_kinds() == ["weak_match"]
    assert not LedgerEntry.objects.filter(kind="fee").exists()

    statements.statement_match_confirm(row=statement_row, actor=finance_user)

    assert LedgerEntry.objects.get(kind="fee").amount == -15
    difference = Difference.objects.get()
    assert (difference.status, difference.resolved_by) == ("resolved", finance_user)


def test_amounts_use_the_currencys_own_digits(tmp_path, db):
    jpy = paid_order(CustomerFactory(), ProductFactory(price=1500, currency="JPY"))
    inr = paid_order(CustomerFactory(), ProductFactory(price=600839, currency="INR"))
    rows = [
        line("t-jpy", jpy.provider_payment_charge_id, "1500", "1455", currency="JPY"),
        line("t-inr", inr.provider_payment_charge_id, "6008.39", "5828.14", currency="INR"),
    ]
    do_import(write(tmp_path, rows))
    assert dict(StatementRow.objects.values_list("currency", "fee")) == {"JPY": 45, "INR": 18025}
    assert open_kinds() == []


@pytest.mark.parametrize(
    ("header", "rows", "expected"),
    [
        (HEADER.replace(";", ","), [], "separated by a comma"),
        (HEADER.replace(";status", ""), [], "missing column(s): status"),
        (
            HEADER,
            [
                "t1;a;;;12.50;12.13;USD;Success;2026-11-01T10:00:00Z;;",
                "t2;b;;;twelve;12.13;USD;Success;2026-11-01T10:00:00Z;;",
                "t3;c;;;12.50;12.13;USD;Success;yesterday;;",
                "t4;d;;;1.5;1.5;JPY;Success;2026-11-01T10:00:00Z;;",
                "t5;e;;;12.50;12.13;USD;Success",
                "t6;f;;;12.50;13.00;USD;Success;2026-11-01T10:00:00Z;;",
                "t7;g;;;12.50;12.13;ZZZ;Success;2026-11-01T10:00:00Z;;",
            ],
            "Line 3: amount 'twelve' is not a number",
        ),
    ],
)
def test_a_malformed_statement_is_refused_whole_with_its_line_numbers(
    tmp_path, db, header, rows, expected
):
    path = write(tmp_path, rows or ["t1;a;;;1;1;USD;Success;2026-11-01T10:00:00Z;;"], header=header)

    with pytest.raises(StatementInvalid) as refused:
        do_import(path)

    assert expected in refused.value.message
    assert "nothing was changed" in refused.value.message
    if rows:
        assert refused.value.errors == [
            "Line 3: amount 'twelve' is not a number.",
            "Line 4: created_at 'yesterday' is not an ISO 8601 date.",
            "Line 5: amount '1.5' has more decimals than JPY allows.",
            "Line 6: has 8 fields; the header has 11.",
            "Line 7: amount_after_commision is larger than amount.",
            "Line 8: currency 'ZZZ' is not in Telegram's currency table.",
        ]
    assert not StatementImport.objects.exists()
    assert not StatementRow.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_statement_without_a_currency_column_needs_one_given(tmp_path, payments_usd):
    header = HEADER.replace(";currency", "")
    p = payments_usd[0]
    row = f"t1;{p.provider_payment_charge_id};;;12.50;12.13;Success;{p.paid_at.isoformat()};;"
    path = write(tmp_path, [row], header=header)
    with pytest.raises(StatementInvalid, match="currency"):
        do_import(path)
    assert do_import(path, currency="USD").matched == 1


def test_the_command_imports_and_refuses_a_bad_file_with_nothing_imported(
    tmp_path, payments_usd, capsys
):
    p = payments_usd[0]
    good = write(tmp_path, [line("t1", p.provider_payment_charge_id, "12.50", "12.13")], "g.csv")
    bad = write(tmp_path, ["t2;x;;;oops;1;USD;Success;2026-11-01T10:00:00Z;;;"], "b.csv")

    with pytest.raises(CommandError, match="Line 2"):
        call_command("import_provider_statement", "apay", str(bad))
    assert not StatementRow.objects.exists()

    call_command("import_provider_statement", "apay", str(good))
    assert "1 new" in capsys.readouterr().out
    call_command("import_provider_statement", "apay", str(good))
    assert "nothing changed" in capsys.readouterr().out


def test_payments_through_the_bot_reconcile_against_the_reports_api(
    webhook, fake_telegram, fake_apay, db, django_capture_on_commit_callbacks
):
    ProductFactory(sku="coins", title="500 coins", kind="topup", price=500, currency="USD")
    for _ in range(2):
        invoice = buy(fake_telegram, ALEX, "coins")
        assert fake_telegram.user_pay(ALEX, invoice["message_id"])["paid"]
    assert len(fake_apay.deposits) == 2
    start = timezone.now() - timedelta(days=40)

    results = statements.statement_fetch_import(start=start, end=timezone.now())

    # 40 days: two reports (A-Pay allows at most 31 days each).
    assert len(results) == 2
    assert [c for c in fake_apay.calls if c.startswith("POST")] == ["POST /reports/create"] * 2
    assert StatementRow.objects.filter(match="exact").count() == 2
    assert LedgerEntry.objects.filter(kind="fee").count() == 2
    assert open_kinds() == []

    again = statements.statement_fetch_import(start=start, end=timezone.now())
    assert [r.already for r in again] == [True, True] or all(
        r.statement.rows_new == 0 for r in again
    )
    assert LedgerEntry.objects.filter(kind="fee").count() == 2


def test_deposit_info_reads_apays_own_record(fake_apay, db):
    fake_apay.deposit_add(order_id="00000000000000ab", amount=600839, currency="INR",
                          status="Rejected")  # fmt: skip

    info = client.deposit_info(order_id="00000000000000ab")

    assert (info.status, info.amount, info.currency) == ("Rejected", 600839, "INR")
    with pytest.raises(client.APayError, match="404"):
        client.deposit_info(order_id="ffffffffffffffff")


def test_report_windows_are_at_most_31_days():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    windows = client.report_windows(start, start + timedelta(days=70))
    assert [(b - a).days for a, b in windows] == [31, 31, 8]


def test_apays_fees_show_in_the_settlement_which_still_equals_the_ledger(
    tmp_path, db, django_capture_on_commit_callbacks
):
    from django.db.models import Sum

    from payments.reports import Filters, SettlementReport, report_rows

    customer, product = CustomerFactory(), ProductFactory(price=1250, currency="USD")
    with django_capture_on_commit_callbacks(execute=True):
        payments = [paid_order(customer, product) for _ in range(2)]
    rows = [line(f"t{p.pk}", p.provider_payment_charge_id, "12.50", "12.13") for p in payments]
    do_import(write(tmp_path, rows))

    today = timezone.localdate()
    (row,) = report_rows("settlement", Filters(since=today, until=today, currency="USD"))
    by_name = dict(zip(SettlementReport.header, row, strict=True))
    assert (by_name["paid_minor"], by_name["fees_minor"], by_name["fees"]) == (2500, 74, "0.74")
    ledger = LedgerEntry.objects.filter(
        currency="USD", kind__in=["credit", "refund", "chargeback", "fee", "provider"]
    ).aggregate(t=Sum("amount"))["t"]
    assert by_name["net_minor"] == ledger == 2500 - 74
