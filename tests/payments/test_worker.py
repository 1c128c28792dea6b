"""With real Celery workers on Redis: every payment credited and receipted exactly once."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from botbridge import sending
from payments import tasks as payment_tasks
from payments.models import LedgerEntry, Payment
from shop.models import Message, Order
from tests.factories import CustomerFactory, ProductFactory, paid_order
from tests.worker import flush_broker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def paid_orders(fake, count: int) -> list[Payment]:
    """`count` orders paid through payment_record; each publishes its credit task on commit."""
    product = ProductFactory(sku="coins", price=500, currency="USD", kind="topup")
    customers = [CustomerFactory() for _ in range(20)]
    for customer in customers:
        fake._user({"id": customer.telegram_id})
    payments = []
    for n in range(count):
        payments.append(paid_order(customers[n % len(customers)], product))
    return payments


def credited_exactly_once(count: int) -> None:
    credits = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CREDIT)
    assert credits.count() == count
    per_payment = Counter(credits.values_list("payment_id", flat=True))
    assert set(per_payment.values()) == {1}
    assert Order.objects.filter(status=Order.Status.FULFILLED).count() == count
    receipts = Message.objects.filter(dedupe_key__startswith="receipt:payment:")
    assert receipts.count() == count
    # No receipt row was sent twice: one sendMessage per row at the fake Telegram.
    assert receipts.values("dedupe_key").annotate(n=Count("id")).filter(n__gt=1).count() == 0


def test_a_thousand_payments_delivered_with_duplicates_credit_exactly_a_thousand_times(
    real_broker, fake_telegram
):
    payments = paid_orders(fake_telegram, 1000)
    # Every credit task delivered twice more: redeliveries and a second worker's copy.
    for payment in payments:
        payment_tasks.payment_credit.delay(payment.pk)
        payment_tasks.payment_credit.delay(payment.pk)
    real_broker(concurrency=2)
    real_broker(concurrency=2)  # two workers competing for the same tasks

    def all_credited():
        return not Payment.objects.filter(credited_at__isnull=True).exists()

    wait_until(all_credited, timeout=180)
    wait_until(
        lambda: not Message.objects.filter(status__in=["queued", "sending"]).exists(), timeout=120
    )
    credited_exactly_once(1000)
    assert len(fake_telegram.calls("sendMessage")) == 1000


def test_a_worker_killed_mid_credit_loses_nothing_and_doubles_nothing(real_broker, fake_telegram):
    paid_orders(fake_telegram, 300)
    first = real_broker(concurrency=2, visibility_timeout=5)

    def some_credited():
        return Payment.objects.filter(credited_at__isnull=False).count() >= 20

    wait_until(some_credited, timeout=60, interval=0.02)
    first.kill()  # SIGKILL: tasks in hand are neither finished nor acknowledged
    left = Payment.objects.filter(credited_at__isnull=True).count()
    assert left > 0, "the worker finished everything before it was killed"

    # A new worker gets the unacknowledged tasks back once their visibility timeout passed.
    real_broker(concurrency=2, visibility_timeout=5)
    wait_until(lambda: not Payment.objects.filter(credited_at__isnull=True).exists(), timeout=120)
    # Receipts whose send task was lost with the worker (killed after the commit, before the
    # publish) are still queued rows: beat's requeue sends them. Run it as beat would, later.
    time.sleep(3)
    stranded = Message.objects.filter(status="queued")
    stranded.update(created_at=timezone.now() - timedelta(minutes=3))
    sending.message_requeue_due()
    wait_until(lambda: not Message.objects.filter(status="queued").exists(), timeout=60)
    credited_exactly_once(300)
    # Each receipt shown once, even those sent late.
    sent = Counter(int(c["params"]["chat_id"]) for c in fake_telegram.calls("sendMessage"))
    assert sum(sent.values()) == 300


def test_payments_whose_credit_task_was_lost_or_failed_are_all_credited_by_the_sweep(
    real_broker, fake_telegram, monkeypatch, caplog
):
    """Publishes lost (broker down; broker restarted empty) and a database error inside the
    credit task; then no traffic at all but beat's sweep: each payment credited once and
    receipted once."""
    from kombu.exceptions import OperationalError as BrokerDown

    from config.celery import app

    product = ProductFactory(sku="coins", price=500, currency="USD", kind="topup")
    customers = [CustomerFactory() for _ in range(10)]
    for customer in customers:
        fake_telegram._user({"id": customer.telegram_id})

    def pay(count: int) -> None:
        for n in range(count):
            paid_order(customers[n % len(customers)], product)

    # 1. The broker is down at the moment of payment: every publish fails, the payment stays.
    def broker_down(*args, **kwargs):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patch:
        patch.setattr(app, "producer_or_acquire", broker_down)
        pay(30)
    assert "Could not publish payments.payment_credit" in caplog.text
    # 2. Published, then the broker restarts empty before any worker took the tasks.
    pay(30)
    flush_broker()
    # 3. A worker whose database is unreachable takes the tasks: each fails with a database
    #    error and is retried with backoff instead of being dropped.
    broken = real_broker(env={"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"})
    pay(30)
    time.sleep(5)
    assert not Payment.objects.filter(credited_at__isnull=False).exists()
    broken.stop()

    # No new payment from here on: a healthy worker and beat's sweep (every 2 s here).
    real_broker(env={"PAYMENTS_CREDIT_GRACE_SECONDS": "2"})
    sweep = app.tasks["payments.credit_sweep"]

    def all_credited_and_receipted():
        sweep.delay()
        done = not Payment.objects.filter(credited_at__isnull=True).exists()
        return done and len(fake_telegram.calls("sendMessage")) >= 90

    wait_until(all_credited_and_receipted, timeout=180, interval=2)
    time.sleep(3)  # anything sent twice would show up by now
    credited_exactly_once(90)
    sent = Counter(int(c["params"]["chat_id"]) for c in fake_telegram.calls("sendMessage"))
    assert sum(sent.values()) == 90


def test_workers_reconcile_stars_once_however_many_runs_meet(real_broker, fake_telegram):
    """Four runs queued at once on two workers: one runs at a time, everything is stored and
    booked once (the external refund, its ledger entries, the differences)."""
    from botbridge import bot
    from botbridge import tasks as bot_tasks
    from payments.models import Difference, Refund, StarTransaction

    customer = CustomerFactory()
    fake_telegram._user({"id": customer.telegram_id})
    product = ProductFactory(price=250, currency="XTR", kind="topup")
    payments = [paid_order(customer, product, charge=f"stars-w-{i}") for i in range(3)]
    for payment in payments:
        fake_telegram.star_transaction_add(
            {"id": payment.telegram_payment_charge_id, "amount": 250, "source": {
                "type": "user", "transaction_type": "invoice_payment",
                "user": {"id": customer.telegram_id}}}
        )  # fmt: skip
    bot.refund_star_payment(user_id=customer.telegram_id, telegram_payment_charge_id="stars-w-0")
    for _ in range(4):
        bot_tasks.reconcile_stars.delay()
    real_broker(concurrency=2)
    real_broker(concurrency=2)

    wait_until(lambda: Refund.objects.filter(source="telegram").exists(), timeout=60)
    wait_until(lambda: not Payment.objects.filter(credited_at__isnull=True).exists(), timeout=60)
    time.sleep(2)  # the other runs finish (or are refused) too
    assert StarTransaction.objects.count() == 4
    assert Refund.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert list(Difference.objects.values_list("kind", flat=True)) == ["external_refund"]
