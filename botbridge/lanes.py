"""Lanes for the stored updates a worker handles: one drain at a time per lane, in order.

An update goes to lane `chat id % TELEGRAM_UPDATE_LANES`, so one customer's updates are
handled in the order Telegram numbered them while different customers' run in parallel
on as many workers as there are lanes. The webhook wakes a lane with one Redis SET NX
instead of publishing a task per update; only the first wake-up of an idle lane publishes
a `botbridge.updates_drain` task. The flag expires by itself, so a drain killed with its
worker only delays its lane until the next update or the beat's `update_requeue_stale`.
"""

import threading
import time
from typing import Any

from django.conf import settings

from botbridge import shared_redis

FLAG_TTL = 60  # seconds; a drain runs at most DRAIN_BUDGET before handing over
DRAIN_BUDGET = 20.0

_local_lock = threading.Lock()
_local_flags: dict[int, float] = {}


def lane_of(payload: dict[str, Any]) -> int:
    """The lane of an update: its chat (or sender) id modulo the number of lanes."""
    for kind, body in payload.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        chat = body.get("chat") or (body.get("message") or {}).get("chat") or body.get("from")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return chat["id"] % settings.TELEGRAM_UPDATE_LANES
    return 0


def _key(lane: int) -> str:
    return f"botbridge:lane:{lane}"


def claim(lane: int) -> bool:
    """True if this caller is now the lane's one drain (the lane was idle)."""
    client = shared_redis.client()
    if client is None:
        with _local_lock:
            now = time.monotonic()
            if _local_flags.get(lane, 0) > now:
                return False
            _local_flags[lane] = now + FLAG_TTL
            return True
    return bool(client.set(_key(lane), 1, nx=True, ex=FLAG_TTL))


def extend(lane: int) -> None:
    """A drain still working keeps its lane."""
    client = shared_redis.client()
    if client is None:
        with _local_lock:
            _local_flags[lane] = time.monotonic() + FLAG_TTL
        return
    client.set(_key(lane), 1, ex=FLAG_TTL)


def release(lane: int) -> None:
    client = shared_redis.client()
    if client is None:
        with _local_lock:
            _local_flags.pop(lane, None)
        return
    client.delete(_key(lane))
