"""Telegram Stars reconciliation against the local Telegram's own transaction list.

Each kind of difference is staged as it happens: a purchase through the bot, an update that
never arrived, a refund made in Telegram, a chargeback, Telegram's own movements.
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from botbridge import bot
from botbridge.reconcile import stars_reconcile
from payments import services as payment_services
from payments.models import (
    Difference,
    LedgerEntry,
    Payment,
    Refund,
    StarBalanceSnapshot,
    StarTransaction,
)
from payments.reports import Filters, report_rows
from payments.services import stars_reconciliation
from shop.models import Order
from shop.payload import payload_sign
from tests.botbridge.test_purchase_flow import ALEX, MASHA, buy
from tests.factories import CustomerFactory, ProductFactory, paid_order

pytestmark = pytest.mark.django_db

Kind = Difference.Kind


@pytest.fixture(autouse=True)
def _no_horizon(settings):
    settings.RECONCILE_HORIZON_SECONDS = 0


@pytest.fixture
def stars_product(db):
    return ProductFactory(sku="vip", title="VIP pass", kind="topup", price=250, currency="XTR")


def open_kinds() -> list[str]:
    return sorted(
        Difference.objects.filter(status=Difference.Status.OPEN).values_list("kind", flat=True)
    )


def books() -> tuple:
    """Everything a second run must leave as it was."""
    return (
        StarTransaction.objects.count(),
        LedgerEntry.objects.count(),
        Payment.objects.count(),
        Refund.objects.count(),
        sorted(Difference.objects.values_list("key", "status")),
        StarBalanceSnapshot.objects.count(),
    )


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Call a service and run what it published on commit (crediting, the refund task)."""

    def call(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return call


def sale(fake, user, charge, amount, payload=""):
    return fake.star_transaction_add(
        {"id": charge, "amount": amount, "source": {"type": "user",
         "transaction_type": "invoice_payment", "user": user, "invoice_payload": payload}}
    )  # fmt: skip


def test_purchases_through_the_bot_reconcile_cleanly_and_a_second_run_changes_nothing(
    webhook, fake_telegram, stars_product
):
    for user in (ALEX, MASHA):
        invoice = buy(fake_telegram, user, "vip")
        assert fake_telegram.user_pay(user, invoice["message_id"])["paid"]

    run = stars_reconcile()

    assert (run.read, run.new) == (2, 2)
    assert StarTransaction.objects.filter(payment__isnull=False).count() == 2
    assert open_kinds() == []
    assert run.snapshot.amount == 500 and run.snapshot.adds_up
    before = books()
    calls = len(fake_telegram.calls("getStarTransactions"))

    again = stars_reconcile()

    assert again.new == 0
    assert books() == before
    # Only the last known page is read again.
    assert len(fake_telegram.calls("getStarTransactions")) - calls == 1


def test_pages_of_100_and_resumes_after_the_last_known_page(fake_telegram, db):
    customer = CustomerFactory()
    for i in range(250):
        sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, f"stars-x-{i}", 1)

    run = stars_reconcile()

    assert (run.read, run.new) == (250, 250)
    offsets = [
        int(c["params"].get("offset", 0)) for c in fake_telegram.calls("getStarTransactions")
    ]
    assert offsets == [0, 100, 200]
    assert all(int(c["params"]["limit"]) == 100 for c in fake_telegram.calls("getStarTransactions"))
    assert list(StarTransaction.objects.values_list("position", flat=True)[:3]) == [0, 1, 2]
    # Every sale is missing here: none was recorded.
    assert open_kinds() == [Kind.MISSING_HERE] * 250

    sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, "stars-x-250", 1)
    before = len(fake_telegram.calls("getStarTransactions"))
    run = stars_reconcile()

    assert run.new == 1
    offsets = [
        int(c["params"].get("offset", 0)) for c in fake_telegram.calls("getStarTransactions")
    ]
    assert offsets[before:] == [150, 250]


def test_a_payment_whose_update_was_lost_is_found_recorded_by_staff_and_credited_once(
    webhook, fake_telegram, stars_product, finance_user, committed
):
    invoice = buy(fake_telegram, ALEX, "vip")
    order = Order.objects.get()
    # Telegram took the Stars; the successful_payment never reached the bot.
    assert invoice["invoice"]["total_amount"] == 250
    fake_telegram.pay_unheard(ALEX, "XTR", 250, payload_sign(order.reference))

    stars_reconcile()

    missing = Difference.objects.get(kind=Kind.MISSING_HERE)
    assert (missing.their_amount, missing.our_amount, missing.is_open) == (250, None, True)
    assert not Payment.objects.exists()

    payment = committed(
        stars_reconciliation.star_payment_record,
        star_transaction=missing.star_transaction,
        actor=finance_user,
    )

    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.order == order and order.is_paid
    assert payment.credited_at is not None
    assert LedgerEntry.objects.filter(kind="credit", payment=payment).count() == 1
    missing.refresh_from_db()
    assert (missing.status, missing.resolved_by) == (Difference.Status.RESOLVED, finance_user)
    with pytest.raises(Exception, match="already recorded"):
        stars_reconciliation.star_payment_record(star_transaction=missing.star_transaction)
    before = books()
    stars_reconcile()
    assert books() == before
    assert open_kinds() == []


def test_recorded_here_but_absent_at_telegram_and_amounts_that_differ(fake_telegram, db):
    customer = CustomerFactory()
    product = ProductFactory(price=250, currency="XTR")
    absent = paid_order(customer, product, charge="stars-absent-1")
    differs = paid_order(customer, product, charge="stars-differs-1")
    user = {"id": customer.telegram_id, "first_name": "B"}
    sale(fake_telegram, user, differs.telegram_payment_charge_id, 300)

    stars_reconcile()

    assert open_kinds() == [Kind.AMOUNT, Kind.MISSING_THERE]
    amount = Difference.objects.get(kind=Kind.AMOUNT)
    assert (amount.payment, amount.our_amount, amount.their_amount) == (differs, 250, 300)
    assert Difference.objects.get(kind=Kind.MISSING_THERE).payment == absent


def test_a_refund_made_in_telegram_is_recorded_once_as_external(fake_telegram, db):
    customer = CustomerFactory()
    payment = paid_order(customer, ProductFactory(price=250, currency="XTR"), charge="stars-r-1")
    user = {"id": customer.telegram_id, "first_name": "B"}
    sale(fake_telegram, user, payment.telegram_payment_charge_id, 250)
    # Made in Telegram, not from the back office (and its update never arrived).
    bot.refund_star_payment(user_id=customer.telegram_id, telegram_payment_charge_id="stars-r-1")

    stars_reconcile()
    stars_reconcile()

    refund = Refund.objects.get()
    assert (refund.source, refund.status, refund.amount) == ("telegram", "completed", 250)
    assert LedgerEntry.objects.filter(refund=refund, kind="refund").count() == 1
    assert open_kinds() == [Kind.EXTERNAL_REFUND]
    assert StarTransaction.objects.get(direction="out").refund == refund


def test_already_refunded_is_confirmed_by_the_outgoing_transaction_not_assumed(
    fake_telegram, db, finance_user, committed
):
    customer = CustomerFactory()
    payment = paid_order(customer, ProductFactory(price=250, currency="XTR"), charge="stars-a-1")
    sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, "stars-a-1", 250)
    # Telegram refused with CHARGE_ALREADY_REFUNDED but has no refund in its list.
    fake_telegram.fail(
        method="refundStarPayment", error_code=400,
        description="Bad Request: CHARGE_ALREADY_REFUNDED",
    )  # fmt: skip

    refund = committed(
        payment_services.refund_create,
        payment=payment,
        amount=250,
        reason="customer_request",
        author=finance_user,
    )

    refund.refresh_from_db()
    assert refund.status == Refund.Status.PENDING
    assert "CHARGE_ALREADY_REFUNDED" in refund.error
    assert not LedgerEntry.objects.filter(kind="refund").exists()
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(hours=2))
    stars_reconcile()
    assert open_kinds() == [Kind.REFUND_NOT_MADE]

    # Now Telegram's list shows the refund: the pending refund completes, once.
    fake_telegram.star_transaction_add(
        {"id": "stars-a-1", "amount": 250, "receiver": {"type": "user",
         "transaction_type": "invoice_payment", "user": {"id": customer.telegram_id}}}
    )  # fmt: skip
    stars_reconcile()
    stars_reconcile()

    refund.refresh_from_db()
    assert (refund.status, refund.source) == (Refund.Status.COMPLETED, "staff")
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert open_kinds() == []


def test_a_refund_pending_since_before_the_window_is_found_and_closed_when_made(
    fake_telegram, db, committed
):
    """The default window starts on the day of Telegram's first transaction: a refund asked
    for days before it (or just before midnight) is still a problem while it is pending."""
    customer = CustomerFactory()
    payment = paid_order(customer, ProductFactory(price=250, currency="XTR"), charge="stars-w-1")
    sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, "stars-w-1", 250)
    fake_telegram.fail(
        method="refundStarPayment", error_code=400,
        description="Bad Request: CHARGE_ALREADY_REFUNDED",
    )  # fmt: skip
    refund = committed(
        payment_services.refund_create, payment=payment, amount=250, reason="customer_request"
    )
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(days=3))
    stars_reconcile()
    assert open_kinds() == [Kind.REFUND_NOT_MADE]
    fake_telegram.star_transaction_add(
        {"id": "stars-w-1", "amount": 250, "receiver": {"type": "user",
         "transaction_type": "invoice_payment", "user": {"id": customer.telegram_id}}}
    )  # fmt: skip
    stars_reconcile()
    refund.refresh_from_db()
    assert refund.status == Refund.Status.COMPLETED
    assert open_kinds() == []
    closed = Difference.objects.get(kind=Kind.REFUND_NOT_MADE)
    assert "now has the refund" in closed.resolution


def test_our_refund_that_telegram_never_made(fake_telegram, db):
    customer = CustomerFactory()
    payment = paid_order(customer, ProductFactory(price=250, currency="XTR"), charge="stars-n-1")
    sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, "stars-n-1", 250)
    refund = payment_services.refund_request(payment=payment, amount=250, reason="other")
    payment_services.refund_complete(refund=refund, external_reference="stars-n-1")

    stars_reconcile()

    difference = Difference.objects.get(status="open")
    assert (difference.kind, difference.refund, difference.our_amount) == (
        Kind.REFUND_NOT_MADE,
        refund,
        250,
    )


def test_telegrams_own_movements_are_provider_items_and_the_balance_adds_up_to_the_nanostar(
    fake_telegram, db, committed
):
    customer = CustomerFactory()
    product = ProductFactory(price=1000, currency="XTR")
    payment = committed(paid_order, customer, product, charge="stars-m-1")
    sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, "stars-m-1", 1000)
    add = fake_telegram.star_transaction_add
    add({"id": "w-1", "amount": 600, "receiver": {"type": "fragment"}})
    add({"id": "ads-1", "amount": 50, "receiver": {"type": "telegram_ads"}})
    add({"id": "api-1", "amount": 3, "nanostar_amount": 250_000_000,
         "receiver": {"type": "telegram_api", "request_count": 3250}})  # fmt: skip
    add({"id": "aff-1", "amount": 12, "nanostar_amount": 500_000_000,
         "source": {"type": "affiliate_program", "commission_per_mille": 100}})  # fmt: skip

    run = stars_reconcile()

    kinds = dict(StarTransaction.objects.values_list("transaction_id", "kind"))
    assert kinds == {"stars-m-1": "sale", "w-1": "withdrawal", "ads-1": "ads",
                     "api-1": "api_fee", "aff-1": "affiliate"}  # fmt: skip
    # 1000 - 600 - 50 - 3.25 + 12.5 = 359.25 Stars, as Telegram says.
    assert run.snapshot.reported_nanos == 359_250_000_000
    assert run.snapshot.computed_nanos == run.snapshot.reported_nanos
    assert open_kinds() == []
    items = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PROVIDER)
    assert sorted(items.values_list("amount", flat=True)) == [-600, -50, -3, 12]
    assert all(entry.customer_id is None for entry in items)
    statement = stars_reconciliation.stars_statement(
        start=timezone.now() - timedelta(days=1), end=timezone.now() + timedelta(days=1)
    )
    assert statement.opening_nanos == 0
    assert statement.closing_nanos == statement.opening_nanos + sum(
        line.nanos for line in statement.lines
    )
    assert statement.closing_nanos == run.snapshot.reported_nanos
    # The settlement shows them as the merchant's own items and still equals the ledger.
    today = timezone.localdate()
    rows = list(report_rows("settlement", Filters(since=today, until=today, provider="stars")))
    (row,) = rows
    assert row[1] == "XTR"
    ledger_total = LedgerEntry.objects.filter(
        kind__in=["credit", "refund", "chargeback", "fee", "provider"], currency="XTR"
    ).aggregate(t=Sum("amount"))["t"]
    assert row[-2] == ledger_total == 1000 - 600 - 50 - 3 + 12
    assert payment.ledger_entries.filter(kind="credit").exists()
    before = books()
    stars_reconcile()
    assert books() == before


def test_a_stars_chargeback_is_booked_once_and_shown(fake_telegram, db):
    customer = CustomerFactory()
    payment = paid_order(customer, ProductFactory(price=250, currency="XTR"), charge="stars-c-1")
    sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, "stars-c-1", 250)
    fake_telegram.star_transaction_add(
        {"id": "stars-c-1", "amount": 250, "receiver": {"type": "other"}}
    )

    stars_reconcile()
    stars_reconcile()

    assert open_kinds() == [Kind.CHARGEBACK]
    assert LedgerEntry.objects.filter(payment=payment, kind="chargeback").count() == 1
    assert LedgerEntry.objects.filter(payment=payment, kind="adjustment").count() <= 1


def test_a_balance_that_does_not_add_up_is_a_difference(fake_telegram, db, monkeypatch):
    customer = CustomerFactory()
    sale(fake_telegram, {"id": customer.telegram_id, "first_name": "B"}, "stars-b-1", 100)
    monkeypatch.setattr(bot, "get_my_star_balance", lambda: {"amount": 90, "nanostar_amount": 0})

    stars_reconcile()

    balance = Difference.objects.get(kind=Kind.BALANCE)
    assert (balance.our_amount, balance.their_amount) == (100, 90)


def test_resolving_needs_a_note_and_keeps_who_and_when(fake_telegram, db, finance_user):
    customer = CustomerFactory()
    paid_order(customer, ProductFactory(price=250, currency="XTR"), charge="stars-z-1")
    stars_reconcile()
    difference = Difference.objects.get()

    with pytest.raises(Exception, match="Say what you found"):
        payment_services.difference_resolve(difference=difference, note=" ", actor=finance_user)
    payment_services.difference_resolve(
        difference=difference, note="Test charge from the launch day.", actor=finance_user
    )

    difference.refresh_from_db()
    assert (difference.status, difference.resolved_by) == ("resolved", finance_user)
    # A later run finds it again and leaves it resolved.
    stars_reconcile()
    assert Difference.objects.get().status == "resolved"


def test_the_command_prints_what_it_did(fake_telegram, db, capsys):
    call_command("reconcile_stars", "--since", "2026-01-01")
    assert "Read 0 transactions" in capsys.readouterr().out


def test_one_run_at_a_time_across_processes(fake_telegram, db):
    """The lock is PostgreSQL's: another connection (another worker) holding it stops a run."""
    import psycopg
    from django.db import connection

    from botbridge import reconcile
    from payments import bulk

    key_sql = "SELECT pg_advisory_lock(%s)"
    name = reconcile.LOCK_NAME
    key = int.from_bytes(bulk.hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    params = connection.get_connection_params()
    dsn = {k: v for k, v in params.items() if k in ("host", "port", "user", "dbname", "password")}
    with psycopg.connect(**dsn) as other:
        other.execute(key_sql, [key])
        with pytest.raises(Exception, match="already running"):
            stars_reconcile()
        # Let go here: a closed connection's backend may still hold the lock for a moment.
        other.execute("SELECT pg_advisory_unlock(%s)", [key])
    assert stars_reconcile().read == 0


def test_the_local_telegram_answers_as_the_bot_api_says(fake_telegram, db):
    from botbridge.sandbox.server import ApiError

    with pytest.raises(ApiError, match="between 1 and 100"):
        fake_telegram.call(fake_telegram.state.token, "getStarTransactions", {"limit": 101})
    with pytest.raises(ApiError, match="unknown parameter|not expected|unexpected"):
        fake_telegram.call(fake_telegram.state.token, "getMyStarBalance", {"user_id": 1})
    assert fake_telegram.call(fake_telegram.state.token, "getMyStarBalance", {}) == {"amount": 0}


def test_the_sandbox_starts_from_the_books_so_a_fresh_run_reconciles_cleanly(
    fake_telegram, fake_apay, db, committed
):
    from botbridge.management.commands.run_telegram_sandbox import _seed_from_books
    from payments.services import statements

    customer = CustomerFactory()
    stars = committed(paid_order, customer, ProductFactory(price=300, currency="XTR"))
    committed(paid_order, customer, ProductFactory(price=1250, currency="USD"))
    refund = payment_services.refund_request(payment=stars, amount=300, reason="other")
    payment_services.refund_complete(refund=refund, external_reference="x")

    assert "2 Stars transactions and 1 A-Pay deposits" in _seed_from_books(fake_telegram, fake_apay)

    stars_reconcile()
    statements.statement_fetch_import(
        start=timezone.now() - timedelta(days=1), end=timezone.now() + timedelta(minutes=1)
    )
    assert open_kinds() == []
