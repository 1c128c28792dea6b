"""Token buckets for Telegram's sending limits, shared by every worker through Redis.

Telegram allows about 30 messages per second in all and one per second per chat (short
bursts are tolerated). Without a Redis broker (the embedded default) the buckets live in
this process, which is all there is then.
"""

import threading
import time

from django.conf import settings

from botbridge import shared_redis


def _limits() -> tuple[float, int, float, int]:
    """(global rate/s, global burst, per-chat rate/s, per-chat burst), from settings."""
    return (
        float(settings.TELEGRAM_RATE_GLOBAL),
        int(settings.TELEGRAM_RATE_GLOBAL_BURST),
        float(settings.TELEGRAM_RATE_PER_CHAT),
        int(settings.TELEGRAM_RATE_CHAT_BURST),
    )


# Takes one token from each bucket or none: returns 0, or the milliseconds to wait.
_LUA = """
local now = tonumber(ARGV[1])
local wait = 0
for i = 1, 2 do
  local rate = tonumber(ARGV[i * 2])
  local burst = tonumber(ARGV[i * 2 + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  if tokens < 1 then
    wait = math.max(wait, math.ceil((1 - tokens) * 1000 / rate))
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  local rate = tonumber(ARGV[i * 2])
  local burst = tonumber(ARGV[i * 2 + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + (now - at) * rate / 1000) - 1
  redis.call('HSET', KEYS[i], 'tokens', tokens, 'at', now)
  redis.call('PEXPIRE', KEYS[i], 60000)
end
return 0
"""


class _LocalBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def acquire(self, keys: list[str], limits: list[tuple[float, int]]) -> float:
        now = time.monotonic()
        with self._lock:
            levels = []
            wait = 0.0
            for key, (rate, burst) in zip(keys, limits, strict=True):
                tokens, at = self._state.get(key, (burst, now))
                tokens = min(burst, tokens + (now - at) * rate)
                levels.append(tokens)
                if tokens < 1:
                    wait = max(wait, (1 - tokens) / rate)
            if wait:
                return wait
            for key, tokens in zip(keys, levels, strict=True):
                self._state[key] = (tokens - 1, now)
            return 0.0


_local = _LocalBuckets()
_scripts: dict[int, object] = {}


def acquire(chat_id: int) -> float:
    """Take a sending slot for this chat: 0 when it may send now, else seconds to wait."""
    keys = ["tg:rate:global", f"tg:rate:chat:{chat_id}"]
    global_rate, global_burst, chat_rate, chat_burst = _limits()
    limits = [(global_rate, global_burst), (chat_rate, chat_burst)]
    client = shared_redis.client()
    if client is None:
        return _local.acquire(keys, limits)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_LUA)
    now_ms = int(time.time() * 1000)
    wait_ms = script(keys=keys, args=[now_ms, global_rate, global_burst, chat_rate, chat_burst])
    return int(wait_ms) / 1000
