"""The go-live check against the local Telegram, from not ready to ready."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice import golive
from backoffice.models import Backup
from tests.conftest import role_user
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

PRODUCTION_LIKE = {
    "DEBUG": False,
    "SECRET_KEY": "k7#Qz9!vL2@pX5$wR8^tY1&uI4*oP6(aS3)dF0-gH_jK+lZ=xC~vB",
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "ALLOWED_HOSTS": ["shop.example.com"],
}


def states(items):
    return {item.name: item.state for item in items}


def test_not_ready_then_ready(fake_telegram, settings, client):
    ProductFactory(sku="vip", currency="XTR", price=250, kind="digital")
    manager = role_user("Manager")
    found = states(golive.golive_items())
    assert found["Webhook"] == "failure"  # none registered
    assert found["Command menu"] == "failure"
    assert found["Backups"] == "failure"
    assert found["Staff two-factor"] == "failure"
    assert found["Payment provider"] == "warning"  # the sandbox: demo money
    with pytest.raises(CommandError, match="not ready to go live"):
        call_command("golive_check")

    # The provider's checklist, done: webhook with secret, live token, the menu with
    # /paysupport (Stars are sold), a verified backup, every staff user on two factors.
    settings.TELEGRAM_WEBHOOK_URL = "https://shop.example.com/telegram/webhook/"
    call_command("set_telegram_webhook")
    call_command("sync_bot_commands")
    assert "paysupport" in [c["command"] for c in fake_telegram.state.commands[""]]
    settings.TELEGRAM_SANDBOX, settings.TELEGRAM_PROVIDER_TOKEN = False, "381764678:LIVE:90210"
    Backup.objects.create(name="b.tar", database="postgresql", status="done",
                          verified_at=timezone.now())  # fmt: skip
    TOTPDevice.objects.create(user=manager, name="app", confirmed=True)
    settings.STAFF_REQUIRE_2FA = True
    for name, value in PRODUCTION_LIKE.items():
        setattr(settings, name, value)
    items = golive.golive_items()
    assert {i.name: (i.state, i.detail) for i in items if i.state != "ok"} == {}
    call_command("golive_check")

    # Quiet failures show up: a delivery error at Telegram, an old backup.
    fake_telegram.state.last_error_date = int(timezone.now().timestamp())
    fake_telegram.state.last_error_message = "Wrong response from the webhook: 502"
    Backup.objects.update(created_at=timezone.now() - timedelta(hours=30))
    found = states(golive.golive_items())
    assert (found["Delivery"], found["Backups"]) == ("warning", "failure")


def test_the_admin_shows_the_checklist_to_managers_only(fake_telegram, client):
    client.force_login(role_user("Manager"))
    page = client.get("/admin/golive/").content.decode()
    assert 'id="golive"' in page and "Webhook" in page and "How to fix it" in page
    client.force_login(role_user("Support"))
    assert client.get("/admin/golive/").status_code == 403
