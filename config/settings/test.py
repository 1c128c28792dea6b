"""Tests: real PostgreSQL and Redis, tasks eager unless a test starts a real worker."""

from .base import *  # noqa: F403
from .base import env

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/shopbot"),
}
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_shopbot")}

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
# Tests that are about the worker start a real one with CELERY_TASK_ALWAYS_EAGER=false.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
# As in production: updates that need no answer in the request go through the worker's task.
TELEGRAM_HANDLE_IN_WORKER = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,  # noqa: F405 (the backups storage from base)
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
# Conversations in tests are fast; the limiter's own tests set real limits.
TELEGRAM_RATE_PER_CHAT = 1000.0
TELEGRAM_RATE_CHAT_BURST = 1000
TELEGRAM_RATE_GLOBAL = 10000
TELEGRAM_RATE_GLOBAL_BURST = 10000

# Backups in the tests go to a directory of their own (tests point it at a tmp path).
