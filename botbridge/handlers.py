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
from datetime import UTC, datetime, timedelta
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
from shop.models import (
    SUBSCRIPTION_PERIOD_SECONDS,
    Customer,
    Order,
    Product,
    Subscription,
    language_for,
)
from shop.payload import payload_reference
from shop.texts import TEXTS, status_name, text

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
    key = "subscribe_button" if product.kind == Product.Kind.SUBSCRIPTION else "buy_button"
    label = text(lang, key, title=product.title_in(lang), price=price)
    return {"text": label, "callback_data": f"buy:{product.sku}"}


def _product_buttons(lang: str, product, price: str) -> list[dict[str, str]]:
    """Buy now, and add to the cart (a subscription is bought on its own)."""
    row = [_buy_button(lang, product, price)]
    if product.kind != Product.Kind.SUBSCRIPTION:
        row.append({"text": text(lang, "add_button"), "callback_data": f"add:{product.sku}"})
    return row


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
    markup = outbox.keyboard([_product_buttons(lang, product, price)])
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
        rows.append(_product_buttons(lang, product, price))
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


def _cmd_cart(customer: Customer, argument: str) -> None:
    _send_cart(customer)


def _cmd_promo(customer: Customer, argument: str) -> None:
    if not argument:
        shop_services.cart_promo_prompt(customer=customer)
        _say(customer, "promo_prompt")
        return
    _apply_promo(customer, argument)


def _apply_promo(customer: Customer, code: str) -> None:
    try:
        cart = shop_services.cart_promo_apply(customer=customer, code=code)
    except DomainError as error:
        _say(customer, _error_key(error))
        return
    _say(customer, "promo_applied", code=cart.promo_code.code)
    _send_cart(customer)


def _cmd_subscriptions(customer: Customer, argument: str) -> None:
    lang = customer.language
    subscriptions = selectors.subscription_list_for_customer(customer=customer)
    if not subscriptions:
        _say(customer, "subscriptions_empty")
        return
    lines, rows = [text(lang, "subscriptions_header")], []
    for sub in subscriptions:
        title = sub.product.title_in(lang)
        date = timezone.localtime(sub.expires_at).strftime("%Y-%m-%d")
        if sub.status == Subscription.Status.EXPIRED:
            key = "subscription_line_expired"
        elif sub.is_canceled:
            key = "subscription_line_ends"
            button = text(lang, "subscription_reenable_button", title=title)
            rows.append([{"text": button, "callback_data": f"sub:{sub.pk}:on"}])
        else:
            key = "subscription_line_renews"
            button = text(lang, "subscription_cancel_button", title=title)
            rows.append([{"text": button, "callback_data": f"sub:{sub.pk}:off"}])
        price = _price(sub.first_order.total_amount, sub.first_order.currency, lang)
        lines.append(text(lang, key, title=title, date=date, price=price))
    outbox.message_queue(
        customer=customer,
        text="\n".join(lines),
        reply_markup=outbox.keyboard(rows) if rows else None,
    )


COMMANDS = {
    "start": _cmd_start,
    "catalog": _cmd_catalog,
    "orders": _cmd_orders,
    "balance": _cmd_balance,
    "terms": _cmd_terms,
    "support": _cmd_support,
    "paysupport": _cmd_paysupport,
    "stop_reminders": _cmd_stop_reminders,
    "cart": _cmd_cart,
    "promo": _cmd_promo,
    "subscriptions": _cmd_subscriptions,
    "help": _cmd_help,
}

# What `sync_bot_commands` registers with setMyCommands, per language.
COMMAND_DESCRIPTIONS = {
    "en": [
        ("start", "Start"),
        ("catalog", "Browse and buy"),
        ("cart", "My cart"),
        ("promo", "Use a promo code"),
        ("orders", "My orders"),
        ("subscriptions", "My subscriptions"),
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
        ("cart", "Корзина"),
        ("promo", "Применить промокод"),
        ("orders", "Мои заказы"),
        ("subscriptions", "Мои подписки"),
        ("balance", "Мой баланс"),
        ("terms", "Условия продажи"),
        ("support", "Написать в поддержку"),
        ("paysupport", "Помощь с оплатой"),
        ("stop_reminders", "Не напоминать о неоплаченных"),
        ("help", "Что я умею"),
    ],
}


def _on_plain_text(customer: Customer, body: str) -> None:
    asked = selectors.cart_promo_prompted_at(customer=customer)
    prompted = customer.support_prompted_at
    # Asked for a code (and not for a support question since): the message is the code.
    if (
        body
        and asked
        and timezone.now() - asked < SUPPORT_PROMPT_TTL
        and (prompted is None or prompted < asked)
    ):
        _apply_promo(customer, body)
        return
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
        if argument == CHECKOUT_AFTER_TERMS:
            _checkout(customer)
        elif argument:
            sku, _, option = argument.partition(":")
            _buy(customer, sku, option)
    elif action in CART_ACTIONS or action in EDITS_CART:
        if action in EDITS_CART:
            # The cart's own buttons change the cart message in place.
            EDITS_CART[action](customer, argument, _message_id(query))
        else:
            CART_ACTIONS[action](customer, argument)
    # Stops the button's spinner in the customer's app.
    transaction.on_commit(lambda: bot.answer_callback(query.id), robust=True)


# --- the cart ---------------------------------------------------------------------------

CHECKOUT_AFTER_TERMS = "@cart"


def _error_key(error: DomainError) -> str:
    if error.code == "customer_blocked":
        return "blocked"
    key = f"err_{error.code}"
    return key if key in TEXTS["en"] else "product_missing"


def _add(customer: Customer, argument: str, *, start_new: bool = False) -> None:
    sku, _, option = argument.partition(":")
    product = selectors.product_get_for_sale(sku=sku)
    if product is None:
        _say(customer, "product_missing")
        return
    lang = customer.language
    if _ask_option(customer, product, option, "add"):
        return
    try:
        shop_services.cart_add(
            customer=customer, product=product, option=option, start_new=start_new
        )
    except DomainError as error:
        if error.code == "other_currency":
            cart = shop_services.cart_get(customer=customer)
            markup = outbox.keyboard(
                [
                    [
                        {
                            "text": text(lang, "new_cart_button"),
                            "callback_data": f"cartnew:{argument}",
                        }
                    ],
                    [{"text": text(lang, "keep_cart_button"), "callback_data": "cart:"}],
                ]
            )
            _say(
                customer,
                "other_currency",
                markup=markup,
                title=product.title_in(lang),
                currency=product.currency,
                cart_currency=cart.currency,
            )
            return
        _say(customer, _error_key(error))
        return
    _send_cart(customer)


def _message_id(query: types.CallbackQuery) -> int | None:
    message = query.message
    return getattr(message, "message_id", None) if message is not None else None


def _send_cart(customer: Customer, edit: int | None = None) -> None:
    """The cart with its buttons; `edit` is the cart message to change in place."""
    lang = customer.language
    view = shop_services.cart_view(cart=shop_services.cart_get(customer=customer))
    if not view.lines:
        _cart_message(customer, text(lang, "cart_empty"), None, edit)
        return
    cur = view.currency
    lines, rows = [text(lang, "cart_header")], []
    for line in view.lines:
        title = line.product.title_in(lang)
        if line.line.option:
            title = f"{title}, {line.line.option}"
        lines.append(
            text(
                lang,
                "cart_line",
                title=title,
                quantity=line.line.quantity,
                total=_price(line.line_total, cur, lang),
            )
        )
        if line.stale:
            lines.append(
                text(
                    lang,
                    f"cart_line_stale_{line.stale}",
                    price=_price(line.product.price, line.product.currency, lang),
                    stock=line.product.stock or 0,
                )
            )
        rows.append(
            [
                {"text": "−", "callback_data": f"cq:{line.line.pk}:-"},
                {"text": f"{title} × {line.line.quantity}"[:40], "callback_data": "cart:"},
                {"text": "+", "callback_data": f"cq:{line.line.pk}:+"},
            ]
        )
    lines.append(text(lang, "cart_subtotal", amount=_price(view.subtotal, cur, lang)))
    promo_row = [{"text": text(lang, "cart_promo_button"), "callback_data": "promo:"}]
    if view.promo is not None:
        if view.promo_refusal:
            reason = text(lang, f"err_{view.promo_refusal}")
            lines.append(text(lang, "cart_promo_refused", code=view.promo.code, reason=reason))
        else:
            off = _price(view.discount, cur, lang)
            lines.append(text(lang, "cart_discount", code=view.promo.code, amount=off))
        promo_row = [{"text": text(lang, "cart_promo_remove_button"), "callback_data": "promodel:"}]
    if view.delivery:
        lines.append(text(lang, "cart_delivery", amount=_price(view.delivery, cur, lang)))
    total = _price(view.total, cur, lang)
    lines.append(text(lang, "cart_total", amount=total))
    if view.stale:
        rows.append([{"text": text(lang, "cart_refresh_button"), "callback_data": "cartfix:"}])
    else:
        rows.append(
            [
                {
                    "text": text(lang, "cart_checkout_button", amount=total),
                    "callback_data": "checkout:",
                }
            ]
        )
    rows.append(promo_row)
    rows.append([{"text": text(lang, "cart_clear_button"), "callback_data": "cartclear:"}])
    _cart_message(customer, "\n".join(lines), outbox.keyboard(rows), edit)


def _cart_message(customer: Customer, body: str, markup: dict | None, edit: int | None) -> None:
    if edit is None:
        outbox.message_queue(customer=customer, text=body, reply_markup=markup)
        return
    outbox.message_queue(
        customer=customer,
        method="editMessageText",
        text=body,
        params={"message_id": edit, "text": body},
        reply_markup=markup,
    )


def _cart_quantity(customer: Customer, argument: str, edit: int | None = None) -> None:
    line_id, _, sign = argument.partition(":")
    try:
        shop_services.cart_change(
            customer=customer, line_id=int(line_id), delta=1 if sign == "+" else -1
        )
    except ValueError:
        pass
    except DomainError as error:
        _say(customer, _error_key(error))
        edit = None  # the reason comes first, then the cart again below it
    _send_cart(customer, edit)


def _cart_clear(customer: Customer, argument: str) -> None:
    shop_services.cart_clear(customer=customer)
    _say(customer, "cart_cleared")


def _cart_refresh(customer: Customer, argument: str, edit: int | None = None) -> None:
    shop_services.cart_refresh(customer=customer)
    _send_cart(customer, edit)


def _promo_button(customer: Customer, argument: str) -> None:
    _cmd_promo(customer, "")


def _promo_remove(customer: Customer, argument: str, edit: int | None = None) -> None:
    shop_services.cart_promo_remove(customer=customer)
    _send_cart(customer, edit)


def _checkout(customer: Customer, argument: str = "", edit: int | None = None) -> None:
    if customer.is_blocked:
        _say(customer, "blocked")
        return
    lang = customer.language
    if _ask_terms(customer, CHECKOUT_AFTER_TERMS):
        return
    try:
        order = shop_services.cart_checkout(customer=customer)
    except DomainError as error:
        if error.code == "cart_stale":
            _send_cart(customer)
        _say(customer, _error_key(error))
        return
    if edit is not None:
        # The cart message becomes a note of the order: its buttons would only mislead now.
        total = _price(order.total_amount, order.currency, lang)
        note = text(lang, "cart_checked_out", reference=order.reference, total=total)
        _cart_message(customer, note, None, edit)


def _subscription_renewal(customer: Customer, argument: str) -> None:
    pk, _, switch = argument.partition(":")
    subscription = selectors.subscription_get_for_customer(customer=customer, pk=pk)
    if subscription is None:
        _say(customer, "product_missing")
        return
    try:
        shop_services.subscription_set_renewal(
            subscription=subscription, cancel=switch != "on", source="customer"
        )
    except DomainError:
        _cmd_subscriptions(customer, "")


CART_ACTIONS = {
    "add": _add,
    "cartnew": lambda customer, argument: _add(customer, argument, start_new=True),
    "cart": lambda customer, argument: _send_cart(customer),
    "cartclear": _cart_clear,
    "promo": _promo_button,
    "sub": _subscription_renewal,
}
# The cart message's own buttons: they edit it (editMessageText) instead of adding another.
EDITS_CART = {
    "cq": _cart_quantity,
    "cartfix": _cart_refresh,
    "promodel": _promo_remove,
    "checkout": _checkout,
}


def _ask_terms(customer: Customer, then: str) -> bool:
    """Terms not accepted yet (this version): show them with *I agree*, which carries what
    to do next (`then`: a product to buy, or the cart's checkout); say so."""
    version = settings.SHOP_TERMS_VERSION
    if customer.has_accepted_terms(version):
        return False
    lang = customer.language
    terms, prompt = text(lang, "terms", version=version), text(lang, "terms_prompt")
    markup = outbox.keyboard(
        [[{"text": text(lang, "agree_button"), "callback_data": f"terms:{then}"}]]
    )
    outbox.message_queue(customer=customer, text=f"{prompt}\n\n{terms}", reply_markup=markup)
    return True


def _ask_option(customer: Customer, product, option: str, action: str) -> bool:
    """A product with options and none (or an unknown one) chosen: ask, and say so.

    Asked before the invoice or the cart: the choice is on the order line and the packing
    list. The buttons come back as `<action>:<sku>:<option>`.
    """
    options = selectors.product_options(product=product)
    if not options or option in {o.value for o in options}:
        return False
    lang = customer.language
    buttons = [
        {"text": o.label_in(lang), "callback_data": f"{action}:{product.sku}:{o.value}"}
        for o in options
    ]
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    question = text(
        lang, "choose_option", title=product.title_in(lang), option=product.option_name_in(lang)
    )
    outbox.message_queue(customer=customer, text=question, reply_markup=outbox.keyboard(rows))
    return True


def _buy(customer: Customer, sku: str, option: str = "") -> None:
    product = selectors.product_get_for_sale(sku=sku)
    if product is None:
        _say(customer, "product_missing")
        return
    if customer.is_blocked:
        _say(customer, "blocked")
        return
    lang = customer.language
    if _ask_option(customer, product, option, "buy"):
        return
    if product.kind == Product.Kind.SUBSCRIPTION and selectors.subscription_active(
        customer=customer, product=product
    ):
        _say(customer, "subscription_already", title=product.title_in(lang))
        return
    if _ask_terms(customer, f"{sku}:{option}" if option else sku):
        return
    try:
        shop_services.order_invoice(customer=customer, product=product, option=option)
    except DomainError as error:
        _say(customer, _error_key(error))


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
        recurring=_recurring(raw),
    )


def _recurring(raw: dict[str, Any]) -> payment_services.Recurring | None:
    """A Stars subscription's payment: the first, or a renewal, and when it runs out."""
    if not (raw.get("is_recurring") or raw.get("is_first_recurring")):
        return None
    expires = raw.get("subscription_expiration_date")
    until = (
        datetime.fromtimestamp(int(expires), tz=UTC)
        if expires
        else timezone.now() + timedelta(seconds=SUBSCRIPTION_PERIOD_SECONDS)
    )
    return payment_services.Recurring(first=bool(raw.get("is_first_recurring")), expires_at=until)


def _on_refunded_payment(customer: Customer, message: types.Message, row: Incoming) -> None:
    refunded = message.refunded_payment
    raw = (row.payload.get("message") or {}).get("refunded_payment", {})
    payment_services.refund_record_external(
        telegram_payment_charge_id=refunded.telegram_payment_charge_id,
        amount=refunded.total_amount,
        currency=refunded.currency,
        raw=raw,
    )
