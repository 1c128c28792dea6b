"""With real Celery workers on Redis: the outbox's error handling, and commands going
webhook → dispatcher → workers, each handled once and each chat in order."""

from collections import Counter

import pytest

from botbridge.models import TelegramUpdate
from shop import outbox
from shop.models import Customer, Message
from tests.factories import CustomerFactory
from tests.worker import Dispatcher, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


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
