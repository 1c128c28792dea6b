"""Staff page "Telegram sandbox": chat with the bot as a test customer, through the real webhook.

The page plays the customer's Telegram app: it asks the local Telegram (the fake Bot API
server) to deliver what the person typed or pressed, and shows the chat as that server
holds it. Nothing here touches the bot's code directly.
"""

import json
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from botbridge.sandbox.server import INVOICE_LINK_PREFIX
from core import money

TEST_USERS = {
    "en": {
        "id": 700000001,
        "first_name": "Alex",
        "last_name": "Sandbox",
        "username": "alex_sandbox",
        "language_code": "en",
    },
    "ru": {
        "id": 700000002,
        "first_name": "Маша",
        "last_name": "Песочница",
        "username": "masha_sandbox",
        "language_code": "ru",
    },
}


class SandboxUnavailable(Exception):
    pass


def _control(action: str, params: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the configured sandbox URL
        f"{settings.TELEGRAM_API_URL}/sandbox/{action}",
        data=json.dumps(params or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - settings URL
            return json.loads(response.read())["result"]
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}")
        raise SandboxUnavailable(body.get("description", str(error))) from error
    except (urllib.error.URLError, TimeoutError, ValueError) as error:
        raise SandboxUnavailable(str(error)) from error


def _guard() -> None:
    if not settings.TELEGRAM_SANDBOX:
        raise Http404("The Telegram sandbox is off: a real bot token is configured.")


def _user(request: HttpRequest) -> dict[str, Any]:
    language = request.POST.get("lang") or request.GET.get("lang") or "en"
    return TEST_USERS.get(language, TEST_USERS["en"])


def _back(request: HttpRequest) -> HttpResponse:
    return redirect(f"/sandbox/?lang={_user(request)['language_code']}")


def _entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    message = entry["message"]
    view = {"from": entry["from"], "id": message.get("message_id"), "text": message.get("text", "")}
    if message.get("invoice"):
        invoice = message["invoice"]
        view["invoice"] = {
            **invoice,
            "display": money.format_amount(invoice["total_amount"], invoice["currency"]),
        }
    if message.get("successful_payment"):
        paid = message["successful_payment"]
        view["text"] = f"✓ Paid {money.format_amount(paid['total_amount'], paid['currency'])}"
    view["buttons"] = [
        # An invoice link (a subscription's) is paid here; other links just open.
        [{**b, "pay_link": str(b.get("url", "")).startswith(INVOICE_LINK_PREFIX)} for b in row]
        for row in message.get("reply_markup", {}).get("inline_keyboard", [])
    ]
    return view


@staff_member_required
def chat(request: HttpRequest) -> HttpResponse:
    _guard()
    user = _user(request)
    error = None
    entries = []
    try:
        entries = [_entry_view(e) for e in _control(f"chats/{user['id']}")]
    except SandboxUnavailable as problem:
        error = f"The local Telegram at {settings.TELEGRAM_API_URL} does not answer ({problem}). Start it with `make run` or `python manage.py run_telegram_sandbox`."
    context = {
        "user": user,
        "entries": entries,
        "error": error,
        "users": TEST_USERS,
        "title": "Telegram sandbox",
    }
    return render(request, "sandbox/chat.html", context)


def _act(request: HttpRequest, action: str, params: dict[str, Any]) -> HttpResponse:
    _guard()
    try:
        result = _control(action, {"user": _user(request), **params})
    except SandboxUnavailable as problem:
        messages.error(request, f"Sandbox: {problem}")
        return _back(request)
    delivery = result.get("delivery", result) if isinstance(result, dict) else {}
    status = delivery.get("status") if isinstance(delivery, dict) else None
    if status not in (200, None):
        messages.warning(request, f"The webhook answered {status}.")
    return _back(request)


@staff_member_required
@require_POST
def send(request: HttpRequest) -> HttpResponse:
    text = request.POST.get("text", "").strip()
    if not text:
        messages.error(request, "Type a message first.")
        return _back(request)
    return _act(request, "user/message", {"text": text[:4096]})


@staff_member_required
@require_POST
def press(request: HttpRequest) -> HttpResponse:
    return _act(
        request,
        "user/press",
        {"message_id": request.POST.get("message_id", "0"), "data": request.POST.get("data", "")},
    )


@staff_member_required
@require_POST
def pay(request: HttpRequest) -> HttpResponse:
    outcome = "decline" if request.POST.get("outcome") == "decline" else "success"
    return _act(
        request, "user/pay", {"message_id": request.POST.get("message_id", "0"), "outcome": outcome}
    )


@staff_member_required
@require_POST
def pay_link(request: HttpRequest) -> HttpResponse:
    """Open an invoice link (a subscription's) and pay it."""
    return _act(request, "user/pay_link", {"link": request.POST.get("link", "")})


@staff_member_required
@require_POST
def renew(request: HttpRequest) -> HttpResponse:
    """A period passes: Telegram renews the test customer's subscriptions not cancelled."""
    _guard()
    try:
        result = _control("subscriptions/renew", {"user": _user(request)})
    except SandboxUnavailable as problem:
        messages.error(request, f"Sandbox: {problem}")
        return _back(request)
    renewed, skipped = len(result["renewed"]), len(result["skipped"])
    if not renewed and not skipped:
        messages.info(request, "No subscriptions to renew: subscribe from /catalog first.")
    else:
        note = f"Telegram renewed {renewed} subscription(s)"
        messages.success(
            request, note + (f"; {skipped} cancelled, not renewed." if skipped else ".")
        )
    return _back(request)
