"""Every message the shop sends a customer on its own initiative, built in one place.

Invoices, receipts, refund notices and support answers: each in the customer's language,
each queued once (its dedupe key), each in the transaction of the change it reports.
Replies to what the customer typed in the bot are the bot's own (botbridge.handlers).
"""

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from core import money
from shop import outbox
from shop.models import SUBSCRIPTION_PERIOD_SECONDS, Customer, Message, Order, OrderItem, Product
from shop.payload import payload_sign
from shop.texts import refund_reason, text

# The outbox methods that put an invoice in the chat (a subscription's is a link in a message).
INVOICE_METHODS = ("sendInvoice", "createInvoiceLink")


def invoice_queue(*, order: Order, dedupe_key: str | None = None) -> Message:
    """Queue the Telegram invoice for an order (prices in minor units).

    Fiat: one price line per item (its label with the quantity), the promo code's discount
    as a negative line, delivery as its own line. Stars: exactly one line (Telegram's rule),
    the items and the discount in the description. A subscription is an invoice link
    (createInvoiceLink with its 30-day period) sent in a message with a button.
    The provider token is added when it is sent: it is a secret and is never stored.
    """
    customer = order.customer
    lang = customer.language
    items = list(order.items.select_related("product"))
    first = items[0]
    product = first.product
    single = len(items) == 1 and first.quantity == 1
    title = (
        product.title_in(lang)
        if len(items) == 1
        else text(lang, "invoice_title", reference=order.reference)
    )
    code = order.promo_code.code if order.promo_code_id else ""
    if order.currency == money.STARS:
        prices = [{"label": title if single else order.reference, "amount": order.total_amount}]
    else:
        prices = [{"label": _line_label(item, lang), "amount": item.line_total} for item in items]
        if order.discount_amount:
            label = text(lang, "invoice_discount", code=code)
            prices.append({"label": label, "amount": -order.discount_amount})
        if order.delivery_amount:
            prices.append(
                {"label": text(lang, "invoice_delivery"), "amount": order.delivery_amount}
            )
    params = {
        "title": title[:32],
        "description": _invoice_description(order, items, lang, code)[:255],
        "payload": payload_sign(order.reference),
        "currency": order.currency,
        "prices": prices,
        "photo_url": product.photo_url,
        "need_shipping_address": any(i.kind == Product.Kind.PHYSICAL for i in items),
    }
    if first.kind == Product.Kind.SUBSCRIPTION:
        shown = money.format_amount(order.total_amount, order.currency, lang)
        params.pop("need_shipping_address")
        params["subscription_period"] = SUBSCRIPTION_PERIOD_SECONDS
        params["message"] = text(lang, "subscription_offer", title=title, price=shown)
        params["button"] = text(lang, "subscription_button", price=shown)
        method = "createInvoiceLink"
    else:
        method = "sendInvoice"
    return outbox.message_queue(
        customer=customer,
        method=method,
        text=f"Invoice {order.reference}: {order.total_display}",
        params=params,
        order=order,
        dedupe_key=dedupe_key or f"invoice:{order.pk}",
    )


def _invoice_description(order: Order, items: list[OrderItem], lang: str, code: str) -> str:
    """One product: its description (and option). A cart: its lines. Stars also name the
    discount, since their one price line cannot show it."""
    if len(items) == 1 and items[0].quantity == 1:
        product = items[0].product
        description = product.description_in(lang)
        if items[0].option:
            chosen = product.options.filter(value=items[0].option).first()
            if chosen is not None:
                description = (
                    f"{description} ({product.option_name_in(lang)}: {chosen.label_in(lang)})"
                )
    else:
        description = ", ".join(_line_label(item, lang) for item in items)
    if order.discount_amount and order.currency == money.STARS:
        off = money.format_amount(order.discount_amount, order.currency, lang)
        description = f"{description}. " + text(
            lang, "invoice_discount_note", code=code, amount=off
        )
    return description


def _item_name(item: OrderItem, lang: str) -> str:
    """The product's title in the customer's language, with the option chosen."""
    name = item.product.title_in(lang)
    return f"{name}, {item.option}" if item.option else name


def _line_label(item: OrderItem, lang: str) -> str:
    name = _item_name(item, lang)
    return f"{name} × {item.quantity}" if item.quantity > 1 else name


def receipt_key(payment_id: int) -> str:
    return f"receipt:payment:{payment_id}"


def receipt_text(
    *,
    order: Order,
    items: Iterable[OrderItem],
    customer: Customer,
    amount: int,
    currency: str,
    charge_id: str,
    paid_at: datetime,
    delivered: list[str],
) -> str:
    """The receipt in the customer's language: lines, total, payment id, what was delivered."""
    items = list(items)
    lang = customer.language
    lines = "\n".join(
        f"{_item_name(item, lang)} × {item.quantity}: "
        f"{money.format_amount(item.line_total, item.currency, lang)}"
        for item in items
    )
    if order.discount_amount:
        off = money.format_amount(order.discount_amount, order.currency, lang)
        code = order.promo_code.code if order.promo_code_id else ""
        lines += "\n" + text(lang, "invoice_discount", code=code) + f": −{off}"
    if order.delivery_amount:
        fee = money.format_amount(order.delivery_amount, order.currency, lang)
        lines += "\n" + text(lang, "invoice_delivery") + f": {fee}"
    total = money.format_amount(amount, currency, lang)
    parts = [
        text(
            lang,
            "receipt",
            reference=order.reference,
            lines=lines,
            total=total,
            charge_id=charge_id,
            date=timezone.localtime(paid_at).strftime("%Y-%m-%d %H:%M %Z"),
        )
    ]
    kinds = {item.kind for item in items}
    if Product.Kind.TOPUP in kinds:
        # What stays on the balance: the top-up lines (a discount is the shop's, not theirs).
        topped = sum(item.line_total for item in items if item.kind == Product.Kind.TOPUP)
        shown = money.format_amount(topped, currency, lang)
        parts.append(text(lang, "receipt_topup", amount=shown))
    if delivered:
        parts.append(text(lang, "receipt_digital", content="\n".join(delivered)))
    if Product.Kind.PHYSICAL in kinds:
        parts.append(text(lang, "receipt_shipping"))
    if Product.Kind.SUBSCRIPTION in kinds:
        subscription = order.subscription if order.subscription_id else None
        if subscription is not None:
            until = timezone.localtime(subscription.expires_at).strftime("%Y-%m-%d")
            parts.append(text(lang, "receipt_subscription_until", date=until))
        else:
            parts.append(text(lang, "receipt_subscription"))
    return "\n\n".join(parts)


def refund_notice_queue(
    *,
    customer: Customer,
    order: Order | None,
    refund_id: int,
    amount: int,
    currency: str,
    reason: str,
    charge_id: str,
) -> Message:
    """Tell the customer a refund was made, in their language, once per refund."""
    lang = customer.language
    shown = money.format_amount(amount, currency, lang)
    reference = order.reference if order is not None else charge_id
    if currency == money.STARS:
        body = text(lang, "refund_note_stars", amount=shown, reference=reference)
    else:
        why = refund_reason(lang, reason)
        body = text(lang, "refund_note", amount=shown, reference=reference, reason=why)
    return outbox.message_queue(
        customer=customer, text=body, order=order, dedupe_key=f"refund:{refund_id}:notice"
    )


def support_answer_queue(*, customer: Customer, request_id: int, answer: str) -> Message:
    """Staff's answer to a support request, sent to the customer in Telegram, once."""
    return outbox.message_queue(
        customer=customer,
        text=text(customer.language, "support_answer", number=request_id, answer=answer),
        dedupe_key=f"support:{request_id}:answer",
    )


def shipped_queue(*, order: Order) -> Message:
    """The parcel is on its way: carrier, tracking number and link, in the customer's language."""
    customer = order.customer
    lang = customer.language
    body = text(
        lang,
        "shipped",
        reference=order.reference,
        carrier=order.carrier,
        tracking=order.tracking_number,
    )
    if order.tracking_url:
        body += "\n" + text(lang, "shipped_link", url=order.tracking_url)
    return outbox.message_queue(
        customer=customer, text=body, order=order, dedupe_key=f"order:{order.pk}:shipped"
    )


def delivered_queue(*, order: Order) -> Message:
    """The parcel arrived."""
    customer = order.customer
    return outbox.message_queue(
        customer=customer,
        text=text(customer.language, "delivered", reference=order.reference),
        order=order,
        dedupe_key=f"order:{order.pk}:delivered",
    )
