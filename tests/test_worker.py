"""With real Celery workers on Redis: exactly-once crediting, the outbox's error handling, and
commands going webhook → dispatcher → workers."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from botbridge import sending
from botbridge.models import TelegramUpdate
from config.celery import app
from payments import tasks as payment_tasks
from payments.models import LedgerEntry, Payment
from shop import outbox
from shop.models import Customer, Message, Order
from tests.factories import CustomerFactory, ProductFactory, paid_order
from tests.worker import Dispatcher, Worker, flush_broker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def real_broker(settings, fake_telegram):
    """Tasks go to Redis for a worker process instead of running in this one."""
    flush_broker()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    workers: list[Worker] = []

    def start(**kwargs) -> Worker:
        worker = Worker(fake_telegram, **kwargs).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_always_eager = True
    flush_broker()


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


def test_outbox_honours_429_retries_5xx_and_gives_up_on_403(real_broker, fake_telegram):
    flood, flaky, gone = (CustomerFactory() for _ in range(3))
    for customer in (flood, flaky, gone):
        fake_telegram._user({"id": customer.telegram_id})
    fake_telegram.fail(
        method="sendMessage",
        error_code=429,
        description="Too Many Requests: retry after 2",
        retry_after=2,
        chat_id=flood.telegram_id,
    )
    fake_telegram.fail(
        method="sendMessage",
        error_code=502,
        description="Bad Gateway",
        times=2,
        chat_id=flaky.telegram_id,
    )
    fake_telegram.fail(
        method="sendMessage",
        error_code=403,
        description="Forbidden: bot was blocked by the user",
        times=5,
        chat_id=gone.telegram_id,
    )
    rows = {
        name: outbox.message_queue(customer=customer, text=f"Hello {name}")
        for name, customer in (("flood", flood), ("flaky", flaky), ("gone", gone))
    }
    real_broker(concurrency=2)

    def settled():
        return not Message.objects.filter(status__in=["queued", "sending"]).exists()

    wait_until(settled, timeout=60)
    state = {name: Message.objects.get(pk=row.pk) for name, row in rows.items()}
    assert state["flood"].status == "sent" and state["flood"].attempts == 1
    assert state["flaky"].status == "sent" and state["flaky"].attempts == 3
    assert state["gone"].status == "failed" and "403" in state["gone"].error
    assert Customer.objects.get(pk=gone.pk).has_blocked_bot
    sent = Counter(int(c["params"]["chat_id"]) for c in fake_telegram.calls("sendMessage"))
    # The flood-waited and flaky rows were tried until they got through, and shown once.
    assert sent[flood.telegram_id] == 2 and sent[flaky.telegram_id] == 3
    assert sent[gone.telegram_id] == 1


def test_commands_reach_the_workers_through_the_dispatcher_in_each_chats_order(
    real_broker, fake_telegram, client, settings
):
    """The webhook only stores; the dispatcher process wakes lanes; two workers drain them."""
    real_broker(concurrency=2)
    real_broker(concurrency=2)
    dispatcher = Dispatcher(fake_telegram).start()
    chats = [710000 + n for n in range(12)]
    for chat in chats:
        fake_telegram._user({"id": chat})
    rounds = 6
    try:
        update_id = 9000
        for _ in range(rounds):
            for chat in chats:
                update_id += 1
                user = {"id": chat, "is_bot": False, "first_name": "W", "language_code": "en"}
                update = {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id,
                        "from": user,
                        "chat": {"id": chat, "type": "private"},
                        "date": 1_763_800_000,
                        "text": "/help",
                    },
                }
                response = client.post(
                    "/telegram/webhook/",
                    data=update,
                    content_type="application/json",
                    headers={"X-Telegram-Bot-Api-Secret-Token": settings.TELEGRAM_WEBHOOK_SECRET},
                )
                assert response.status_code == 200
        total = rounds * len(chats)

        def all_handled():
            return TelegramUpdate.objects.filter(status="processed").count() == total

        wait_until(all_handled, timeout=60)
        wait_until(lambda: len(fake_telegram.calls("sendMessage")) >= total, timeout=60)
    finally:
        dispatcher.stop()
    assert set(TelegramUpdate.objects.values_list("attempts", flat=True)) == {1}
    assert len(fake_telegram.calls("sendMessage")) == total  # one reply each, none twice
    for chat in chats:
        # Inbound rows are written as each update is handled: their order is the handling order.
        handled = list(
            Message.objects.filter(chat_id=chat, direction="in")
            .order_by("pk")
            .values_list("telegram_update_id", flat=True)
        )
        assert len(handled) == rounds
        assert handled == sorted(handled), f"chat {chat} handled out of order: {handled}"
    assert dispatcher.process.returncode == 0  # stopped cleanly by SIGTERM
