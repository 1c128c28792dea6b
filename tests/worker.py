"""A real Celery worker process on the test database and Redis, for the tests about it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def environment(fake, *, visibility_timeout: int = 3600) -> dict[str, str]:
    """What a worker or dispatcher process needs: the test database, Redis, the fake Telegram."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
        # Look for abandoned tasks every second (production: every 100 s).
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        "TELEGRAM_BOT_TOKEN": settings.TELEGRAM_BOT_TOKEN,
        "TELEGRAM_API_URL": fake.url,
        "TELEGRAM_WEBHOOK_SECRET": settings.TELEGRAM_WEBHOOK_SECRET,
        "TELEGRAM_PROVIDER_TOKEN": settings.TELEGRAM_PROVIDER_TOKEN,
        "LOG_LEVEL": "WARNING",
    }


class Process:
    """A child process in its own process group (kill() takes its children too)."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.command = command
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self):
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, start_new_session=True
        )
        return self

    def kill(self) -> None:
        """SIGKILL the process and its children at once, mid-task."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Worker(Process):
    def __init__(
        self,
        fake,
        *,
        concurrency: int = 2,
        visibility_timeout: int = 3600,
        env: dict[str, str] | None = None,
    ):
        super().__init__(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "default,telegram",
                "--concurrency",
                str(concurrency),
                "--prefetch-multiplier",
                "4",
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
            ],
            {**environment(fake, visibility_timeout=visibility_timeout), **(env or {})},
        )


class Dispatcher(Process):
    """`manage.py run_update_dispatcher`, looking every 0.05 s."""

    def __init__(self, fake):
        super().__init__(
            [sys.executable, "manage.py", "run_update_dispatcher", "--interval", "0.05"],
            environment(fake),
        )


def flush_broker() -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def wait_until(condition, *, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {condition.__doc__ or condition}")
