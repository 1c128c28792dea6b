"""Personal data past DATA_RETENTION_DAYS is purged daily; failures and money records stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from botbridge import tasks
from botbridge.models import TelegramUpdate
from shop import outbox
from shop.models import Message
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def update(update_id, status, days_ago):
    row = TelegramUpdate.objects.create(update_id=update_id, kind="message", payload={"x": 1},
                                        status=status)  # fmt: skip
    TelegramUpdate.objects.filter(pk=row.pk).update(
        received_at=timezone.now() - timedelta(days=days_ago)
    )
    return row


def message(status, days_ago):
    with outbox.held():
        row = outbox.message_queue(customer=customer_for_messages(), text=f"{status} {days_ago}")
    Message.objects.filter(pk=row.pk).update(
        status=status, created_at=timezone.now() - timedelta(days=days_ago)
    )
    return row


_customer = []


def customer_for_messages():
    if not _customer:
        _customer.append(CustomerFactory())
    return _customer[0]


@pytest.fixture(autouse=True)
def _fresh_customer():
    _customer.clear()


def test_the_daily_purge_removes_old_handled_updates_and_sent_bodies_only(settings):
    settings.DATA_RETENTION_DAYS = 90
    old_done, old_failed, recent = (
        update(1, "processed", 91),
        update(2, "failed", 200),
        update(3, "processed", 10),
    )
    waiting = update(4, "received", 95)
    sent_old, failed_old, sent_recent = (
        message("sent", 91),
        message("failed", 91),
        message("sent", 5),
    )
    inbound = outbox.inbound_record(customer=customer_for_messages(), chat_id=1, text="hi")

    assert tasks.retention_purge() == {"updates": 1, "message_bodies": 1}

    remaining = set(TelegramUpdate.objects.values_list("pk", flat=True))
    assert remaining == {old_failed.pk, recent.pk, waiting.pk}
    assert old_done.pk not in remaining
    sent_old.refresh_from_db()
    assert sent_old.params == {} and sent_old.text == "sent 91"  # the transcript stays
    for kept in (failed_old, sent_recent):
        kept.refresh_from_db()
        assert kept.params["chat_id"] == customer_for_messages().telegram_id
    assert Message.objects.filter(pk=inbound.pk).exists()
    # A second run finds nothing more to do.
    assert tasks.retention_purge() == {"updates": 0, "message_bodies": 0}


def test_beat_runs_the_purge_daily(settings):
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["botbridge.retention_purge"] == timedelta(days=1)
    assert schedule["payments.credit_sweep"] == timedelta(minutes=1)
