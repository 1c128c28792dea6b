"""Settings shared by every environment. Each value can be set from the environment.

With no environment at all the app runs embedded: SQLite, Celery tasks in-process and the
local Telegram sandbox as the Bot API server.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(str(BASE_DIR / ".env"))

PRODUCT_NAME = "Shopbot back office"
# The shop's public name: what the bot calls itself when it greets a customer.
SHOP_NAME = env("SHOP_NAME", default="Demo Shop")

SECRET_KEY = env("SECRET_KEY", default="django-insecure-local-only-change-me")
IS_PRODUCTION = False
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "admin_interface",
    "colorfield",
    "backoffice.apps.BackofficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "core",
    "shop",
    "payments",
    "botbridge",
    "backoffice.apps.BackofficeConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "backoffice.middleware.StaffIdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Counts failed logins per username and IP, and refuses them past the limit.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Staff accounts ------------------------------------------------------------------------
# Two-factor login (TOTP from an authenticator app, or a recovery code) for every staff user
# when on: on in production, optional in the embedded default.
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=False)
# The name an authenticator app shows next to the codes.
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Shopbot back office")
# A staff session ends after this long without a request.
STAFF_IDLE_TIMEOUT = timedelta(minutes=env.int("STAFF_IDLE_TIMEOUT_MINUTES", default=60))
# Brute force: after this many failed logins for one username from one address, that pair is
# locked out for AXES_COOLOFF_MINUTES (a manager can clear it in the admin sooner).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The lockout page says the same for every account and gives nothing away.
AXES_LOCKOUT_TEMPLATE = "admin/core/locked_out.html"
AXES_VERBOSE = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backoffice.context.product",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# ATOMIC_REQUESTS stays at Django's default (off): services own their transactions.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves the webhook and the sandbox from several threads.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
FORMAT_MODULE_PATH = ["config.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"

# admin_interface shows popups as modals, which needs same-origin frames.
X_FRAME_OPTIONS = "SAMEORIGIN"
# models.W040: the dashboard's covering index (payments_payment_money) has INCLUDE columns,
# which PostgreSQL uses and SQLite (the embedded default) simply ignores.
SILENCED_SYSTEM_CHECKS = ["security.W019", "models.W040"]

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="backoffice@localhost")

# Masked wherever text leaves the process: logs (the filter below), stored errors, pages.
SECRET_SETTINGS = [
    "SECRET_KEY",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_PROVIDER_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "APAY_API_KEY",
    "APAY_REPORTS_TOKEN",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "core.secrets.MaskSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Celery --------------------------------------------------------------------------------
# No broker configured: tasks run in-process, so the embedded default needs no Redis.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://"
)
CELERY_TASK_EAGER_PROPAGATES = env.bool("CELERY_TASK_EAGER_PROPAGATES", default=False)
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# Outbound Telegram calls wait on Telegram's rate limits: they get a queue of their own, so
# crediting and the handling of inbound updates never queue up behind them.
CELERY_TASK_ROUTES = {"botbridge.message_send": {"queue": "telegram"}}
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis hands an unacknowledged task (acks_late, worker killed) to another worker after this
# long; it must exceed the longest countdown a task is retried with (10 minutes).
# Abandoned tasks are looked for every interval × throttle seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
}
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "orders-expire-stale-invoices": {
        "task": "shop.order_expire_stale",
        "schedule": timedelta(minutes=15),
    },
    "invoices-remind": {
        "task": "shop.invoices_remind",
        "schedule": timedelta(minutes=10),
    },
    "subscriptions-expire": {
        "task": "shop.subscriptions_expire",
        "schedule": timedelta(minutes=10),
    },
    # Safety net only: `manage.py run_update_dispatcher` wakes lanes within a fraction of a
    # second; this wakes them within a minute if the dispatcher is not running.
    "updates-dispatch": {
        "task": "botbridge.updates_dispatch",
        "schedule": timedelta(minutes=1),
    },
    "outbox-requeue-due": {
        "task": "botbridge.message_requeue_due",
        "schedule": timedelta(minutes=1),
    },
    # Safety net for credit tasks lost with the broker or given up: every payment recorded
    # and not credited after PAYMENTS_CREDIT_GRACE is credited here (exactly once, as ever).
    "payments-credit-sweep": {
        "task": "payments.credit_sweep",
        "schedule": timedelta(minutes=1),
    },
    "disputes-remind-hourly": {
        "task": "payments.disputes_remind",
        "schedule": timedelta(hours=1),
    },
    "exports-purge-daily": {
        "task": "payments.exports_purge",
        "schedule": timedelta(days=1),
    },
    # Personal data is not kept forever: processed updates and sent messages' bodies go
    # after DATA_RETENTION_DAYS (failed ones and money records stay).
    "webhook-check": {
        "task": "botbridge.webhook_check",
        "schedule": timedelta(minutes=5),
    },
    "backup-nightly": {
        "task": "backoffice.backup_nightly",
        "schedule": crontab(hour=3, minute=0),
    },
    "retention-purge-daily": {
        "task": "botbridge.retention_purge",
        "schedule": timedelta(days=1),
    },
    "outbox-sweep-stale": {
        "task": "botbridge.message_sweep_stale",
        "schedule": timedelta(minutes=5),
    },
    # Reconciliation: Telegram's own Stars records, and A-Pay's statement of the last days
    # (when its Reports API is configured), against the ledger. Differences go to finance.
    "reconcile-stars-daily": {
        "task": "botbridge.reconcile_stars",
        "schedule": crontab(hour=4, minute=0),
    },
    "reconcile-apay-daily": {
        "task": "payments.reconcile_apay",
        "schedule": crontab(hour=4, minute=30),
    },
}

# --- Telegram ------------------------------------------------------------------------------
TELEGRAM_BOT_TOKEN = env("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_WEBHOOK_SECRET = env("TELEGRAM_WEBHOOK_SECRET", default="")
TELEGRAM_PROVIDER_TOKEN = env("TELEGRAM_PROVIDER_TOKEN", default="")
TELEGRAM_API_URL = env("TELEGRAM_API_URL", default="https://api.telegram.org").rstrip("/")
TELEGRAM_WEBHOOK_URL = env("TELEGRAM_WEBHOOK_URL", default="")
TELEGRAM_WEBHOOK_MAX_CONNECTIONS = env.int("TELEGRAM_WEBHOOK_MAX_CONNECTIONS", default=40)
# Updates are a few kilobytes; anything far larger is not from Telegram.
TELEGRAM_WEBHOOK_MAX_BODY = env.int("TELEGRAM_WEBHOOK_MAX_BODY", default=256 * 1024)
# True when no real bot is configured: the bot talks to the project's own sandbox.
TELEGRAM_SANDBOX = env.bool("TELEGRAM_SANDBOX", default=not TELEGRAM_BOT_TOKEN)
if TELEGRAM_SANDBOX:
    TELEGRAM_BOT_TOKEN = TELEGRAM_BOT_TOKEN or "100000:sandbox-token"
    TELEGRAM_API_URL = env("TELEGRAM_API_URL", default="http://127.0.0.1:8081").rstrip("/")
    TELEGRAM_WEBHOOK_SECRET = TELEGRAM_WEBHOOK_SECRET or "sandbox-webhook-secret"
    TELEGRAM_PROVIDER_TOKEN = TELEGRAM_PROVIDER_TOKEN or "sandbox:apay-test-token"

# A-Pay (Paykassma), for reconciliation. A-Pay gives each merchant its API host, apikey and
# project id (deposit-info), and a separate Reports API host and Bearer token (statements).
# None is needed to take payments: Telegram talks to A-Pay. The sandbox uses the local A-Pay.
APAY_API_URL = env("APAY_API_URL", default="")
APAY_API_KEY = env("APAY_API_KEY", default="")
APAY_PROJECT_ID = env("APAY_PROJECT_ID", default="")
APAY_REPORTS_URL = env("APAY_REPORTS_URL", default="")
APAY_REPORTS_TOKEN = env("APAY_REPORTS_TOKEN", default="")
if TELEGRAM_SANDBOX:
    APAY_API_URL = APAY_API_URL or "http://127.0.0.1:8082"
    APAY_API_KEY = APAY_API_KEY or "sandboxapikey0000000000000000000"
    APAY_PROJECT_ID = APAY_PROJECT_ID or "1000001"
    APAY_REPORTS_URL = APAY_REPORTS_URL or APAY_API_URL
    APAY_REPORTS_TOKEN = APAY_REPORTS_TOKEN or "sandbox-reports-token"
APAY_TIMEOUT_SECONDS = env.float("APAY_TIMEOUT_SECONDS", default=20)
APAY_REPORT_POLL_SECONDS = env.float("APAY_REPORT_POLL_SECONDS", default=2)
APAY_REPORT_TIMEOUT_SECONDS = env.float("APAY_REPORT_TIMEOUT_SECONDS", default=600)
# A statement without a currency column is in this currency (an A-Pay project has one).
APAY_STATEMENT_CURRENCY = env("APAY_STATEMENT_CURRENCY", default="")
# A statement row with no id in common with a payment may match one of the same amount and
# currency paid this close in time (a weaker match, for finance to confirm).
APAY_MATCH_WINDOW_SECONDS = env.int("APAY_MATCH_WINDOW_SECONDS", default=900)
# How many days back the daily A-Pay reconciliation asks the Reports API for.
APAY_RECONCILE_DAYS = env.int("APAY_RECONCILE_DAYS", default=3)
# Payments recorded this recently may not be in Telegram's list yet.
RECONCILE_HORIZON_SECONDS = env.int("RECONCILE_HORIZON_SECONDS", default=60)

# Telegram's sending limits: about 30 messages/s in all, 1/s per chat (short bursts pass).
TELEGRAM_RATE_GLOBAL = env.int("TELEGRAM_RATE_GLOBAL", default=30)
# Sent evenly: a burst of 2 lets a missed slot be caught up; no second holds more than 30.
TELEGRAM_RATE_GLOBAL_BURST = env.int("TELEGRAM_RATE_GLOBAL_BURST", default=2)
TELEGRAM_RATE_PER_CHAT = env.float("TELEGRAM_RATE_PER_CHAT", default=1.0)
TELEGRAM_RATE_CHAT_BURST = env.int("TELEGRAM_RATE_CHAT_BURST", default=3)
# Commands, text and buttons are handled by a worker after the webhook stored them (the
# dispatcher wakes the worker); with tasks in-process (the embedded default) they are handled
# inside the webhook request.
TELEGRAM_HANDLE_IN_WORKER = env.bool(
    "TELEGRAM_HANDLE_IN_WORKER", default=not CELERY_TASK_ALWAYS_EAGER
)
# How often `run_update_dispatcher` looks for stored updates waiting (seconds): the most a
# reply to a command waits before a worker takes it.
TELEGRAM_DISPATCH_INTERVAL = env.float("TELEGRAM_DISPATCH_INTERVAL", default=0.1)
# How many workers may handle stored updates at once (one customer's always in order).
TELEGRAM_UPDATE_LANES = env.int("TELEGRAM_UPDATE_LANES", default=8)

# Staff alerts (new disputes, deadlines, payments held for review, webhook trouble, failed
# backups): a Telegram chat the bot writes to (a group with the staff, or a person), and
# e-mail addresses (the fallback). BACKOFFICE_URL makes the links in them.
STAFF_ALERT_CHAT_ID = env.int("STAFF_ALERT_CHAT_ID", default=0)
STAFF_ALERT_EMAILS = env.list("STAFF_ALERT_EMAILS", default=[])
BACKOFFICE_URL = env("BACKOFFICE_URL", default="http://127.0.0.1:8000")

# Backups: where (a Django storage backend; a local directory by default) and how many kept.
BACKUP_DIR = env.path("BACKUP_DIR", default=BASE_DIR / "backups")
BACKUP_STORAGE_BACKEND = env(
    "BACKUP_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
)
BACKUP_KEEP_DAILY = env.int("BACKUP_KEEP_DAILY", default=7)
BACKUP_KEEP_WEEKLY = env.int("BACKUP_KEEP_WEEKLY", default=4)

# Raw Telegram updates that were handled, and the Bot API bodies of sent messages, are
# purged after this many days; failed ones and everything money records need are kept.
DATA_RETENTION_DAYS = env.int("DATA_RETENTION_DAYS", default=90)

# Terms shown before the first invoice; bump the version to ask everyone again.
SHOP_TERMS_VERSION = env("SHOP_TERMS_VERSION", default="2026-11-01")
# A payment not credited this long after it was recorded is credited by the beat's sweep
# (and shown on the dashboard): its task was lost or is failing.
PAYMENTS_CREDIT_GRACE = timedelta(seconds=env.int("PAYMENTS_CREDIT_GRACE_SECONDS", default=60))
# An invoice not paid within this time expires and its reserved stock is released.
SHOP_INVOICE_TTL = timedelta(hours=env.int("SHOP_INVOICE_TTL_HOURS", default=24))
# One reminder (with a fresh invoice) this long after an invoice went unpaid; never in the
# quiet hours ("21-9": from 21:00 to 09:00) of the shop's time zone.
SHOP_INVOICE_REMINDER_DELAY = timedelta(
    minutes=env.int("SHOP_INVOICE_REMINDER_DELAY_MINUTES", default=120)
)
SHOP_TIME_ZONE = env("SHOP_TIME_ZONE", default=TIME_ZONE)
SHOP_QUIET_HOURS = tuple(int(h) for h in env("SHOP_QUIET_HOURS", default="21-9").split("-"))
# Delivery charged on orders with physical goods, per currency in major units
# ("USD:4.90,EUR:4.90"); a currency not listed delivers free.
SHOP_DELIVERY_FEES = env("SHOP_DELIVERY_FEES", default="")
FORMS_URLFIELD_ASSUME_HTTPS = True

# Backup storage: a local directory unless BACKUP_STORAGE_BACKEND names another backend
# (e.g. storages.backends.s3.S3Storage with its AWS_* settings, through django-storages).
STORAGES["backups"] = {
    "BACKEND": BACKUP_STORAGE_BACKEND,
    "OPTIONS": {"location": str(BACKUP_DIR)}
    if BACKUP_STORAGE_BACKEND.endswith("FileSystemStorage")
    else {},
}
