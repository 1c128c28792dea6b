"""An order's story in one table: events, payments, refunds, disputes and the messages."""

from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core import money
from shop.models import Message, Order

MESSAGES_SHOWN = 200


def order_timeline(order: Order) -> list[tuple]:
    """(time, what, detail, who) rows of this order only, oldest first."""
    rows = []
    for event in order.events.select_related("actor"):
        who = event.actor.get_username() if event.actor else event.source
        rows.append((event.created_at, event.get_kind_display(), event.message, who))
    for payment in order.payments.all():
        shown = money.format_amount(payment.amount, payment.currency)
        note = f" — {payment.get_review_reason_display()}" if payment.review_reason else ""
        rows.append(
            (
                payment.paid_at,
                "Payment",
                f"{shown} {payment.telegram_payment_charge_id}{note}",
                "customer",
            )
        )
    for refund in order.refunds.select_related("author"):
        shown = money.format_amount(refund.amount, refund.currency)
        who = refund.author.get_username() if refund.author else refund.source
        rows.append(
            (
                refund.created_at,
                "Refund",
                f"#{refund.pk} {shown}, {refund.get_reason_display()}: "
                f"{refund.get_status_display().lower()}",
                who,
            )
        )
    for dispute in order.disputes.all():
        shown = money.format_amount(dispute.amount, dispute.currency)
        rows.append(
            (
                dispute.opened_at,
                "Dispute",
                f"#{dispute.pk} {shown}, {dispute.get_reason_display()}: "
                f"{dispute.get_status_display().lower()}",
                "provider",
            )
        )
    # The messages about this order (invoice, receipt, notices), not the customer's whole chat.
    for message in order.messages.order_by("created_at", "id")[:MESSAGES_SHOWN]:
        arrow = "Customer wrote" if message.direction == Message.Direction.INBOUND else "Bot sent"
        rows.append(
            (message.created_at, arrow, message.text[:300], message.get_status_display().lower())
        )
    rows.sort(key=lambda row: row[0])
    return rows  # fmt: skip


def order_timeline_html(order: Order) -> str:
    rows = (
        (timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S"), what, detail, who)
        for at, what, detail, who in order_timeline(order)
    )
    return format_html(
        '<table class="order-timeline"><thead><tr><th>When</th><th>What</th><th>Detail</th>'
        "<th>Who</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
    )
