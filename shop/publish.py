"""Celery tasks published by name after the commit, by the layers below the Telegram edge.

The work a task stands for is already in the database when it is published (a payment to
credit, an outbox row to send), and a beat sweep finds it again if the publish is lost, so a
broker that is down or restarted empty must never fail the request that committed it: the
failure is logged, not raised. With tasks in-process (no broker) the task runs at once.
"""

import logging
from collections.abc import Iterable

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def publish(name: str, argument_lists: Iterable[tuple]) -> bool:
    """Publish task `name` once per argument tuple, on one broker connection; False if lost."""
    task = current_app.tasks[name]
    argument_lists = list(argument_lists)
    if current_app.conf.task_always_eager:
        for args in argument_lists:
            task.delay(*args)
        return True
    try:
        with current_app.producer_or_acquire() as producer:
            for args in argument_lists:
                task.apply_async(args, producer=producer)
    except Exception as error:  # the broker: down, restarting, unreachable
        logger.warning(
            "Could not publish %s for %d item(s) (%s: %s); the beat sweep picks them up.",
            name,
            len(argument_lists),
            type(error).__name__,
            error,
        )
        return False
    return True


def publish_on_commit(name: str, argument_lists: Iterable[tuple]) -> None:
    """`publish` after the surrounding transaction commits (at once outside of one)."""
    argument_lists = list(argument_lists)
    transaction.on_commit(lambda: publish(name, argument_lists))
