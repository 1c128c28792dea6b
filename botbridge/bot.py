"""The one place that talks to the Telegram Bot API (through pyTelegramBotAPI).

Nothing here runs at import time: the bot is built when first needed, from settings. Every
call's failure comes out as one error type, `TelegramError`, which says whether trying again
can help and how long Telegram asked us to wait, with the bot token masked out of its text.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import telebot
from django.conf import settings
from telebot import apihelper, types
from telebot.apihelper import ApiHTTPException, ApiTelegramException

from core import secrets

__all__ = ["TelegramError", "get_bot", "send"]

# Telegram cancels a checkout that is not answered within 10 s: never wait longer than that.
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 7


_bots: dict[str, telebot.TeleBot] = {}


class TelegramError(Exception):
    """A Bot API call failed. `code` is Telegram's error_code (0: no answer at all).

    Retryable: flood waits (429, with Telegram's `retry_after`), server errors (5xx) and the
    network. Anything else is Telegram refusing the call, and doing it again will not help.
    """

    def __init__(self, code: int, description: str, *, retry_after: float | None = None):
        self.code = code
        # Errors quote the request URL, and with it the bot token.
        self.description = secrets.mask(description)
        self.retry_after = retry_after
        super().__init__(f"{code}: {self.description}" if code else self.description)

    @property
    def is_retryable(self) -> bool:
        return self.code in (0, 429) or self.code >= 500

    @property
    def is_bot_blocked(self) -> bool:
        """403: the user blocked the bot or deleted their account."""
        return self.code == 403


@contextmanager
def _translated() -> Iterator[None]:
    """Turn pyTelegramBotAPI's and requests' exceptions into TelegramError."""
    try:
        yield
    except ApiTelegramException as error:
        parameters = (error.result_json or {}).get("parameters") or {}
        retry_after = parameters.get("retry_after")
        raise TelegramError(
            error.error_code,
            str(error.description),
            retry_after=float(retry_after) if retry_after is not None else None,
        ) from None
    except ApiHTTPException as error:
        code = getattr(error.result, "status_code", 0) or 0
        raise TelegramError(code, f"HTTP error from the Bot API: {error}") from None
    except (requests.ConnectionError, requests.Timeout) as error:
        raise TelegramError(0, f"Network error: {type(error).__name__}: {error}") from None


def get_bot() -> telebot.TeleBot:
    """The bot for the configured token, pointed at the configured Bot API server."""
    apihelper.API_URL = settings.TELEGRAM_API_URL + "/bot{0}/{1}"
    apihelper.CONNECT_TIMEOUT = CONNECT_TIMEOUT
    apihelper.READ_TIMEOUT = READ_TIMEOUT
    # Keep connections to the Bot API alive across calls in this thread.
    apihelper.SESSION_TIME_TO_LIVE = 600
    token = settings.TELEGRAM_BOT_TOKEN
    if token not in _bots:
        # Not threaded: a TeleBot used only to make calls keeps no per-call state.
        _bots[token] = telebot.TeleBot(token, threaded=False, parse_mode=None)
    return _bots[token]


def payment_mode(currency: str) -> str:
    """Whose money an invoice sent now asks for: the local sandbox's demo money, a TEST
    provider token's (A-Pay's test tokens say so: '…:TEST:…'), or live money. Stars use no
    provider token and are live unless the bot is the sandbox's."""
    if settings.TELEGRAM_SANDBOX:
        return "sandbox"
    if currency != "XTR" and ":TEST:" in settings.TELEGRAM_PROVIDER_TOKEN.upper():
        return "test"
    return "live"


def send(method: str, params: dict[str, Any]) -> types.Message:
    """Send one stored outbound message (an outbox row's method and params)."""
    with _translated():
        return _send(get_bot(), method, params)


def _send(bot: telebot.TeleBot, method: str, params: dict[str, Any]) -> types.Message:
    markup = params.get("reply_markup")
    markup_json = json.dumps(markup) if markup else None
    if method == "sendMessage":
        return bot.send_message(params["chat_id"], params["text"], reply_markup=markup_json)
    if method == "editMessageText":
        try:
            return bot.edit_message_text(
                params["text"], params["chat_id"], params["message_id"], reply_markup=markup_json
            )
        except ApiTelegramException as error:
            # The same text and buttons again (a double press): nothing to change.
            if "message is not modified" not in str(error.description):
                raise
        return None
    if method == "deleteMessage":
        try:
            bot.delete_message(params["chat_id"], params["message_id"])
        except ApiTelegramException as error:
            # Already gone (the customer deleted it, or a retry after it went): done.
            if "message to delete not found" not in str(error.description):
                raise
        return None
    if method == "sendInvoice":
        currency = params["currency"]
        prices = [types.LabeledPrice(p["label"], p["amount"]) for p in params["prices"]]
        return bot.send_invoice(
            params["chat_id"],
            title=params["title"],
            description=params["description"],
            invoice_payload=params["payload"],
            # Stars need no provider: Telegram wants an empty token for XTR.
            provider_token="" if currency == "XTR" else settings.TELEGRAM_PROVIDER_TOKEN,
            currency=currency,
            prices=prices,
            photo_url=params.get("photo_url") or None,
            need_shipping_address=params.get("need_shipping_address") or None,
            reply_markup=markup_json,
        )
    if method == "createInvoiceLink":
        # A subscription: the link (with its 30-day period) goes out in a message's button.
        link = bot.create_invoice_link(
            title=params["title"],
            description=params["description"],
            payload=params["payload"],
            provider_token="",  # Stars only
            currency=params["currency"],
            prices=[types.LabeledPrice(p["label"], p["amount"]) for p in params["prices"]],
            subscription_period=params.get("subscription_period"),
            photo_url=params.get("photo_url") or None,
        )
        button = {"inline_keyboard": [[{"text": params["button"], "url": link}]]}
        return bot.send_message(
            params["chat_id"], params["message"], reply_markup=json.dumps(button)
        )
    if method == "editUserStarSubscription":
        bot.edit_user_star_subscription(
            params["user_id"], params["telegram_payment_charge_id"], params["is_canceled"]
        )
        return None
    raise ValueError(f"Unsupported outbound method {method}")


def answer_query(reply: dict[str, Any]) -> bool:
    """Make a query's answer call (what the webhook sends back in its response) directly."""
    with _translated():
        return _answer_query(get_bot(), reply)


def answer_callback(callback_query_id: str) -> bool:
    """Stop a pressed button's spinner in the customer's app."""
    with _translated():
        return get_bot().answer_callback_query(callback_query_id)


def _answer_query(bot: telebot.TeleBot, reply: dict[str, Any]) -> bool:
    method = reply["method"]
    if method == "answerPreCheckoutQuery":
        return bot.answer_pre_checkout_query(
            reply["pre_checkout_query_id"], ok=reply["ok"], error_message=reply.get("error_message")
        )
    if method == "answerShippingQuery":
        options = [
            types.ShippingOption(option["id"], option["title"]).add_price(
                *(types.LabeledPrice(price["label"], price["amount"]) for price in option["prices"])
            )
            for option in reply.get("shipping_options", [])
        ]
        return bot.answer_shipping_query(
            reply["shipping_query_id"],
            ok=reply["ok"],
            shipping_options=options or None,
            error_message=reply.get("error_message"),
        )
    raise ValueError(f"Unsupported answer {method}")


ALLOWED_UPDATES = ["message", "callback_query", "pre_checkout_query", "shipping_query"]


def set_webhook(*, url: str, secret: str, max_connections: int) -> bool:
    with _translated():
        return get_bot().set_webhook(
            url=url,
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
            max_connections=max_connections,
        )


def delete_webhook(*, drop_pending_updates: bool = False) -> bool:
    with _translated():
        return get_bot().delete_webhook(drop_pending_updates=drop_pending_updates)


def set_commands(*, commands: list[tuple[str, str]], language_code: str | None) -> bool:
    with _translated():
        return get_bot().set_my_commands(
            [types.BotCommand(name, description) for name, description in commands],
            language_code=language_code,
        )


def get_webhook_info() -> dict[str, Any]:
    """getWebhookInfo as Telegram's JSON (url, pending_update_count, last_error_…)."""
    get_bot()  # points apihelper at the configured server
    with _translated():
        return apihelper.get_webhook_info(settings.TELEGRAM_BOT_TOKEN)


def get_commands(*, language_code: str | None) -> list[str]:
    """The command names the menu shows for this language (getMyCommands)."""
    with _translated():
        return [c.command for c in get_bot().get_my_commands(language_code=language_code)]


def get_raw_updates(*, offset: int, timeout: int) -> list[dict[str, Any]]:
    """getUpdates as raw JSON, so polling stores exactly what a webhook would receive."""
    get_bot()  # points apihelper at the configured server
    with _translated():
        return apihelper.get_updates(
            settings.TELEGRAM_BOT_TOKEN,
            offset=offset,
            timeout=timeout,
            allowed_updates=ALLOWED_UPDATES,
            long_polling_timeout=timeout,
        )


def refund_star_payment(*, user_id: int, telegram_payment_charge_id: str) -> bool:
    with _translated():
        return get_bot().refund_star_payment(user_id, telegram_payment_charge_id)


def get_star_transactions(*, offset: int, limit: int = 100) -> list[dict[str, Any]]:
    """getStarTransactions as Telegram's JSON: up to `limit` (1-100) transactions from `offset`
    in Telegram's chronological list (raw, so every field Telegram adds later is kept)."""
    get_bot()  # points apihelper at the configured server
    with _translated():
        result = apihelper.get_star_transactions(
            settings.TELEGRAM_BOT_TOKEN, offset=offset, limit=limit
        )
    return list(result.get("transactions", []))


def get_my_star_balance() -> dict[str, int]:
    """getMyStarBalance: {"amount": ..., "nanostar_amount": ...} (a StarAmount)."""
    get_bot()
    with _translated():
        result = apihelper.get_my_star_balance(settings.TELEGRAM_BOT_TOKEN)
    return {
        "amount": int(result["amount"]),
        "nanostar_amount": int(result.get("nanostar_amount") or 0),
    }
