import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from botbridge.models import TelegramUpdate
from payments.models import Payment
from shop.models import Order
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_set_telegram_webhook_registers_url_secret_updates_and_connections(fake_telegram, capsys):
    call_command(
        "set_telegram_webhook", url="https://shop.example.com/telegram/webhook/", max_connections=40
    )
    params = fake_telegram.calls("setWebhook")[-1]["params"]
    assert params["url"] == "https://shop.example.com/telegram/webhook/"
    assert params["secret_token"] == "test-webhook-secret"
    assert json.loads(params["allowed_updates"]) == [
        "message",
        "callback_query",
        "pre_checkout_query",
        "shipping_query",
    ]
    assert params["max_connections"] == "40"
    assert fake_telegram.state.webhook_url == "https://shop.example.com/telegram/webhook/"


def test_set_telegram_webhook_refuses_without_a_url(fake_telegram, settings):
    settings.TELEGRAM_WEBHOOK_URL = ""
    with pytest.raises(CommandError, match="TELEGRAM_WEBHOOK_URL"):
        call_command("set_telegram_webhook", url="")
    assert fake_telegram.calls() == []


def test_delete_webhook_and_sync_commands(fake_telegram):
    fake_telegram.state.webhook_url = "https://x/"
    call_command("delete_telegram_webhook")
    assert fake_telegram.state.webhook_url == ""
    call_command("sync_bot_commands")
    assert [c["command"] for c in fake_telegram.state.commands[""]] == [
        "start",
        "catalog",
        "cart",
        "promo",
        "orders",
        "subscriptions",
        "balance",
        "terms",
        "support",
        "paysupport",
        "stop_reminders",
        "help",
    ]
    assert fake_telegram.state.commands["ru"][1]["description"] == "Каталог и покупки"


def test_run_bot_polling_goes_through_the_same_code_path(
    fake_telegram, django_capture_on_commit_callbacks
):
    fake_telegram.state.webhook_url = ""
    fake_telegram.user_message({"id": 616161, "first_name": "Poll"}, "/help")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_bot_polling", once=True)
    row = TelegramUpdate.objects.get()
    assert row.status == "received"  # stored for the worker, as the webhook stores it
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_update_dispatcher", once=True, stdout=out)
    assert "Woke 1 lane(s)." in out.getvalue()
    row.refresh_from_db()
    assert row.status == "processed"
    assert fake_telegram.calls("sendMessage")[-1]["params"]["chat_id"] == "616161"


def test_run_bot_polling_answers_a_pre_checkout_query_with_a_call(
    fake_telegram, django_capture_on_commit_callbacks
):
    fake_telegram.state.webhook_url = ""
    fake_telegram.state.queries["poll-q"] = {"kind": "pre_checkout", "answer": None}
    user = {"id": 616162, "is_bot": False, "first_name": "Poll", "language_code": "en"}
    fake_telegram.deliver(
        fake_telegram.new_update(
            pre_checkout_query={
                "id": "poll-q",
                "from": user,
                "currency": "USD",
                "total_amount": 500,
                "invoice_payload": "forged",
            }
        )
    )
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_bot_polling", once=True)
    answer = fake_telegram.state.queries["poll-q"]["answer"]
    assert answer["ok"] is False
    assert answer["error_message"]
    assert TelegramUpdate.objects.get().reply["method"] == "answerPreCheckoutQuery"


def test_run_update_dispatcher_refuses_a_bad_interval():
    with pytest.raises(SystemExit):
        call_command("run_update_dispatcher", once=True, interval=0, stderr=StringIO())


def test_fake_telegram_checks_calls_against_the_bot_api_spec(fake_telegram):
    from botbridge.sandbox.server import ApiError

    with pytest.raises(ApiError, match="parameter text is required"):
        fake_telegram.call("123456:test-token", "sendMessage", {"chat_id": "1"})
    with pytest.raises(ApiError, match="unknown parameter colour"):
        fake_telegram.call(
            "123456:test-token", "sendMessage", {"chat_id": "1", "text": "x", "colour": "red"}
        )
    with pytest.raises(ApiError, match="can't parse parameter chat_id"):
        fake_telegram.call("123456:test-token", "sendMessage", {"chat_id": {"a": 1}, "text": "x"})
    with pytest.raises(ApiError, match="Unauthorized"):
        fake_telegram.call("wrong", "getMe", {})
    assert fake_telegram.call("123456:test-token", "getMe", {})["is_bot"] is True
    from botbridge.sandbox.server import SPEC

    assert SPEC["version"].startswith("Bot API")


def test_sandbox_page_is_staff_only(client):
    response = client.get("/sandbox/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_sandbox_page_completes_a_purchase_through_the_real_webhook(
    live_server, fake_telegram, manager_client, settings
):
    """The person's clicks go page → local Telegram → live webhook (HTTP all the way)."""
    settings.TELEGRAM_HANDLE_IN_WORKER = False  # as `make run` runs: replies in the request
    fake_telegram.state.webhook_url = f"{live_server.url}/telegram/webhook/"
    fake_telegram.state.secret_token = "test-webhook-secret"
    ProductFactory(sku="coins", title="500 coins", price=500, currency="USD")

    manager_client.post("/sandbox/send/", {"text": "/catalog", "lang": "en"})
    page = manager_client.get("/sandbox/?lang=en").content.decode()
    assert "Buy 500 coins · 5.00 USD" in page

    def message_with(data):
        for entry in reversed(fake_telegram.chat(700000001)):
            rows = entry["message"].get("reply_markup", {}).get("inline_keyboard", [])
            if any(b["callback_data"] == data for row in rows for b in row):
                return entry["message"]["message_id"]
        raise AssertionError(data)

    manager_client.post(
        "/sandbox/press/",
        {"message_id": message_with("buy:coins"), "data": "buy:coins", "lang": "en"},
    )
    manager_client.post(
        "/sandbox/press/",
        {"message_id": message_with("terms:coins"), "data": "terms:coins", "lang": "en"},
    )
    invoice = [e for e in fake_telegram.chat(700000001) if "invoice" in e["message"]][-1]["message"]
    page = manager_client.get("/sandbox/?lang=en").content.decode()
    assert "Pay 5.00 USD" in page

    manager_client.post(
        "/sandbox/pay/", {"message_id": invoice["message_id"], "outcome": "success", "lang": "en"}
    )

    order = Order.objects.get()
    assert order.status == Order.Status.FULFILLED
    assert Payment.objects.get().amount == 500
    page = manager_client.get("/sandbox/?lang=en").content.decode()
    assert f"Receipt for order {order.reference}" in page
    assert all(d["status"] == 200 for d in fake_telegram.state.deliveries)


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_loop_hands_stored_updates_to_the_worker(fake_telegram, client):
    """Webhook stores, the dispatcher (a thread here) wakes the lane, the drain replies."""
    import threading
    import time

    from botbridge import services

    stop = threading.Event()
    loop = threading.Thread(
        target=services.updates_dispatch_forever, kwargs={"interval": 0.05, "stop": stop}
    )
    loop.start()
    try:
        update = fake_telegram.new_update(
            message={
                "message_id": 1,
                "date": 1,
                "chat": {"id": 626262, "type": "private"},
                "from": {"id": 626262, "is_bot": False, "first_name": "D"},
                "text": "/help",
            }
        )
        response = client.post(
            "/telegram/webhook/",
            data=update,
            content_type="application/json",
            headers={"X-Telegram-Bot-Api-Secret-Token": "test-webhook-secret"},
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while not fake_telegram.calls("sendMessage") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive()
    assert TelegramUpdate.objects.get().status == "processed"
    assert fake_telegram.calls("sendMessage")[0]["params"]["chat_id"] == "626262"


def test_sandbox_is_mounted_only_while_the_sandbox_is_on(settings):
    import importlib

    from django.urls import Resolver404, clear_url_caches, resolve

    import config.urls

    try:
        settings.TELEGRAM_SANDBOX = False
        importlib.reload(config.urls)
        clear_url_caches()
        with pytest.raises(Resolver404):
            resolve("/sandbox/")
        assert resolve("/telegram/webhook/").url_name == "telegram-webhook"
    finally:
        settings.TELEGRAM_SANDBOX = True
        importlib.reload(config.urls)
        clear_url_caches()
    assert resolve("/sandbox/").url_name


def test_old_message_admin_links_land_on_the_shop_messages(manager_client):
    response = manager_client.get("/admin/botbridge/message/?status__exact=failed")
    assert response.status_code == 302
    assert response["Location"] == "/admin/shop/message/?status__exact=failed"
    response = manager_client.get("/admin/botbridge/message/7/change/")
    assert response["Location"] == "/admin/shop/message/7/change/"
