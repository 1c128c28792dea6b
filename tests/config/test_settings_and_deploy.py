import os
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "x" * 64 + "-a-long-random-production-secret",
    "ALLOWED_HOSTS": "shop.example.com",
    "DATABASE_URL": "postgres://shopbot:pw@127.0.0.1:5432/shopbot",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "TELEGRAM_WEBHOOK_SECRET": "secret",
}


def manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_fails_at_boot_without_each_required_secret():
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"):
        env = {k: v for k, v in PRODUCTION_ENV.items() if k != name}
        result = manage("check", env=env)
        assert result.returncode != 0
        assert f"Set the {name} environment variable" in result.stderr


def test_embedded_default_needs_no_environment():
    result = manage(
        "diffsettings", "--all", env={"DJANGO_SETTINGS_MODULE": "config.settings.local"}
    )
    assert result.returncode == 0, result.stderr
    assert "django.db.backends.sqlite3" in result.stdout
    assert "CELERY_TASK_ALWAYS_EAGER = True" in result.stdout
    assert "TELEGRAM_SANDBOX = True" in result.stdout


def test_docker_compose_agrees_with_the_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "dispatcher"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    web, worker, beat = services["web"], services["worker"], services["beat"]
    assert web["command"][0] == "gunicorn" and web["command"][
        1
    ] == settings.WSGI_APPLICATION.replace(".application", ":application")
    queues = worker["command"][worker["command"].index("-Q") + 1].split(",")
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert set(queues) == routed | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert beat["command"][:4] == ["celery", "-A", "config", "beat"]
    dispatcher = services["dispatcher"]
    assert dispatcher["command"] == ["python", "manage.py", "run_update_dispatcher"]
    for service in (web, worker, beat, dispatcher):
        env = service["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
        # Export files written by the worker are downloaded from the web: one shared volume.
        assert env["MEDIA_ROOT"] == "/app/media"
        assert "media:/app/media" in service["volumes"]
    assert "media" in compose["volumes"]
    example = (ROOT / ".env.example").read_text()
    for name in (
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
        "TELEGRAM_PROVIDER_TOKEN",
        "TELEGRAM_WEBHOOK_URL",
        "TELEGRAM_API_URL",
    ):
        assert f"{name}=" in example, name
