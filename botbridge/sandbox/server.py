"""A local Telegram: a real HTTP server on 127.0.0.1 that answers the Bot API as Telegram would.

It checks every call's parameters against the official Bot API spec (the part the bot uses,
vendored in bot_api_spec.json with its version), keeps each chat as the customer would see it,
records every call, and plays the customer: it delivers updates to the webhook with the secret
header, runs the checkout (pre_checkout_query, then successful_payment or a decline), and can be
told to fail the next calls (429 with retry_after, 5xx, 403) for tests.

Standard library only, so tests, the `run_telegram_sandbox` command and benchmarks share it.
Control endpoints live under /sandbox/ (see `_CONTROL`).
"""

import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SPEC = json.loads((Path(__file__).with_name("bot_api_spec.json")).read_text(encoding="utf-8"))
_CURRENCIES = json.loads(
    (Path(__file__).resolve().parent.parent.parent / "core" / "data" / "currencies.json").read_text(
        encoding="utf-8"
    )
)
BOT_USER_ID = 100000
# Telegram's rules for Stars subscriptions, and how its invoice links look.
SUBSCRIPTION_PERIOD = 2592000
SUBSCRIPTION_MAX_STARS = 10000
INVOICE_LINK_PREFIX = "https://t.me/$"


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _coerce(name: str, types: list[str], raw: Any) -> Any:
    """Parse one parameter the way Telegram does (query, form and JSON bodies all arrive)."""
    for kind in types:
        try:
            if kind == "Integer":
                if isinstance(raw, bool):
                    raise ValueError
                return int(raw)
            if kind == "Float":
                return float(raw)
            if kind == "Boolean":
                if isinstance(raw, bool):
                    return raw
                if str(raw).lower() in ("true", "1"):
                    return True
                if str(raw).lower() in ("false", "0"):
                    return False
                raise ValueError
            if kind == "String":
                if isinstance(raw, (dict, list)):
                    raise ValueError
                return str(raw)
            # "Array of X" or an object type: JSON-serialized.
            value = json.loads(raw) if isinstance(raw, str) else raw
            if kind.startswith("Array of") and not isinstance(value, list):
                raise ValueError
            if not kind.startswith("Array of") and not isinstance(value, dict):
                raise ValueError
            return value
        except (ValueError, TypeError):
            continue
    raise _bad(f"can't parse parameter {name} as {' or '.join(types)}")


def validate(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check a call against the spec: known method, required present, types, no strangers."""
    spec = SPEC["methods"].get(method)
    if spec is None:
        raise ApiError(404, "Not Found: method not found")
    fields = {f["name"]: f for f in spec["fields"]}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise _bad(f"unknown parameter {unknown[0]} for {method}")
    clean = {}
    for name, spec_field in fields.items():
        if name not in params or params[name] is None:
            if spec_field["required"]:
                raise _bad(f"parameter {name} is required")
            continue
        clean[name] = _coerce(name, spec_field["types"], params[name])
    return clean


@dataclass
class Failure:
    method: str
    error_code: int
    description: str
    retry_after: int | None = None
    times: int = 1
    chat_id: int | None = None


@dataclass
class State:
    token: str
    webhook_url: str = ""
    secret_token: str = ""
    allowed_updates: list[str] = field(default_factory=list)
    max_connections: int = 40
    calls: list[dict[str, Any]] = field(default_factory=list)
    chats: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    pending_updates: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: dict[str, Any] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    refunded_charges: set[str] = field(default_factory=set)
    # The bot's Stars transactions in Telegram's order (getStarTransactions), and the Stars
    # sales by charge id, for refunds.
    star_transactions: list[dict[str, Any]] = field(default_factory=list)
    star_sales: dict[str, dict[str, Any]] = field(default_factory=dict)
    # createInvoiceLink's invoices by their slug, and Stars subscriptions by first charge id.
    invoice_links: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What Telegram reports in getWebhookInfo after a delivery failed.
    last_error_date: int | None = None
    last_error_message: str = ""


class FakeTelegram:
    """The state and behaviour; `serve()` puts it behind HTTP."""

    def __init__(
        self,
        token: str,
        webhook_url: str = "",
        secret_token: str = "",
        *,
        accept_unknown_queries: bool = False,
        record_calls: bool = True,
        id_base: int = 0,
    ):
        self.state = State(token=token, webhook_url=webhook_url, secret_token=secret_token)
        # Benchmarks post queries straight to the webhook, so this Telegram never saw them.
        self.accept_unknown_queries = accept_unknown_queries
        self.record_calls = record_calls
        self.lock = threading.RLock()
        # `id_base` (the start time in milliseconds, for `run_telegram_sandbox`) keeps the ids of
        # a restarted sandbox above the last run's: the bot stores update ids and charge ids
        # and would take a repeated one for a redelivery.
        self._ids = itertools.count(id_base + 1)
        self._update_ids = itertools.count(id_base + 1_000_000)
        self._charges = itertools.count(id_base + 1)
        self.httpd: ThreadingHTTPServer | None = None
        # Tests may deliver through something other than HTTP (the Django test client).
        self.transport = None
        # Told of every payment in another currency (the local A-Pay records the deposit).
        self.on_fiat_payment = None

    # --- Bot API -------------------------------------------------------------------------

    def call(self, token: str, method: str, params: dict[str, Any]) -> Any:
        if token != self.state.token:
            raise ApiError(401, "Unauthorized")
        with self.lock:
            if self.record_calls:
                self.state.calls.append(
                    {"method": method, "params": dict(params), "at": time.time()}
                )
            failure = self._take_failure(method, params)
        if failure:
            raise ApiError(failure.error_code, failure.description, failure.retry_after)
        clean = validate(method, params)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return True
        with self.lock:
            return handler(clean)

    def _take_failure(self, method: str, params: dict[str, Any]) -> Failure | None:
        for failure in self.state.failures:
            if failure.method not in (method, "*"):
                continue
            if failure.chat_id is not None and str(params.get("chat_id")) != str(failure.chat_id):
                continue
            failure.times -= 1
            if failure.times <= 0:
                self.state.failures.remove(failure)
            return failure
        return None

    def _m_getMe(self, p):
        return {
            "id": BOT_USER_ID,
            "is_bot": True,
            "first_name": "Sandbox shop",
            "username": "sandbox_shop_bot",
        }

    def _m_setWebhook(self, p):
        self.state.webhook_url = p["url"]
        self.state.secret_token = p.get("secret_token", "")
        self.state.allowed_updates = p.get("allowed_updates", [])
        self.state.max_connections = p.get("max_connections", 40)
        return True

    def _m_deleteWebhook(self, p):
        self.state.webhook_url = ""
        if p.get("drop_pending_updates"):
            self.state.pending_updates.clear()
        return True

    def _m_getWebhookInfo(self, p):
        info = {
            "url": self.state.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.state.pending_updates),
            "max_connections": self.state.max_connections,
            "allowed_updates": self.state.allowed_updates,
        }
        if self.state.last_error_date:
            info["last_error_date"] = self.state.last_error_date
            info["last_error_message"] = self.state.last_error_message
        return info

    def _m_getUpdates(self, p):
        if self.state.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = p.get("offset", 0)
        self.state.pending_updates = [
            u for u in self.state.pending_updates if u["update_id"] >= offset
        ]
        return self.state.pending_updates[: p.get("limit", 100)]

    def _chat(self, chat_id: int) -> list[dict[str, Any]]:
        if chat_id not in self.state.chats:
            raise _bad("chat not found")
        return self.state.chats[chat_id]

    def _bot_message(self, chat_id: int, extra: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(chat_id)
        user = self.state.users.get(chat_id, {"id": chat_id, "first_name": "Customer"})
        message = {
            "message_id": next(self._ids),
            "from": self._m_getMe({}),
            "chat": {"id": chat_id, "type": "private", "first_name": user.get("first_name", "")},
            "date": int(time.time()),
            **extra,
        }
        chat.append({"from": "bot", "message": message})
        return message

    def _check_markup(self, markup: dict[str, Any] | None) -> None:
        if not markup:
            return
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise _bad("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")

    def _m_sendMessage(self, p):
        if not 1 <= len(p["text"]) <= 4096:
            raise _bad("message text is empty" if not p["text"] else "message is too long")
        self._check_markup(p.get("reply_markup"))
        extra = {"text": p["text"]}
        if p.get("reply_markup"):
            extra["reply_markup"] = p["reply_markup"]
        return self._bot_message(int(p["chat_id"]), extra)

    def _m_editMessageText(self, p):
        if not 1 <= len(p["text"]) <= 4096:
            raise _bad("message text is empty" if not p["text"] else "message is too long")
        self._check_markup(p.get("reply_markup"))
        for entry in self._chat(int(p["chat_id"])):
            message = entry["message"]
            if entry["from"] == "bot" and message.get("message_id") == p.get("message_id"):
                markup = p.get("reply_markup") or None
                if message.get("text") == p["text"] and message.get("reply_markup") == markup:
                    raise _bad("message is not modified")
                message["text"] = p["text"]
                if markup:
                    message["reply_markup"] = markup
                else:
                    message.pop("reply_markup", None)
                message["edit_date"] = int(time.time())
                return {k: v for k, v in message.items() if not k.startswith("_")}
        raise _bad("message to edit not found")

    def _check_invoice(self, p) -> int:
        """sendInvoice's and createInvoiceLink's rules; the total."""
        if not 1 <= len(p["title"]) <= 32:
            raise _bad("INVOICE_TITLE_INVALID")
        if not 1 <= len(p["description"]) <= 255:
            raise _bad("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(p["payload"].encode()) <= 128:
            raise _bad("INVOICE_PAYLOAD_INVALID")
        currency = p["currency"]
        prices = p["prices"]
        if not prices or any(type(x.get("amount")) is not int for x in prices):
            raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        total = sum(x["amount"] for x in prices)
        if currency == "XTR":
            if p.get("provider_token"):
                raise _bad("PAYMENT_PROVIDER_INVALID")
            if len(prices) != 1:
                raise _bad("Stars invoices must contain exactly one price")
            if p.get("need_shipping_address"):
                raise _bad("shipping is not supported for Stars")
        else:
            if currency not in _CURRENCIES:
                raise _bad("CURRENCY_INVALID")
            if not p.get("provider_token"):
                raise _bad("PAYMENT_PROVIDER_INVALID")
            low, high = (
                int(_CURRENCIES[currency]["min_amount"]),
                int(_CURRENCIES[currency]["max_amount"]),
            )
            if not low <= total <= high:
                raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        return total

    def _m_sendInvoice(self, p):
        total = self._check_invoice(p)
        currency = p["currency"]
        prices = p["prices"]
        self._check_markup(p.get("reply_markup"))
        invoice = {
            "title": p["title"],
            "description": p["description"],
            "start_parameter": p.get("start_parameter", ""),
            "currency": currency,
            "total_amount": total,
        }
        message = self._bot_message(int(p["chat_id"]), {"invoice": invoice})
        # What the customer's app keeps to pay it later; never shown in the message.
        message["_checkout"] = {
            "payload": p["payload"],
            "need_shipping_address": bool(p.get("need_shipping_address")),
            "provider_token": p.get("provider_token", ""),
            "photo_url": p.get("photo_url", ""),
            "prices": prices,
        }
        return {k: v for k, v in message.items() if not k.startswith("_")}

    def _m_createInvoiceLink(self, p):
        total = self._check_invoice(p)
        period = p.get("subscription_period")
        if period is not None:
            if p["currency"] != "XTR":
                raise _bad("subscriptions must be paid in Telegram Stars")
            if period != SUBSCRIPTION_PERIOD:
                raise _bad("SUBSCRIPTION_PERIOD_INVALID")
            if total > SUBSCRIPTION_MAX_STARS:
                raise _bad("SUBSCRIPTION_PRICE_INVALID")
        slug = f"{next(self._ids):x}{secrets.token_hex(4)}"
        self.state.invoice_links[slug] = {
            "invoice": {
                "title": p["title"],
                "description": p["description"],
                "start_parameter": "",
                "currency": p["currency"],
                "total_amount": total,
            },
            "checkout": {
                "payload": p["payload"],
                "need_shipping_address": bool(p.get("need_shipping_address")),
                "provider_token": p.get("provider_token", ""),
                "photo_url": p.get("photo_url", ""),
                "prices": p["prices"],
                "subscription_period": period,
            },
        }
        return f"{INVOICE_LINK_PREFIX}{slug}"

    def _m_editUserStarSubscription(self, p):
        subscription = self.state.subscriptions.get(p["telegram_payment_charge_id"])
        if subscription is None or subscription["user"]["id"] != p["user_id"]:
            raise _bad("CHARGE_ID_INVALID")
        if not p["is_canceled"] and subscription["expires"] <= time.time():
            raise _bad("SUBSCRIPTION_EXPIRED")
        subscription["canceled"] = bool(p["is_canceled"])
        return True

    def _answer_query(self, query_id: str, kind: str, p: dict[str, Any]) -> bool:
        query = self.state.queries.get(query_id)
        if query is None and self.accept_unknown_queries:
            query = self.state.queries.setdefault(query_id, {"kind": kind, "answer": None})
        if query is None or query["kind"] != kind or query.get("answer") is not None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if kind != "callback" and not p["ok"] and not p.get("error_message"):
            raise _bad("error_message is required when ok is False")
        query["answer"] = p
        return True

    def _m_answerCallbackQuery(self, p):
        return self._answer_query(p["callback_query_id"], "callback", p)

    def _m_answerPreCheckoutQuery(self, p):
        return self._answer_query(p["pre_checkout_query_id"], "pre_checkout", p)

    def _m_answerShippingQuery(self, p):
        if p["ok"] and not p.get("shipping_options"):
            raise _bad("shipping_options are required when ok is True")
        return self._answer_query(p["shipping_query_id"], "shipping", p)

    def _m_refundStarPayment(self, p):
        charge = p["telegram_payment_charge_id"]
        if not charge.startswith("stars-") and charge not in self.state.star_sales:
            raise _bad("CHARGE_ID_INVALID")
        if charge in self.state.refunded_charges:
            raise _bad("CHARGE_ALREADY_REFUNDED")
        sale = self.state.star_sales.get(charge)
        if sale is not None and sale["source"]["user"]["id"] != p["user_id"]:
            raise _bad("USER_ID_INVALID")
        self.state.refunded_charges.add(charge)
        if sale is not None:
            user = sale["source"]["user"]
            self.star_transaction_add(
                {"id": charge, "amount": sale["amount"], "receiver": {
                    "type": "user", "transaction_type": "invoice_payment", "user": user}}
            )  # fmt: skip
        return True

    def _m_deleteMessage(self, p):
        chat = self.state.chats.get(int(p["chat_id"]), [])
        for entry in chat:
            if entry["from"] == "bot" and entry["message"].get("message_id") == p["message_id"]:
                chat.remove(entry)
                return True
        raise _bad("message to delete not found")

    def _m_getStarTransactions(self, p):
        limit = p.get("limit", 100)
        if not 1 <= limit <= 100:
            raise _bad("limit must be between 1 and 100")
        offset = max(0, p.get("offset", 0))
        return {"transactions": self.state.star_transactions[offset : offset + limit]}

    def _m_getMyStarBalance(self, p):
        nanos = 0
        for tx in self.state.star_transactions:
            moved = tx["amount"] * 1_000_000_000 + tx.get("nanostar_amount", 0)
            nanos += moved if "source" in tx else -moved
        whole = int(nanos / 1_000_000_000)  # toward zero, as Telegram's StarAmount
        balance = {"amount": whole}
        if nanos - whole * 1_000_000_000:
            balance["nanostar_amount"] = nanos - whole * 1_000_000_000
        return balance

    def star_transaction_add(self, tx: dict[str, Any]) -> dict[str, Any]:
        """Append a transaction to the bot's Stars history (a sale, a refund, a withdrawal...)."""
        tx = {"date": int(time.time()), **tx}
        with self.lock:
            self.state.star_transactions.append(tx)
            if (tx.get("source") or {}).get("type") == "user":
                self.state.star_sales[tx["id"]] = tx
        return tx

    def _m_setMyCommands(self, p):
        for command in p["commands"]:
            if not command.get("command") or not command.get("description"):
                raise _bad("BOT_COMMAND_INVALID")
        self.state.commands[p.get("language_code", "")] = p["commands"]
        return True

    def _m_getMyCommands(self, p):
        return self.state.commands.get(p.get("language_code", ""), [])

    def _m_deleteMyCommands(self, p):
        self.state.commands.pop(p.get("language_code", ""), None)
        return True

    # --- the customer's side ---------------------------------------------------------------

    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        user = {"is_bot": False, "first_name": "Sandbox", **user}
        with self.lock:
            self.state.users[user["id"]] = user
            self.state.chats.setdefault(user["id"], [])
        return user

    def deliver(self, update: dict[str, Any]) -> dict[str, Any]:
        """Send one update to the webhook (or keep it for getUpdates), as Telegram does.

        A Bot API call in the webhook's response (`{"method": ..., params}`) is made, as
        Telegram makes it; like Telegram, the bot learns nothing of its outcome.
        """
        with self.lock:
            url, secret = self.state.webhook_url, self.state.secret_token
            if self.transport is None and not url:
                self.state.pending_updates.append(update)
                return {"update_id": update["update_id"], "status": None, "queued": True}
        if self.transport is not None:
            status, body = self.transport(update)
        else:
            status, body = self._post(url, secret, update)
        record = {"update_id": update["update_id"], "status": status}
        if status == 200:
            record.update(self.webhook_reply(body))
        with self.lock:
            self.state.deliveries.append(record)
            if status != 200:
                # Telegram keeps the update and says why in getWebhookInfo.
                self.state.pending_updates.append(update)
                self.state.last_error_date = int(time.time())
                self.state.last_error_message = (
                    f"Wrong response from the webhook: {status}"
                    if isinstance(status, int)
                    else f"Connection failed: {status}"
                )
        return record

    @staticmethod
    def _post(url: str, secret: str, update: dict[str, Any]) -> tuple[Any, bytes]:
        # Only ever the webhook URL the bot registered, or the configured sandbox URL.
        request = urllib.request.Request(  # noqa: S310
            url,
            data=json.dumps(update).encode(),
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local URL
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, b""
        except (urllib.error.URLError, TimeoutError) as error:
            return f"unreachable: {error}", b""

    def webhook_reply(self, body: bytes | str) -> dict[str, Any]:
        """Make the Bot API call a webhook answered with, if any; returns what happened."""
        try:
            reply = json.loads(body or b"{}")
        except ValueError:
            return {}
        if not isinstance(reply, dict) or not isinstance(reply.get("method"), str):
            return {}
        method = reply["method"]
        params = {key: value for key, value in reply.items() if key != "method"}
        try:
            self.call(self.state.token, method, params)
        except ApiError as error:
            return {"reply": method, "reply_error": error.description}
        return {"reply": method}

    def new_update(self, **kind: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **kind}

    def user_message(self, user: dict[str, Any], text: str) -> dict[str, Any]:
        user = self._user(user)
        message = {
            "message_id": next(self._ids),
            "from": user,
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        with self.lock:
            self.state.chats[user["id"]].append({"from": "user", "message": message})
        return self.deliver(self.new_update(message=message))

    def _find_message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        with self.lock:
            for entry in self.state.chats.get(chat_id, []):
                if entry["message"].get("message_id") == message_id and entry["from"] == "bot":
                    return entry["message"]
        raise _bad("message not found")

    def user_press(self, user: dict[str, Any], message_id: int, data: str) -> dict[str, Any]:
        user = self._user(user)
        message = self._find_message(user["id"], message_id)
        buttons = [
            b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
        ]
        if data not in [b.get("callback_data") for b in buttons]:
            raise _bad("the message has no such button")
        query_id = str(next(self._ids))
        with self.lock:
            self.state.queries[query_id] = {"kind": "callback", "answer": None}
        public = {k: v for k, v in message.items() if not k.startswith("_")}
        update = self.new_update(
            callback_query={
                "id": query_id,
                "from": user,
                "message": public,
                "chat_instance": str(user["id"]),
                "data": data,
            }
        )
        result = self.deliver(update)
        result["answer"] = self.state.queries[query_id]["answer"]
        return result

    def user_pay(
        self,
        user: dict[str, Any],
        message_id: int,
        outcome: str = "success",
        shipping_address: dict[str, Any] | None = None,
        total_amount: int | None = None,
    ) -> dict[str, Any]:
        """Pay an invoice from the chat: pre-checkout first, then the payment or a decline."""
        user = self._user(user)
        message = self._find_message(user["id"], message_id)
        invoice, checkout = message.get("invoice"), message.get("_checkout")
        if not invoice:
            raise _bad("the message is not an invoice")
        return self._checkout_and_pay(
            user, invoice, checkout, outcome, shipping_address, total_amount
        )

    def user_pay_link(
        self, user: dict[str, Any], link: str, outcome: str = "success"
    ) -> dict[str, Any]:
        """Open an invoice link (createInvoiceLink) and pay it; a subscription starts."""
        user = self._user(user)
        found = self.state.invoice_links.get(link.removeprefix(INVOICE_LINK_PREFIX))
        if not link.startswith(INVOICE_LINK_PREFIX) or found is None:
            raise _bad("invoice link not found")
        return self._checkout_and_pay(user, found["invoice"], found["checkout"], outcome)

    def _checkout_and_pay(
        self,
        user: dict[str, Any],
        invoice: dict[str, Any],
        checkout: dict[str, Any],
        outcome: str = "success",
        shipping_address: dict[str, Any] | None = None,
        total_amount: int | None = None,
    ) -> dict[str, Any]:
        order_info: dict[str, Any] = {}
        if checkout["need_shipping_address"]:
            order_info["shipping_address"] = shipping_address or {
                "country_code": "DE",
                "state": "",
                "city": "Berlin",
                "street_line1": "Unter den Linden 1",
                "street_line2": "",
                "post_code": "10117",
            }
        amount = invoice["total_amount"] if total_amount is None else total_amount
        query_id = str(next(self._ids))
        with self.lock:
            self.state.queries[query_id] = {"kind": "pre_checkout", "answer": None}
        query = {
            "id": query_id,
            "from": user,
            "currency": invoice["currency"],
            "total_amount": amount,
            "invoice_payload": checkout["payload"],
        }
        if order_info:
            query["order_info"] = order_info
        delivery = self.deliver(self.new_update(pre_checkout_query=query))
        answer = self.state.queries[query_id]["answer"]
        result = {"pre_checkout": answer, "delivery": delivery, "paid": False}
        if not answer or not answer.get("ok") or outcome != "success":
            if answer and answer.get("ok"):
                result["declined"] = True
            self._system_note(user["id"], result)
            return result
        period = checkout.get("subscription_period")
        extra = None
        if period:
            expires = int(time.time()) + period
            extra = {
                "subscription_expiration_date": expires,
                "is_recurring": True,
                "is_first_recurring": True,
            }
        result["payment"] = self.pay_message(
            user, invoice["currency"], amount, checkout["payload"], order_info, extra=extra
        )
        if period:
            charge = result["payment"]["update"]["message"]["successful_payment"][
                "telegram_payment_charge_id"
            ]
            with self.lock:
                self.state.subscriptions[charge] = {
                    "user": user,
                    "payload": checkout["payload"],
                    "amount": amount,
                    "period": period,
                    "expires": expires,
                    "canceled": False,
                }
        result["paid"] = True
        return result

    def subscriptions_renew(self, user: dict[str, Any]) -> dict[str, Any]:
        """A month passes: Telegram charges each of the user's subscriptions not cancelled
        (a successful_payment with is_recurring) and extends it."""
        user = self._user(user)
        renewed, skipped = [], []
        with self.lock:
            mine = [
                (charge, sub)
                for charge, sub in self.state.subscriptions.items()
                if sub["user"]["id"] == user["id"]
            ]
        for charge, sub in mine:
            if sub["canceled"]:
                skipped.append(charge)
                continue
            sub["expires"] += sub["period"]
            extra = {"subscription_expiration_date": sub["expires"], "is_recurring": True}
            paid = self.pay_message(user, "XTR", sub["amount"], sub["payload"], extra=extra)
            renewed.append({"subscription": charge, **paid})
        return {"renewed": renewed, "skipped": skipped}

    def pay_message(
        self,
        user: dict[str, Any],
        currency: str,
        amount: int,
        payload: str,
        order_info: dict[str, Any] | None = None,
        charge_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The service message Telegram sends after money moved: successful_payment."""
        user = self._user(user)
        payment = self._payment(user, currency, amount, payload, charge_id)
        if order_info:
            payment["order_info"] = order_info
        payment.update(extra or {})
        self._money_moved(user, payment)
        message = {
            "message_id": next(self._ids),
            "from": user,
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "date": int(time.time()),
            "successful_payment": payment,
        }
        with self.lock:
            self.state.chats[user["id"]].append({"from": "user", "message": message})
        update = self.new_update(message=message)
        return {"update": update, "delivery": self.deliver(update)}

    def _payment(
        self,
        user: dict[str, Any],
        currency: str,
        amount: int,
        payload: str,
        charge_id: str | None = None,
    ) -> dict[str, Any]:
        """A SuccessfulPayment with a fresh charge id (unless given)."""
        number = next(self._charges)
        stars = currency == "XTR"
        return {
            "currency": currency,
            "total_amount": amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id
            or f"{'stars' if stars else 'tg'}-{user['id']}-{number}",
            # A-Pay's order_id: 16 lowercase hex characters.
            "provider_payment_charge_id": "" if stars else f"{number:016x}",
        }

    def _money_moved(self, user: dict[str, Any], payment: dict[str, Any]) -> None:
        """What Telegram (or the provider) itself records of a payment, delivered or not."""
        charge = payment["telegram_payment_charge_id"]
        if payment["currency"] == "XTR":
            source = {"type": "user", "transaction_type": "invoice_payment", "user": user,
                      "invoice_payload": payment["invoice_payload"]}  # fmt: skip
            if payment.get("is_recurring"):
                source["subscription_period"] = SUBSCRIPTION_PERIOD
            self.star_transaction_add(
                {"id": charge, "amount": payment["total_amount"], "source": source}
            )
        elif self.on_fiat_payment is not None:
            self.on_fiat_payment(user, payment)

    def pay_unheard(
        self, user: dict[str, Any], currency: str, amount: int, payload: str
    ) -> dict[str, Any]:
        """Money moves but the bot never hears of it (an update lost on the way)."""
        user = self._user(user)
        payment = self._payment(user, currency, amount, payload)
        self._money_moved(user, payment)
        return payment

    def _system_note(self, chat_id: int, result: dict[str, Any]) -> None:
        answer = result.get("pre_checkout") or {}
        if result.get("declined"):
            note = "Payment declined by the bank (simulated)."
        elif answer and not answer.get("ok"):
            note = f"Checkout refused: {answer.get('error_message', '')}"
        else:
            note = "The bot did not answer the checkout in time."
        with self.lock:
            self.state.chats[chat_id].append(
                {"from": "telegram", "message": {"text": note, "date": int(time.time())}}
            )

    # --- control -------------------------------------------------------------------------

    def fail(self, **spec: Any) -> None:
        with self.lock:
            self.state.failures.append(Failure(**spec))

    def reset(self) -> None:
        with self.lock:
            webhook = (self.state.webhook_url, self.state.secret_token)
            self.state = State(
                token=self.state.token, webhook_url=webhook[0], secret_token=webhook[1]
            )

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.state.calls if method is None or c["method"] == method]

    def chat(self, chat_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "from": e["from"],
                    "message": {k: v for k, v in e["message"].items() if not k.startswith("_")},
                }
                for e in self.state.chats.get(chat_id, [])
            ]

    # --- HTTP ----------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """Start serving in a daemon thread; port 0 picks a free one (see `.url`)."""
        self.httpd = _Server((host, port), _handler_for(self))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.httpd

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of bot connections would see SYNs
    # dropped and retried a second later, which is not how Telegram behaves.
    request_queue_size = 128
    daemon_threads = True


def _handler_for(fake: FakeTelegram):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every answer.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # quiet: tests and benchmarks read their own output
            return

        def _params(self) -> dict[str, Any]:
            parts = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type", "")
            if body and kind.startswith("application/json"):
                params.update(json.loads(body))
            elif body:
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
            return params

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _dispatch(self) -> None:
            path = urlsplit(self.path).path
            try:
                params = self._params()
            except (ValueError, UnicodeDecodeError):
                self._send(
                    400,
                    {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: can't parse body",
                    },
                )
                return
            try:
                if path.startswith("/bot"):
                    token, _, method = path[4:].partition("/")
                    self._send(200, {"ok": True, "result": fake.call(token, method, params)})
                elif path.startswith("/sandbox/"):
                    self._send(
                        200,
                        {"ok": True, "result": _control(fake, path[len("/sandbox/") :], params)},
                    )
                else:
                    raise ApiError(404, "Not Found")
            except ApiError as error:
                self._send(error.code if error.code >= 400 else 400, error.body())
            except (KeyError, TypeError, ValueError) as error:
                self._send(
                    400, {"ok": False, "error_code": 400, "description": f"Bad Request: {error}"}
                )

        do_GET = _dispatch
        do_POST = _dispatch

    return Handler


def _control(fake: FakeTelegram, action: str, params: dict[str, Any]) -> Any:
    def user() -> dict[str, Any]:
        given = params.get("user")
        given = json.loads(given) if isinstance(given, str) else given
        if not given or "id" not in given:
            raise _bad("user with an id is required")
        return given

    if action == "calls":
        return fake.calls(params.get("method"))
    if action == "reset":
        fake.reset()
        return True
    if action == "fail":
        fake.fail(**params)
        return True
    if action == "state":
        return {"webhook_url": fake.state.webhook_url, "deliveries": fake.state.deliveries[-50:]}
    if action.startswith("chats/"):
        return fake.chat(int(action.split("/", 1)[1]))
    if action == "user/message":
        return fake.user_message(user(), params["text"])
    if action == "user/press":
        return fake.user_press(user(), int(params["message_id"]), params["data"])
    if action == "user/pay":
        return fake.user_pay(user(), int(params["message_id"]), params.get("outcome", "success"))
    if action == "user/pay_link":
        return fake.user_pay_link(user(), params["link"], params.get("outcome", "success"))
    if action == "subscriptions/renew":
        return fake.subscriptions_renew(user())
    if action == "stars/transaction":
        tx = params.get("transaction")
        return fake.star_transaction_add(json.loads(tx) if isinstance(tx, str) else tx)
    raise ApiError(404, "Not Found")


def main() -> None:  # pragma: no cover - `manage.py run_telegram_sandbox` is the usual way
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", required=True)
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--secret", default="")
    args = parser.parse_args()
    fake = FakeTelegram(args.token, args.webhook_url, args.secret)
    fake.serve(port=args.port)
    print(f"Telegram sandbox on {fake.url}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    main()
