import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from botbridge import services


def _answer(status: int, description: str = "") -> JsonResponse:
    body = {"ok": status == 200}
    if description:
        body["description"] = description
    return JsonResponse(body, status=status)


# Telegram's updates nest a dozen levels at most; far deeper JSON is not an update (and
# PostgreSQL refuses to store JSON nested beyond its stack depth).
MAX_DEPTH = 64


def _not_json(constant: str):
    """NaN and Infinity: Python reads them, JSON (and PostgreSQL) does not."""
    raise ValueError(f"{constant} is not JSON")


def _too_deep(value) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest) -> JsonResponse:
    """Telegram's webhook: verify, store raw under update_id, act once, answer."""
    expected = settings.TELEGRAM_WEBHOOK_SECRET.encode()
    given = request.META.get("HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN", "").encode()
    if not expected or not hmac.compare_digest(given, expected):
        return _answer(403, "Forbidden")
    limit = settings.TELEGRAM_WEBHOOK_MAX_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _answer(400, "Bad Content-Length")
    if declared > limit:
        return _answer(413, "Update too large")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _answer(413, "Update too large")
    try:
        text = body.decode()
        payload = json.loads(text, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _answer(400, "Body is not JSON")
    update_id = payload.get("update_id") if isinstance(payload, dict) else None
    if type(update_id) is not int or not 0 <= update_id < 2**63 or _too_deep(payload):
        return _answer(400, "Body is not a Telegram Update")
    try:
        reply = services.update_receive(payload=payload, raw=text)
    except services.TRANSIENT_ERRORS:
        return _answer(503, "Temporarily unavailable, deliver again")
    if reply is not None:
        # A query's answer rides on the response: Telegram makes the call for the bot.
        return JsonResponse(reply)
    return _answer(200)
