"""Turn one Telegram update into service calls. Runs inside the webhook's transaction.

Routing is explicit rather than through TeleBot's handler registry: pyTelegramBotAPI 4.37
gives `refunded_payment` messages no content type, so a content-type handler never sees them.

Pre-checkout and shipping queries are answered in the webhook's own response: `dispatch`
returns the Bot API call ({"method": ..., params}) and the view sends it back, which the Bot
API allows for webhooks ("you can perform a request to the Bot API while sending an answer to
the webhook"). Telegram gets it after the commit, so it is told only what the database kept,
and no network call is made while a lock is held. A callback query's answer is made on commit.
"""

import logging
import math
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from telebot import types

from botbridge import bot, fastpath
from core import money
from core.errors import DomainError
from payments import selectors as payment_selectors
from payments import services as payment_services
from shop import outbox, selectors
from shop import services as shop_services
from shop.models import Customer, Order, language_for
from shop.payload import payload_reference
from shop.texts import status_name, text

logger = logging.getLogger(__name__)

CATALOG_PAGE_SIZE = 5
SUPPORT_PROMPT_TTL = timedelta(minutes=30)


class Incoming(NamedTuple):
    """An update as the handlers see it: Telegram's update_id and the parsed JSON."""

    update_id: int
    payload: dict[str, Any]


def dispatch(row: Incoming) -> dict[str, Any] | None:
    """Act on one stored update; returns the Bot API call that answers it, if it needs one."""
    payload = row.payload
    # Parse only the kinds the bot acts on: TeleBot's parser is strict about the rest (a poll
    # without options raises), and an update we do not use must never fail.
    if isinstance(payload.get("message"), dict):
        _on_message(types.Message.de_json(payload["message"]), row)
    elif isinstance(payload.get("callback_query"), dict):
        _on_callback(types.CallbackQuery.de_json(payload["callback_query"]), row)
    elif isinstance(payload.get("pre_checkout_query"), dict):
        return _on_pre_checkout(types.PreCheckoutQuery.de_json(payload["pre_checkout_query"]))
    elif isinstance(payload.get("shipping_query"), dict):
        return _on_shipping(types.ShippingQuery.de_json(payload["shipping_query"]))
    # Other kinds are stored by the webhook and need nothing more.
    return None


def is_urgent(payload: dict[str, Any]) -> bool:
    """Handled inside the webhook request: Telegram waits on the answer, or it is a payment."""
    if isinstance(payload.get("pre_checkout_query"), dict):
        return True
    if isinstance(payload.get("shipping_query"), dict):
        return True
    message = payload.get("message")
    return isinstance(message, dict) and (
        "successful_payment" in message or "refunded_payment" in message
    )


def update_kind(payload: dict[str, Any]) -> str:
    kinds = [key for key in payload if key != "update_id"]
    return kinds[0][:32] if kinds else "empty"


def _customer(user: types.User) -> Customer:
    return shop_services.customer_upsert_from_telegram(
        telegram_id=user.id,
        username=user.username or "",
        first_name=user.first_name or "",
        last_name=user.last_name or "",
        language_code=user.language_code or "",
    )


def _say(customer: Customer, key: str, *, markup: dict | None = None, **values) -> None:
    outbox.message_queue(
        customer=customer, text=text(customer.language, key, **values), reply_markup=markup
    )


def _price(amount: int, currency: str, lang: str = "en") -> str:
    return money.format_amount(amount, currency, lang)


def _buy_button(lang: str, product, price: str) -> dict[str, str]:
    label = text(lang, "buy_button", title=product.title_in(lang), price=price)
    return {"text": label, "callback_data": f"buy:{product.sku}"}


# --- messages ---------------------------------------------------------------------------


def _on_message(message: types.Message, row: Incoming) -> None:
    if message.from_user is None or message.chat.type != "private":
        return
    customer = _customer(message.from_user)
    if message.successful_payment is not None:
        outbox.inbound_record(
            customer=customer,
            chat_id=message.chat.id,
            text="[payment]",
            telegram_update_id=row.update_id,
        )
        _on_successful_payment(customer, message, row)
        return
    if message.refunded_payment is not None:
        outbox.inbound_record(
            customer=customer,
            chat_id=message.chat.id,
            text="[refund]",
            telegram_update_id=row.update_id,
        )
        _on_refunded_payment(customer, message, row)
        return
    body = (message.text or "").strip()
    outbox.inbound_record(
        customer=customer, chat_id=message.chat.id, text=body, telegram_update_id=row.update_id
    )
    if not body.startswith("/"):
        _on_plain_text(customer, body)
        return
    command, _, argument = body.partition(" ")
    command = command[1:].split("@", 1)[0].lower()
    handler = COMMANDS.get(command)
    if handler is None:
        _say(customer, "unknown")
        return
    handler(customer, argument.strip())


def _cmd_start(customer: Customer, argument: str) -> None:
    # Deep link t.me/<bot>?start=<sku> opens that product.
    if argument:
        product = selectors.product_get_for_sale(sku=argument)
        if product is None:
            _say(customer, "product_missing")
            return
        _show_product(customer, product)
        return
    name = customer.first_name or customer.username or "there"
    _say(customer, "welcome", name=name, shop=settings.SHOP_NAME)


def _show_product(customer: Customer, product) -> None:
    lang = customer.language
    price = _price(product.price, product.currency, lang)
    markup = outbox.keyboard([[_buy_button(lang, product, price)]])
    _say(
        customer,
        "product_card",
        markup=markup,
        title=product.title_in(lang),
        price=price,
        description=product.description_in(lang),
    )


def _cmd_catalog(customer: Customer, argument: str) -> None:
    try:
        page = max(1, int(argument or 1))
    except ValueError:
        page = 1
    _send_catalog(customer, page)


def _send_catalog(customer: Customer, page: int) -> None:
    lang = customer.language
    products = selectors.product_list_for_sale()
    count = products.count()
    if not count:
        _say(customer, "catalog_empty")
        return
    pages = math.ceil(count / CATALOG_PAGE_SIZE)
    page = min(page, pages)
    chunk = list(products[(page - 1) * CATALOG_PAGE_SIZE : page * CATALOG_PAGE_SIZE])
    lines = [text(lang, "catalog_header", page=page, pages=pages)]
    rows = []
    for product in chunk:
        price = _price(product.price, product.currency, lang)
        lines.append(
            text(
                lang,
                "catalog_line",
                title=product.title_in(lang),
                price=price,
                description=product.description_in(lang),
            )
        )
        rows.append([_buy_button(lang, product, price)])
    navigation = []
    if page > 1:
        navigation.append({"text": text(lang, "prev"), "callback_data": f"catalog:{page - 1}"})
    if page < pages:
        navigation.append({"text": text(lang, "next"), "callback_data": f"catalog:{page + 1}"})
    if navigation:
        rows.append(navigation)
    outbox.message_queue(
        customer=customer, text="\n\n".join(lines), reply_markup=outbox.keyboard(rows)
    )


def _cmd_orders(customer: Customer, argument: str) -> None:
    orders = selectors.order_list_for_customer(customer=customer)
    lang = customer.language
    if not orders:
        _say(customer, "orders_empty")
        return
    lines = [text(lang, "orders_header")]
    for order in orders:
        lines.append(
            text(
                lang,
                "orders_line",
                reference=order.reference,
                date=timezone.localtime(order.created_at).strftime("%Y-%m-%d"),
                total=_price(order.total_amount, order.currency, lang),
                status=status_name(lang, order.status),
            )
        )
    outbox.message_queue(customer=customer, text="\n".join(lines))


def _cmd_balance(customer: Customer, argument: str) -> None:
    balances = payment_selectors.customer_balances(customer=customer)
    if not balances:
        _say(customer, "balance_empty")
        return
    lines = [text(customer.language, "balance_header")]
    lines += [_price(amount, currency, customer.language) for currency, amount in balances.items()]
    outbox.message_queue(customer=customer, text="\n".join(lines))


def _cmd_terms(customer: Customer, argument: str) -> None:
    version = settings.SHOP_TERMS_VERSION
    terms = text(customer.language, "terms", version=version)
    if customer.has_accepted_terms(version):
        accepted = timezone.localtime(customer.terms_accepted_at).strftime("%Y-%m-%d")
        note = text(customer.language, "terms_already", version=version, date=accepted)
        outbox.message_queue(customer=customer, text=f"{terms}\n\n{note}")
        return
    markup = outbox.keyboard(
        [[{"text": text(customer.language, "agree_button"), "callback_data": "terms:"}]]
    )
    outbox.message_queue(customer=customer, text=terms, reply_markup=markup)


def _cmd_support(customer: Customer, argument: str) -> None:
    if argument:
        _create_support_request(customer, argument)
        return
    shop_services.customer_prompt_support(customer=customer)
    _say(customer, "support_prompt")


def _cmd_paysupport(customer: Customer, argument: str) -> None:
    # Telegram's terms for payments in Stars ask every bot to answer /paysupport.
    if argument:
        _create_support_request(customer, f"[payment] {argument}")
        return
    shop_services.customer_prompt_support(customer=customer)
    _say(customer, "paysupport")


def _cmd_stop_reminders(customer: Customer, argument: str) -> None:
    shop_services.customer_reminders_off(customer=customer)
    _say(customer, "reminders_off")


def _cmd_help(customer: Customer, argument: str) -> None:
    _say(customer, "help")


COMMANDS = {
    "start": _cmd_start,
    "catalog": _cmd_catalog,
    "orders": _cmd_orders,
    "balance": _cmd_balance,
    "terms": _cmd_terms,
    "support": _cmd_support,
    "paysupport": _cmd_paysupport,
    "stop_reminders": _cmd_stop_reminders,
    "help": _cmd_help,
}

# What `sync_bot_commands` registers with setMyCommands, per language.
COMMAND_DESCRIPTIONS = {
    "en": [
        ("start", "Start"),
        ("catalog", "Browse and buy"),
        ("orders", "My orders"),
        ("balance", "My balance"),
        ("terms", "Terms of sale"),
        ("support", "Ask support"),
        ("paysupport", "Help with a payment"),
        ("stop_reminders", "No reminders about unpaid orders"),
        ("help", "What I can do"),
    ],
    "ru": [
        ("start", "Начать"),
        ("catalog", "Каталог и покупки"),
        ("orders", "Мои заказы"),
        ("balance", "Мой баланс"),
        ("terms", "Условия продажи"),
        ("support", "Написать в поддержку"),
        ("paysupport", "Помощь с оплатой"),
        ("stop_reminders", "Не напоминать о неоплаченных"),
        ("help", "Что я умею"),
    ],
}


def _on_plain_text(customer: Customer, body: str) -> None:
    prompted = customer.support_prompted_at
    if body and prompted and timezone.now() - prompted < SUPPORT_PROMPT_TTL:
        _create_support_request(customer, body)
        return
    _say(customer, "unknown")


def _create_support_request(customer: Customer, body: str) -> None:
    request = shop_services.support_request_create(customer=customer, text=body)
    _say(customer, "support_received", number=request.pk)


# --- buttons ----------------------------------------------------------------------------


def _on_callback(query: types.CallbackQuery, row: Incoming) -> None:
    customer = _customer(query.from_user)
    data = query.data or ""
    outbox.inbound_record(
        customer=customer,
        chat_id=query.from_user.id,
        text=f"[button] {data}",
        telegram_update_id=row.update_id,
    )
    action, _, argument = data.partition(":")
    if action == "catalog":
        try:
            page = int(argument)
        except ValueError:
            page = 1
        _send_catalog(customer, page)
    elif action == "buy":
        sku, _, option = argument.partition(":")
        _buy(customer, sku, option)
    elif action == "terms":
        customer = shop_services.customer_accept_terms(
            customer=customer, version=settings.SHOP_TERMS_VERSION
        )
        _say(customer, "terms_accepted", version=settings.SHOP_TERMS_VERSION)
        if argument:
            sku, _, option = argument.partition(":")
            _buy(customer, sku, option)
    # Stops the button's spinner in the customer's app.
    transaction.on_commit(lambda: bot.answer_callback(query.id), robust=True)


def _buy(customer: Customer, sku: str, option: str = "") -> None:
    product = selectors.product_get_for_sale(sku=sku)
    if product is None:
        _say(customer, "product_missing")
        return
    if customer.is_blocked:
        _say(customer, "blocked")
        return
    lang = customer.language
    options = selectors.product_options(product=product)
    if options and option not in {o.value for o in options}:
        # Asked before the invoice: the choice is on the order line and the packing list.
        buttons = [
            {"text": o.label_in(lang), "callback_data": f"buy:{sku}:{o.value}"} for o in options
        ]
        rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
        question = text(
            lang, "choose_option", title=product.title_in(lang), option=product.option_name_in(lang)
        )
        outbox.message_queue(customer=customer, text=question, reply_markup=outbox.keyboard(rows))
        return
    version = settings.SHOP_TERMS_VERSION
    if not customer.has_accepted_terms(version):
        terms = text(lang, "terms", version=version)
        prompt = text(lang, "terms_prompt")
        chosen = f"{sku}:{option}" if option else sku
        markup = outbox.keyboard(
            [[{"text": text(lang, "agree_button"), "callback_data": f"terms:{chosen}"}]]
        )
        outbox.message_queue(customer=customer, text=f"{prompt}\n\n{terms}", reply_markup=markup)
        return
    try:
        shop_services.order_invoice(customer=customer, product=product, option=option)
    except DomainError as error:
        _say(
            customer,
            f"err_{error.code}"
            if error.code in ("inactive", "out_of_stock")
            else "product_missing",
        )


# --- payments ---------------------------------------------------------------------------


def _order_from_payload(payload: str | None) -> Order | None:
    reference = payload_reference(payload)
    return selectors.order_get_by_reference(reference=reference) if reference else None


def _on_pre_checkout(query: types.PreCheckoutQuery) -> dict[str, Any]:
    # Answered in the payer's own language; no customer row is needed to say no.
    lang = language_for(query.from_user.language_code)
    reference = payload_reference(query.invoice_payload)
    refusal = (
        fastpath.checkout_refusal(
            reference=reference,
            telegram_id=query.from_user.id,
            currency=query.currency,
            total_amount=query.total_amount,
        )
        if reference
        else "invoice_invalid"
    )
    # Telegram cancels the checkout 10 s after asking: the answer goes back in the response.
    answer = {"method": "answerPreCheckoutQuery", "pre_checkout_query_id": query.id}
    if refusal is None:
        return {**answer, "ok": True}
    return {**answer, "ok": False, "error_message": text(lang, f"err_{refusal}")}


def _on_shipping(query: types.ShippingQuery) -> dict[str, Any]:
    customer = _customer(query.from_user)
    answer = {"method": "answerShippingQuery", "shipping_query_id": query.id}
    if _order_from_payload(query.invoice_payload) is None:
        error = text(customer.language, "err_invoice_invalid")
        return {**answer, "ok": False, "error_message": error}
    label = text(customer.language, "shipping_standard")
    option = {"id": "standard", "title": label, "prices": [{"label": label, "amount": 0}]}
    return {**answer, "ok": True, "shipping_options": [option]}


def _on_successful_payment(customer: Customer, message: types.Message, row: Incoming) -> None:
    paid = message.successful_payment
    raw = (row.payload.get("message") or {}).get("successful_payment", {})
    address = raw.get("order_info", {}).get("shipping_address")
    payment_services.payment_record(
        customer=customer,
        order=_order_from_payload(paid.invoice_payload),
        telegram_payment_charge_id=paid.telegram_payment_charge_id,
        provider_payment_charge_id=paid.provider_payment_charge_id or "",
        amount=paid.total_amount,
        currency=paid.currency,
        raw=raw,
        shipping_address=address,
        mode=bot.payment_mode(paid.currency),
    )


def _on_refunded_payment(customer: Customer, message: types.Message, row: Incoming) -> None:
    refunded = message.refunded_payment
    raw = (row.payload.get("message") or {}).get("refunded_payment", {})
    payment_services.refund_record_external(
        telegram_payment_charge_id=refunded.telegram_payment_charge_id,
        amount=refunded.total_amount,
        currency=refunded.currency,
        raw=raw,
    )
