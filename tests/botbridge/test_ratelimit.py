"""Telegram's sending limits as token buckets, in Redis (shared by workers) and in-process."""

import pytest

from botbridge import ratelimit, shared_redis


@pytest.fixture(params=["redis", "local"])
def limits(request, settings):
    settings.TELEGRAM_RATE_GLOBAL = 5
    settings.TELEGRAM_RATE_GLOBAL_BURST = 1
    settings.TELEGRAM_RATE_PER_CHAT = 1.0
    settings.TELEGRAM_RATE_CHAT_BURST = 1
    if request.param == "redis":
        settings.CELERY_TASK_ALWAYS_EAGER = False  # the shared Redis is used then
        client = shared_redis.client()
        assert client is not None
        client.delete("tg:rate:global", *[f"tg:rate:chat:{n}" for n in range(10)])
    else:
        ratelimit._local._state.clear()
    return request.param


def test_one_message_per_chat_per_second_and_the_global_rate(limits):
    assert ratelimit.acquire(1) == 0
    # The same chat again at once: wait about a second (the per-chat bucket).
    assert 0.5 < ratelimit.acquire(1) <= 1.0
    # Another chat at once: the global bucket (5/s, no burst) asks for ~0.2 s.
    assert 0 < ratelimit.acquire(2) <= 0.2


def test_a_refused_slot_takes_no_token(limits, monkeypatch):
    assert ratelimit.acquire(3) == 0
    waits = [ratelimit.acquire(4) for _ in range(5)]
    # Asking again and again does not push the wait further out.
    assert max(waits) <= 0.2 and all(w > 0 for w in waits)
