"""The outbox as staff see it: a failed message sent again from the admin."""

import pytest

from shop import outbox
from tests.conftest import post_step
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_failed_message_is_retried_from_the_admin_and_a_sent_one_is_refused(
    support_client, fake_telegram, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    fake_telegram._user({"id": customer.telegram_id})
    fake_telegram.fail(
        method="sendMessage", error_code=400, description="Bad Request: chat not found",
        chat_id=customer.telegram_id,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        message = outbox.message_queue(customer=customer, text="Your code: X-1")
    message.refresh_from_db()
    assert message.status == "failed" and "chat not found" in message.error
    listing = support_client.get("/admin/shop/message/?status__exact=failed").content.decode()
    assert "Your code: X-1" in listing

    post_step(
        support_client,
        django_capture_on_commit_callbacks,
        "/admin/shop/message/",
        {"action": "retry", "_selected_action": [message.pk]},
    )
    message.refresh_from_db()
    assert message.status == "sent"
    assert len(fake_telegram.calls("sendMessage")) == 2  # the failed try and the retry

    response = post_step(
        support_client,
        django_capture_on_commit_callbacks,
        "/admin/shop/message/",
        {"action": "retry", "_selected_action": [message.pk]},
    )
    assert "Only a failed message can be retried" in response.content.decode()
    assert len(fake_telegram.calls("sendMessage")) == 2
