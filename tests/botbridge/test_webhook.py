import json
import threading

import pytest
from django.db import OperationalError, close_old_connections

from botbridge import fastpath, handlers, services
from botbridge.models import TelegramUpdate
from payments.models import LedgerEntry, Payment, Refund
from shop import services as shop_services
from shop.models import Customer, Message, Order
from shop.payload import payload_sign
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def text_update(update_id, text="/help", user_id=555):
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "from": {"id": user_id, "is_bot": False, "first_name": "Pat", "language_code": "en"},
            "chat": {"id": user_id, "type": "private", "first_name": "Pat"},
            "date": 1_763_800_000,
            "text": text,
        },
    }


def pre_checkout_update(
    update_id,
    order,
    *,
    query_id,
    user_id=None,
    amount=None,
    currency=None,
    payload=None,
    language_code="en",
    first_name="Pat",
):
    return {
        "update_id": update_id,
        "pre_checkout_query": {
            "id": query_id,
            "from": {
                "id": user_id or order.customer.telegram_id,
                "is_bot": False,
                "first_name": first_name,
                "language_code": language_code,
            },
            "currency": currency or order.currency,
            "total_amount": order.total_amount if amount is None else amount,
            "invoice_payload": payload if payload is not None else payload_sign(order.reference),
        },
    }


def payment_update(
    update_id, order, *, charge="tg-charge-1", amount=None, currency=None, payload=None
):
    user = order.customer.telegram_id
    return {
        "update_id": update_id,
        "message": {
            "message_id": 9,
            "from": {"id": user, "is_bot": False, "first_name": "Pat"},
            "chat": {"id": user, "type": "private"},
            "date": 1_763_800_000,
            "successful_payment": {
                "currency": currency or order.currency,
                "total_amount": order.total_amount if amount is None else amount,
                "invoice_payload": payload or payload_sign(order.reference),
                "telegram_payment_charge_id": charge,
                "provider_payment_charge_id": f"apay-{charge}",
            },
        },
    }


def test_forged_secret_is_refused_and_nothing_stored(webhook):
    for secret in ("wrong", ""):
        response = webhook.post(text_update(1), secret=secret)
        assert response.status_code == 403
    assert not TelegramUpdate.objects.exists()
    assert not Customer.objects.exists()


def test_malformed_bodies_get_400_and_change_nothing(webhook):
    for body in (
        b"{not json",
        b"\xff\xfe",
        "[1, 2]",
        '"text"',
        '{"message": {}}',
        '{"update_id": "7"}',
        '{"update_id": true}',
        '{"update_id": -1}',
    ):
        response = webhook.post(body)
        assert response.status_code == 400, body
    assert not TelegramUpdate.objects.exists()


def test_oversized_body_gets_413(webhook, settings):
    settings.TELEGRAM_WEBHOOK_MAX_BODY = 1000
    update = text_update(1, text="x" * 2000)
    assert webhook.post(update).status_code == 413
    assert not TelegramUpdate.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get("/telegram/webhook/").status_code == 405


def test_unknown_update_kind_is_stored_and_answered_200(webhook, fake_telegram):
    response = webhook.post({"update_id": 10, "poll": {"id": "1", "question": "?"}})
    assert response.status_code == 200
    row = TelegramUpdate.objects.get(update_id=10)
    assert (row.kind, row.status) == ("poll", "processed")
    assert fake_telegram.calls() == []


def test_redelivered_update_has_no_further_effect(webhook, fake_telegram):
    assert webhook.post(text_update(20)).status_code == 200
    assert webhook.post(text_update(20)).status_code == 200
    assert TelegramUpdate.objects.count() == 1
    assert Message.objects.filter(direction="in").count() == 1
    assert len(fake_telegram.calls("sendMessage")) == 1


def test_a_bug_while_handling_is_recorded_answered_200_and_replayable(
    webhook, fake_telegram, monkeypatch, manager_client
):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(handlers.COMMANDS, "help", broken)
    response = webhook.post(text_update(30))

    assert response.status_code == 200
    row = TelegramUpdate.objects.get(update_id=30)
    assert row.status == "failed"
    assert "RuntimeError: boom" in row.error
    # The handler's partial work was rolled back with it; the raw update is kept, and staff
    # are alerted (once).
    assert not Message.objects.exclude(dedupe_key__startswith="alert:").exists()
    assert Message.objects.filter(dedupe_key="alert:update:30:failed").count() == 1
    assert fake_telegram.calls("sendMessage") == []
    # The next update is not blocked by it.
    monkeypatch.undo()
    assert webhook.post(text_update(31, "/start")).status_code == 200
    assert TelegramUpdate.objects.get(update_id=31).status == "processed"

    with webhook.capture(execute=True):
        response = manager_client.post(
            "/admin/botbridge/telegramupdate/",
            {"action": "replay", "_selected_action": [row.pk]},
            follow=True,
        )
    assert "Replayed 1 update" in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("processed", 2, "")
    assert len(fake_telegram.calls("sendMessage")) == 2


def test_a_bug_while_handling_in_the_request_rolls_back_and_keeps_the_update_failed(
    webhook, fake_telegram, invoiced_order, monkeypatch
):
    from shop.models import SupportRequest

    def broken(**kwargs):
        # Some work done before the bug: it must not survive it.
        SupportRequest.objects.create(customer=invoiced_order.customer, text="half-done")
        raise RuntimeError("checkout boom")

    monkeypatch.setattr(handlers.shop_services, "order_checkout", broken)
    update = pre_checkout_update(33, invoiced_order, query_id="bug-1")
    response = webhook.post_raw(update)
    assert response.status_code == 200
    assert "method" not in response.json()
    row = TelegramUpdate.objects.get(update_id=33)
    assert (row.status, row.attempts, row.reply) == ("failed", 1, None)
    assert "RuntimeError: checkout boom" in row.error
    assert row.payload == update
    assert not SupportRequest.objects.exists()

    monkeypatch.undo()
    services.update_replay(update=row)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("processed", 2)


def test_replay_refuses_an_update_that_did_not_fail(webhook):
    webhook.post(text_update(40))
    row = TelegramUpdate.objects.get(update_id=40)
    with pytest.raises(services.DomainError):
        services.update_replay(update=row)


def test_database_unavailable_answers_503_so_telegram_redelivers(
    webhook, fake_telegram, monkeypatch
):
    def unavailable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(fastpath, "update_insert", unavailable)
    assert webhook.post(text_update(50)).status_code == 503
    monkeypatch.undo()
    assert not TelegramUpdate.objects.exists()

    assert webhook.post(text_update(50)).status_code == 200
    assert TelegramUpdate.objects.get(update_id=50).status == "processed"
    assert len(fake_telegram.calls("sendMessage")) == 1


def test_database_failing_while_handling_in_the_request_answers_503(
    webhook, fake_telegram, invoiced_order, monkeypatch
):
    def unavailable(row):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(handlers, "dispatch", unavailable)
    fake_telegram.state.queries["q503"] = {"kind": "pre_checkout", "answer": None}
    update = pre_checkout_update(51, invoiced_order, query_id="q503")
    assert webhook.post(update).status_code == 503
    assert not TelegramUpdate.objects.exists()  # nothing kept: the redelivery starts afresh

    monkeypatch.undo()
    assert webhook.post(update).status_code == 200
    assert fake_telegram.state.queries["q503"]["answer"]["ok"] is True


def test_a_transient_failure_in_the_worker_leaves_the_update_for_the_next_dispatch(
    webhook, fake_telegram, monkeypatch
):
    def unavailable(row):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(handlers, "dispatch", unavailable)
    # Stored and answered 200: Telegram will not deliver it again, so it must not be lost.
    assert webhook.post(text_update(52)).status_code == 200
    monkeypatch.undo()
    row = TelegramUpdate.objects.get(update_id=52)
    assert row.status == "received"

    # The failed drain gave its lane back: the next pass wakes it.
    with webhook.capture(execute=True):
        assert services.updates_dispatch() == 1
    row.refresh_from_db()
    assert row.status == "processed"
    assert len(fake_telegram.calls("sendMessage")) == 1
    # Handled once: a late copy of the lost task finds it done.
    services.update_process(update_id=52)
    assert len(fake_telegram.calls("sendMessage")) == 1


def test_an_update_is_stored_as_sent_and_a_nul_character_does_not_break_it(webhook):
    body = json.dumps(text_update(57, text="Привет"), ensure_ascii=False)
    assert webhook.post(body.encode()).status_code == 200
    assert TelegramUpdate.objects.get(update_id=57).payload["message"]["text"] == "Привет"

    # Valid JSON that PostgreSQL's jsonb cannot hold: kept with U+FFFD, never a 500.
    assert webhook.post(json.dumps(text_update(58, text="a\x00b"))).status_code == 200
    row = TelegramUpdate.objects.get(update_id=58)
    assert row.payload["message"]["text"] == "a\ufffdb"
    assert row.status == "processed"


def test_a_customer_who_writes_again_no_longer_counts_as_blocking_the_bot(webhook):
    customer = CustomerFactory(telegram_id=555, has_blocked_bot=True)
    assert webhook.post(text_update(59, user_id=555)).status_code == 200
    customer.refresh_from_db()
    assert customer.has_blocked_bot is False


def test_broker_down_still_answers_200_and_keeps_the_update(webhook, fake_telegram, monkeypatch):
    from botbridge import lanes, tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(tasks.updates_drain, "delay", broker_down)
    # The webhook does not need the broker at all; the dispatcher's pass fails quietly.
    assert webhook.post(text_update(53)).status_code == 200
    assert TelegramUpdate.objects.get(update_id=53).status == "received"
    assert services.updates_dispatch() == 0
    assert lanes.claim(TelegramUpdate.objects.get(update_id=53).lane)  # not left claimed
    lanes._local.clear()

    monkeypatch.undo()
    with webhook.capture(execute=True):
        assert services.updates_dispatch() == 1
    assert TelegramUpdate.objects.get(update_id=53).status == "processed"
    assert len(fake_telegram.calls("sendMessage")) == 1


def test_in_request_handling_when_no_worker_runs(webhook, fake_telegram, settings, monkeypatch):
    """The embedded default (tasks in-process): every update is handled in the request."""
    settings.TELEGRAM_HANDLE_IN_WORKER = False

    def unavailable(row):
        raise OperationalError("database is locked")

    monkeypatch.setattr(handlers, "dispatch", unavailable)
    assert webhook.post(text_update(54)).status_code == 503
    assert not TelegramUpdate.objects.exists()
    monkeypatch.undo()
    assert webhook.post(text_update(54)).status_code == 200
    assert TelegramUpdate.objects.get(update_id=54).status == "processed"
    assert len(fake_telegram.calls("sendMessage")) == 1


# --- pre-checkout --------------------------------------------------------------------------


def pre_checkout(
    webhook, fake, order, *, user_id=None, amount=None, currency=None, payload=None, query_id="q1"
):
    fake.state.queries[query_id] = {"kind": "pre_checkout", "answer": None}
    update = pre_checkout_update(
        abs(hash(query_id)) % 10**9,
        order,
        query_id=query_id,
        user_id=user_id,
        amount=amount,
        currency=currency,
        payload=payload,
    )
    assert webhook.post(update).status_code == 200
    return fake.state.queries[query_id]["answer"]


def test_pre_checkout_accepts_a_genuine_invoice_and_reserves_stock_once(
    webhook, fake_telegram, invoiced_order
):
    product = invoiced_order.items.get().product
    product.stock = 3
    product.save()

    first = pre_checkout(webhook, fake_telegram, invoiced_order, query_id="a")
    again = pre_checkout(webhook, fake_telegram, invoiced_order, query_id="b")

    assert first == {"pre_checkout_query_id": "a", "ok": True}
    assert again == {"pre_checkout_query_id": "b", "ok": True}
    product.refresh_from_db()
    assert product.stock == 2


def test_pre_checkout_is_answered_in_the_webhook_response_and_again_on_redelivery(
    webhook, fake_telegram, invoiced_order
):
    product = invoiced_order.items.get().product
    product.stock = 3
    product.save()
    update = pre_checkout_update(4242, invoiced_order, query_id="resp-1")
    first = webhook.post_raw(update)
    assert first.status_code == 200
    assert first["Content-Type"] == "application/json"
    answer = {"method": "answerPreCheckoutQuery", "pre_checkout_query_id": "resp-1", "ok": True}
    assert first.json() == answer
    # Telegram did not get the answer (say the response was lost) and delivers again: the
    # same answer, and the stock is not reserved twice.
    again = webhook.post_raw(update)
    assert again.json() == answer
    product.refresh_from_db()
    assert product.stock == 2
    assert TelegramUpdate.objects.get(update_id=4242).reply == answer
    assert fake_telegram.calls("answerPreCheckoutQuery") == []  # no call of our own


def test_shipping_query_is_answered_in_the_response(webhook, fake_telegram, invoiced_order):
    address = {
        "country_code": "DE",
        "state": "",
        "city": "Berlin",
        "street_line1": "Unter den Linden 1",
        "street_line2": "",
        "post_code": "10117",
    }
    user = {"id": invoiced_order.customer.telegram_id, "is_bot": False, "first_name": "P"}
    for update_id, query_id, payload in [
        (61, "ship-ok", payload_sign(invoiced_order.reference)),
        (62, "ship-forged", f"{invoiced_order.reference}:forged"),
    ]:
        fake_telegram.state.queries[query_id] = {"kind": "shipping", "answer": None}
        update = {
            "update_id": update_id,
            "shipping_query": {
                "id": query_id,
                "from": user,
                "invoice_payload": payload,
                "shipping_address": address,
            },
        }
        assert webhook.post(update).json()["method"] == "answerShippingQuery"
    accepted = fake_telegram.state.queries["ship-ok"]["answer"]
    assert accepted["ok"] is True
    assert accepted["shipping_options"][0]["prices"] == [
        {"label": "Standard delivery", "amount": 0}
    ]
    refused = fake_telegram.state.queries["ship-forged"]["answer"]
    assert refused["ok"] is False and "not valid" in refused["error_message"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("forged", "not valid"),
        ("altered", "not valid"),
        ("unknown_order", "not valid"),
        ("other_user", "issued to another customer"),
        ("cancelled", "can no longer be paid"),
        ("already_paid", "already paid"),
        ("amount", "price has changed"),
        ("currency", "price has changed"),
        ("inactive", "no longer on sale"),
        ("out_of_stock", "just sold out"),
        ("blocked", "cannot make purchases"),
    ],
)
def test_pre_checkout_refusals(webhook, fake_telegram, invoiced_order, case, message):
    order = invoiced_order
    product = order.items.get().product
    kwargs = {}
    if case == "forged":
        kwargs["payload"] = f"{order.reference}:forgedsignature"
    elif case == "altered":
        kwargs["payload"] = payload_sign(order.reference).replace(order.reference, "ZZZZZZZZ")
    elif case == "unknown_order":
        kwargs["payload"] = payload_sign("NOSUCHREF")
    elif case == "other_user":
        kwargs["user_id"] = 999
    elif case == "cancelled":
        shop_services.order_transition(order=order, to_status=Order.Status.CANCELLED)
    elif case == "already_paid":
        shop_services.order_transition(order=order, to_status=Order.Status.PAID)
    elif case == "amount":
        kwargs["amount"] = order.total_amount - 1
    elif case == "currency":
        kwargs["currency"] = "EUR"
    elif case == "inactive":
        product.is_active = False
        product.save()
    elif case == "out_of_stock":
        product.stock = 0
        product.save()
    elif case == "blocked":
        shop_services.customer_set_blocked(customer=order.customer, is_blocked=True)

    answer = pre_checkout(webhook, fake_telegram, order, **kwargs)
    repeated = pre_checkout(webhook, fake_telegram, order, query_id="q2", **kwargs)

    assert answer["ok"] is False
    assert message in answer["error_message"]
    assert repeated["error_message"] == answer["error_message"]
    order.refresh_from_db()
    assert order.stock_reserved is False
    product.refresh_from_db()
    assert product.stock in (None, 0)


def test_pre_checkout_refusal_is_in_the_customers_language(webhook, fake_telegram, invoiced_order):
    Customer.objects.filter(pk=invoiced_order.customer_id).update(language_code="ru")
    shop_services.order_transition(order=invoiced_order, to_status=Order.Status.CANCELLED)
    fake_telegram.state.queries["ru"] = {"kind": "pre_checkout", "answer": None}
    webhook.post(
        pre_checkout_update(
            8080,
            invoiced_order,
            query_id="ru",
            language_code="ru",
            first_name="Маша",
            currency="USD",
            amount=500,
        )
    )
    assert fake_telegram.state.queries["ru"]["answer"]["error_message"].startswith("Этот заказ")


# --- successful_payment --------------------------------------------------------------------


def test_payment_redelivered_changes_nothing(webhook, fake_telegram, invoiced_order):
    webhook.post(payment_update(60, invoiced_order))
    webhook.post(payment_update(60, invoiced_order))
    webhook.post(payment_update(61, invoiced_order))  # same charge under a new update_id

    assert Payment.objects.count() == 1
    assert LedgerEntry.objects.count() == 1
    assert Message.objects.filter(dedupe_key__startswith="receipt:").count() == 1
    invoiced_order.refresh_from_db()
    assert invoiced_order.status == Order.Status.FULFILLED


def test_amount_mismatch_is_recorded_flagged_and_not_credited(
    webhook, fake_telegram, invoiced_order
):
    webhook.post(payment_update(70, invoiced_order, amount=400))

    payment = Payment.objects.get()
    assert (payment.amount, payment.review_reason) == (400, "amount_mismatch")
    assert payment.credited_at is None
    assert not LedgerEntry.objects.exists()
    invoiced_order.refresh_from_db()
    assert invoiced_order.status == Order.Status.INVOICED
    assert invoiced_order.needs_review is True


def test_second_payment_for_a_paid_order_is_an_overpayment_never_credited_twice(
    webhook, fake_telegram, invoiced_order
):
    webhook.post(payment_update(80, invoiced_order, charge="first"))
    webhook.post(payment_update(81, invoiced_order, charge="second"))

    first, second = Payment.objects.order_by("pk")
    assert (first.review_reason, second.review_reason) == ("", "overpayment")
    assert list(LedgerEntry.objects.values_list("payment_id", "amount")) == [(first.pk, 500)]
    invoiced_order.refresh_from_db()
    assert invoiced_order.needs_review is True


def test_forged_payload_payment_is_kept_as_unmatched(webhook, fake_telegram, invoiced_order):
    webhook.post(payment_update(90, invoiced_order, payload="XXXX:forged"))
    payment = Payment.objects.get()
    assert (payment.order, payment.review_reason) == (None, "unmatched")
    assert not LedgerEntry.objects.exists()


def test_refunded_payment_message_is_recorded_as_a_refund(webhook, fake_telegram, db):
    customer = CustomerFactory(telegram_id=777002)
    fake_telegram._user({"id": customer.telegram_id})
    product = ProductFactory(sku="vip", kind="digital", price=250, currency="XTR")
    order = shop_services.order_create(customer=customer, product=product)
    shop_services.order_transition(order=order, to_status=Order.Status.INVOICED)
    from shop.models import DigitalItem

    DigitalItem.objects.create(product=product, content="VIP-1")
    webhook.post(payment_update(100, order, charge="stars-1"))
    refunded = {
        "update_id": 101,
        "message": {
            "message_id": 12,
            "from": {"id": customer.telegram_id, "is_bot": False, "first_name": "Pat"},
            "chat": {"id": customer.telegram_id, "type": "private"},
            "date": 1_763_800_100,
            "refunded_payment": {
                "currency": "XTR",
                "total_amount": 250,
                "invoice_payload": payload_sign(order.reference),
                "telegram_payment_charge_id": "stars-1",
            },
        },
    }
    webhook.post(refunded)
    webhook.post({**refunded, "update_id": 102})

    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.source) == (250, "completed", "telegram")
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    entries = list(LedgerEntry.objects.order_by("pk").values_list("kind", "amount"))
    assert entries == [("credit", 250), ("purchase", -250), ("refund", -250), ("adjustment", 250)]
    assert TelegramUpdate.objects.get(update_id=101).status == "processed"


@pytest.mark.django_db(transaction=True)
def test_two_identical_payments_in_parallel_give_one_payment(fake_telegram, settings):
    customer = CustomerFactory(telegram_id=777003)
    fake_telegram._user({"id": customer.telegram_id})
    product = ProductFactory(sku="coins-par", price=500, currency="USD")
    order = shop_services.order_create(customer=customer, product=product)
    shop_services.order_transition(order=order, to_status=Order.Status.INVOICED)
    barrier = threading.Barrier(4)
    errors = []

    def deliver(update_id):
        try:
            barrier.wait()
            services.update_receive(payload=payment_update(update_id, order, charge="parallel-1"))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            close_old_connections()

    # Two deliveries of one update, and two of the same charge under other update_ids.
    threads = [threading.Thread(target=deliver, args=(n,)) for n in (200, 200, 201, 202)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Payment.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="credit").count() == 1
    assert set(TelegramUpdate.objects.values_list("update_id", "status")) == {
        (200, "processed"),
        (201, "processed"),
        (202, "processed"),
    }
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED


def test_webhook_answer_body_is_json(webhook):
    response = webhook.post(text_update(300))
    assert json.loads(response.content) == {"ok": True}


def test_a_payment_whose_credit_publish_fails_is_processed_and_left_to_the_sweep(
    webhook, fake_telegram, invoiced_order, monkeypatch, settings, caplog
):
    """The broker is down when the payment's credit task is published, after the commit."""
    from datetime import timedelta

    from kombu.exceptions import OperationalError as BrokerDown

    from config.celery import app
    from payments import services as payment_services

    def broker_down(*args, **kwargs):
        raise BrokerDown("Connection refused")

    monkeypatch.setattr(app, "producer_or_acquire", broker_down)
    app.conf.task_always_eager = False
    try:
        response = webhook.post(payment_update(95, invoiced_order))
    finally:
        app.conf.task_always_eager = True

    assert response.status_code == 200
    row = TelegramUpdate.objects.get(update_id=95)
    assert (row.status, row.error) == ("processed", "")
    assert "failed" not in caplog.text.lower().replace("could not publish", "")
    assert "Could not publish payments.payment_credit" in caplog.text
    payment = Payment.objects.get()
    assert payment.credited_at is None

    # Beat's sweep, once the grace period is over, credits it (and only it, once).
    monkeypatch.undo()
    assert payment_services.payment_credit_sweep(older_than=timedelta(minutes=5)) == 0
    Payment.objects.update(paid_at=payment.paid_at - timedelta(minutes=2))
    with webhook.capture(execute=True):
        assert payment_services.payment_credit_sweep(older_than=settings.PAYMENTS_CREDIT_GRACE) == 1
    assert payment_services.payment_credit_sweep(older_than=settings.PAYMENTS_CREDIT_GRACE) == 0
    assert LedgerEntry.objects.filter(kind="credit").count() == 1
    assert Message.objects.filter(dedupe_key__startswith="receipt:").count() == 1


def test_finance_sees_failed_updates_and_only_a_manager_may_replay_them(
    webhook, fake_telegram, monkeypatch, client, django_capture_on_commit_callbacks
):
    from tests.conftest import role_user

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(handlers.COMMANDS, "help", broken)
    webhook.post(text_update(40))
    monkeypatch.undo()
    row = TelegramUpdate.objects.get(update_id=40)
    assert row.status == "failed"
    replay = {"action": "replay", "_selected_action": [row.pk]}

    client.force_login(role_user("Finance"))
    assert "Failed webhook updates" in client.get("/admin/").content.decode()
    listing = client.get("/admin/botbridge/telegramupdate/?status__exact=failed").content.decode()
    assert ">40<" in listing and "Replay selected" not in listing
    for role in ("Finance", "Support"):
        client.force_login(role_user(role, f"{role}-replayer"))
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/admin/botbridge/telegramupdate/", replay)
        row.refresh_from_db()
        assert row.status == "failed", role

    client.force_login(role_user("Manager"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/botbridge/telegramupdate/", replay, follow=True)
    assert "Replayed 1 update" in response.content.decode()
    row.refresh_from_db()
    assert row.status == "processed"
