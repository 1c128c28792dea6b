"""Lanes for the stored updates a worker handles: one drain at a time per lane, in order.

An update goes to lane `chat id % TELEGRAM_UPDATE_LANES`, so one customer's updates are
handled in the order Telegram numbered them while different customers' run in parallel
on as many workers as there are lanes. The webhook only stores an update; the dispatcher
(`services.updates_dispatch`, run continuously by `manage.py run_update_dispatcher`) finds
lanes with updates waiting and claims each with one Redis SET NX, publishing a
`botbridge.updates_drain` task only when the lane was idle. The flag expires by itself, so a
drain killed with its worker only delays its lane until the flag has expired.
"""

import threading
import time
from typing import Any

from django.conf import settings

from botbridge import shared_redis

FLAG_TTL = 60  # seconds; a drain runs at most DRAIN_BUDGET before handing over
DRAIN_BUDGET = 20.0


class _LocalFlags:
    """Redis's SET [NX] EX and DEL for one process (tasks in-process: nothing to share)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def set(self, key: str, value, *, nx: bool = False, ex: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if nx and self._until.get(key, 0) > now:
                return False
            self._until[key] = now + ex
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._until.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


_local = _LocalFlags()


def _flags():
    client = shared_redis.client()
    return _local if client is None else client


def lane_of(payload: dict[str, Any]) -> int:
    """The lane of an update: its chat (or sender) id modulo the number of lanes."""
    for kind, body in payload.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        inner = body.get("message")
        for chat in (
            body.get("chat"),
            inner.get("chat") if isinstance(inner, dict) else None,
            body.get("from"),
        ):
            if isinstance(chat, dict) and type(chat.get("id")) is int:
                return chat["id"] % settings.TELEGRAM_UPDATE_LANES
    return 0


def _key(lane: int) -> str:
    return f"botbridge:lane:{lane}"


def claim(lane: int) -> bool:
    """True if this caller is now the lane's one drain (the lane was idle)."""
    return bool(_flags().set(_key(lane), 1, nx=True, ex=FLAG_TTL))


def extend(lane: int) -> None:
    """A drain still working keeps its lane."""
    _flags().set(_key(lane), 1, ex=FLAG_TTL)


def release(lane: int) -> None:
    _flags().delete(_key(lane))
