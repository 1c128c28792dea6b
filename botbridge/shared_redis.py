"""The Redis that all web processes and workers share (the Celery broker's, by default).

None when there is none to share: tasks in-process (the embedded default) or a non-Redis
broker; callers then keep their state in-process, which is all there is in that case.
"""

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}


def client() -> redis.Redis | None:
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://")):
        return None
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]
