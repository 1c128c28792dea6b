"""Checkout speed, the webhook as Telegram sees it, and alerts reaching the staff chat once."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from botbridge import health
from botbridge.models import TelegramUpdate, WebhookStatus
from payments.models import Payment
from payments.services import disputes
from shop.models import Message
from tests.botbridge.test_webhook import payment_update, pre_checkout_update
from tests.conftest import role_user
from tests.factories import CustomerFactory, ProductFactory, paid_order

pytestmark = pytest.mark.django_db

STAFF_CHAT = -100123456


@pytest.fixture
def staff_chat(settings, fake_telegram):
    settings.STAFF_ALERT_CHAT_ID = STAFF_CHAT
    settings.BACKOFFICE_URL = "https://shop.example.com"
    return lambda: [
        c["params"]["text"] for c in fake_telegram.calls("sendMessage")
        if int(c["params"]["chat_id"]) == STAFF_CHAT
    ]  # fmt: skip


def test_pre_checkout_answers_are_timed_and_shown(webhook, invoiced_order, client):
    for n in range(3):
        webhook.post(pre_checkout_update(700 + n, invoiced_order, query_id=f"q{n}"))
    times = list(TelegramUpdate.objects.filter(kind="pre_checkout_query")
                 .values_list("handled_ms", flat=True))  # fmt: skip
    assert len(times) == 3 and all(t is not None and 0 <= t < 10_000 for t in times)
    checkout = health.checkout_health()
    assert checkout.answered == 3 and checkout.slowest_ms == max(times)
    client.force_login(role_user("Manager"))
    page = client.get("/admin/").content.decode()
    assert "3 answered, 95% within" in page and "Telegram cancels at 10000 ms" in page


def test_the_webhook_poll_keeps_errors_and_tells_staff_once(
    fake_telegram, staff_chat, client, django_capture_on_commit_callbacks
):
    fake_telegram.state.webhook_url = "https://shop.example.com/telegram/webhook/"
    fake_telegram.state.last_error_date = int(timezone.now().timestamp())
    fake_telegram.state.last_error_message = "Connection timed out"
    fake_telegram.state.pending_updates = [{"update_id": n} for n in range(150)]
    with django_capture_on_commit_callbacks(execute=True):
        health.webhook_check()
        health.webhook_check()
    status = WebhookStatus.objects.first()
    assert (status.pending_update_count, status.last_error_message) == (150, "Connection timed out")
    sent = staff_chat()
    assert sum("could not deliver to the webhook" in text for text in sent) == 1
    assert sum("150 updates wait at Telegram" in text for text in sent) == 1
    assert all("https://shop.example.com/admin/botbridge/webhookstatus/" in t for t in sent)
    client.force_login(role_user("Manager"))
    assert "Connection timed out" in client.get("/admin/").content.decode()


def test_disputes_deadlines_review_and_failed_updates_reach_the_staff_chat_once(
    webhook, fake_telegram, invoiced_order, staff_chat, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        payment = paid_order(CustomerFactory(), ProductFactory(price=900, currency="USD"))
        dispute = disputes.dispute_open(payment=payment, reason="fraudulent", amount=900,
                                        evidence_due_by=timezone.now() + timedelta(hours=60))  # fmt: skip
        disputes.disputes_remind()
        disputes.disputes_remind()  # hourly: nothing said twice
        disputes.disputes_remind(now=timezone.now() + timedelta(hours=40))
    webhook.post(payment_update(801, invoiced_order, amount=1))  # held for review
    sent = staff_chat()
    assert sum(f"New dispute #{dispute.pk}" in t for t in sent) == 1
    assert sum("evidence due within 72 hours" in t for t in sent) == 1
    assert sum("evidence due within 24 hours" in t for t in sent) == 1
    review = Payment.objects.get(review_reason="amount_mismatch")
    assert sum(f"/admin/payments/payment/{review.pk}/change/" in t for t in sent) == 1


def test_without_a_staff_chat_alerts_go_by_email(
    settings, fake_telegram, django_capture_on_commit_callbacks
):
    settings.STAFF_ALERT_CHAT_ID = 0
    settings.STAFF_ALERT_EMAILS = ["owner@example.com"]
    from shop import alerts

    with django_capture_on_commit_callbacks(execute=True):
        alerts.staff_alert(key="test:1", text="Something needs you", path="/admin/")
        alerts.staff_alert(key="test:1", text="Something needs you", path="/admin/")
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert Message.objects.filter(dedupe_key="alert:test:1", method="email").count() == 1
