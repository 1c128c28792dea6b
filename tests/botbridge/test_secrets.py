"""No secret is ever written to the database, a log line or a page."""

import io
import logging

import pytest
from django.db import connection

from botbridge import sending
from core.secrets import MaskSecretsFilter
from shop import outbox
from shop.models import Message
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

TOKEN = "987654:AAHsecretPartOfTheBotToken-xyz"


def database_text() -> str:
    """Every row of every table, as text: what a dump would hold."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        dumped = []
        for table in tables:
            cursor.execute(f'SELECT CAST(t AS text) FROM "{table}" t')  # noqa: S608
            dumped += [row[0] for row in cursor.fetchall()]
    return "\n".join(dumped)


@pytest.fixture
def logs():
    """What the configured console handler (with its secrets filter) writes."""
    handlers = [
        h for h in logging.getLogger().handlers
        if any(isinstance(f, MaskSecretsFilter) for f in h.filters)
    ]  # fmt: skip
    assert handlers, "LOGGING's console handler has the secrets filter"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.filters = handlers[0].filters
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)  # telebot and urllib3 log request URLs at DEBUG
    yield stream
    root.setLevel(previous)
    root.removeHandler(handler)


def test_sending_through_a_dead_bot_api_stores_and_logs_no_token(settings, logs, caplog):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"  # nothing listens: connection refused
    customer = CustomerFactory()
    with outbox.held():
        message = outbox.message_queue(customer=customer, text="Your receipt")
    for _ in range(3):
        sending.message_send(message_id=message.pk)
        Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    logging.getLogger("urllib3.connectionpool").debug("GET /bot%s/sendMessage", TOKEN)
    try:
        raise ConnectionError(f"http://127.0.0.1:9/bot{TOKEN}/sendMessage refused")
    except ConnectionError:
        logging.getLogger("botbridge").exception("Outbound message failed")

    message.refresh_from_db()
    assert message.status == "queued" and message.attempts == 3
    assert "Network error" in message.error and "<TELEGRAM_BOT_TOKEN>" in message.error
    secret_half = TOKEN.split(":", 1)[1]
    assert secret_half not in database_text()
    written = logs.getvalue()
    assert "<TELEGRAM_BOT_TOKEN>" in written
    assert secret_half not in written


def test_the_admin_page_of_a_failed_message_shows_no_token(settings, support_client):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"
    with outbox.held():
        message = outbox.message_queue(customer=CustomerFactory(), text="Hello")
    sending.message_send(message_id=message.pk)
    page = support_client.get(f"/admin/shop/message/{message.pk}/change/").content.decode()
    assert "Network error" in page
    assert TOKEN.split(":", 1)[1] not in page
