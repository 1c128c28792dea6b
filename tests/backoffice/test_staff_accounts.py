"""Staff accounts: two-factor login, brute-force lockout, idle sessions, the login log."""

import re
import time

import pytest
from django_otp.oath import totp

from backoffice.middleware import LAST_SEEN
from tests.conftest import role_user

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"


def sign_in(client, username, code=""):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": PASSWORD, "otp_token": code},
    )


def enrol(client) -> tuple[bytes, list[str]]:
    """Scan (read the key off the page), a wrong code, then the right one: recovery codes.

    A code is good once: signing in afterwards takes the next 30-second step (drift=1),
    which the device accepts, as a person would wait for the next code.
    """
    page = client.get("/admin/2fa/").content.decode()
    assert 'id="totp-qr"' in page and "<svg" in page
    key = bytes.fromhex(re.search(r'data-hex="([0-9a-f]+)"', page).group(1))
    wrong = client.post("/admin/2fa/", {"token": "000000" if totp(key) != 0 else "111111"})
    assert "That code is not right" in wrong.content.decode()
    time.sleep(1.1)  # django-otp throttles the next try for a second after a wrong code
    done = client.post("/admin/2fa/", {"token": f"{totp(key):06d}"}).content.decode()
    codes = re.findall(r"<li>(\d{8})</li>", done)
    assert len(codes) == 10
    return key, codes


def test_with_2fa_required_a_new_user_must_enrol_then_signs_in_with_a_code(client, settings):
    settings.STAFF_REQUIRE_2FA = True
    role_user("Support")
    response = sign_in(client, "support")
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 302  # not verified: nothing opens
    assert client.get("/admin/login/")["Location"] == "/admin/2fa/"
    key, codes = enrol(client)
    assert client.get("/admin/").status_code == 200

    client.logout()
    assert (
        "Enter the code from your authenticator app" in sign_in(client, "support").content.decode()
    )
    assert client.get("/admin/").status_code == 302
    assert sign_in(client, "support", f"{totp(key, drift=1):06d}").status_code == 302
    assert client.get("/admin/").status_code == 200

    client.logout()  # a recovery code works once
    assert sign_in(client, "support", codes[0]).status_code == 302
    client.logout()
    assert "Enter the code" in sign_in(client, "support", codes[0]).content.decode()


def test_an_enrolled_user_needs_the_code_even_when_not_required(client, settings):
    settings.STAFF_REQUIRE_2FA = False
    role_user("Finance")
    sign_in(client, "finance")
    home = client.get("/admin/").content.decode()
    assert "turn on two-factor login" in home
    key, _ = enrol(client)
    client.logout()
    assert "Enter the code" in sign_in(client, "finance").content.decode()
    assert sign_in(client, "finance", f"{totp(key, drift=1):06d}").status_code == 302


def test_repeated_failures_lock_the_login_out_saying_nothing_more(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    role_user("Support")
    statuses = [
        client.post("/admin/login/", {"username": "support", "password": "wrong"}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]  # the third failure is the limit
    locked = sign_in(client, "support")  # the right password, now refused
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and "support" not in text.split("<body")[-1]
    for _ in range(3):
        client.post("/admin/login/", {"username": "nobody", "password": "wrong"})
    assert sign_in(client, "nobody").content.decode().count("Too many failed sign-ins") == 1

    # A manager sees the lockout and clears it; the support user signs in again.
    manager = role_user("Manager")
    client.force_login(manager)
    attempts = client.get("/admin/axes/accessattempt/").content.decode()
    assert "support" in attempts
    from axes.models import AccessAttempt, AccessLog

    pk = AccessAttempt.objects.get(username="support").pk
    client.post("/admin/axes/accessattempt/", {"action": "delete_selected",
                "_selected_action": [pk], "post": "yes"})  # fmt: skip
    assert not AccessAttempt.objects.filter(username="support").exists()
    client.logout()
    assert sign_in(client, "support").status_code == 302
    assert AccessLog.objects.filter(username="support").exists()  # the login log


def test_an_idle_staff_session_ends(client, settings):
    settings.STAFF_IDLE_TIMEOUT = settings.STAFF_IDLE_TIMEOUT.__class__(minutes=30)
    client.force_login(role_user("Support"))
    assert client.get("/admin/").status_code == 200
    session = client.session
    session[LAST_SEEN] = time.time() - 31 * 60
    session.save()
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 302  # signed out, not just redirected once
