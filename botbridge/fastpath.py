"""The statements on the webhook's and pre-checkout's hot path, written out in SQL.

Telegram waits on these: compiling the ORM's equivalents cost more than running them
(bench/README.md). Table names are the models' own constants; every value is a bound
parameter; rows come back named. Nothing else in the project writes SQL by hand.
"""

from typing import Any

from django.db import connection, transaction

from botbridge.models import TelegramUpdate
from shop import services as shop_services
from shop.models import Customer, Order, OrderItem, Product
from shop.services import CheckoutLine

_UPDATES = TelegramUpdate._meta.db_table

_INSERT_UPDATE = (
    f"INSERT INTO {_UPDATES}"  # noqa: S608
    " (update_id, kind, lane, payload, status, error, attempts, received_at, processed_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (update_id) DO NOTHING RETURNING id"
)
# Only the reply changes: PostgreSQL updates the row in place (no indexed column changes).
_SET_REPLY = f"UPDATE {_UPDATES} SET reply = %s, handled_ms = %s WHERE update_id = %s"  # noqa: S608


def update_insert(
    *,
    update_id: int,
    kind: str,
    lane: int,
    raw: str,
    status: str,
    attempts: int,
    received_at,
    processed_at=None,
    error: str = "",
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: False when this update_id was already stored."""
    when = connection.ops.adapt_datetimefield_value
    params = [update_id, kind, lane, raw, status, error, attempts]
    params += [when(received_at), when(processed_at)]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_UPDATE, params)
        return cursor.fetchone() is not None


def update_set_reply(*, update_id: int, reply: dict[str, Any], handled_ms: int) -> None:
    """Keep the answer sent back in the webhook's response (for a redelivery), and its time."""
    value = TelegramUpdate._meta.get_field("reply").get_db_prep_save(reply, connection)
    with connection.cursor() as cursor:
        cursor.execute(_SET_REPLY, [value, handled_ms, update_id])


def _checkout_sql() -> str:
    """The order (locked), its customer and its lines with their products, in one statement."""
    sql = (
        "SELECT o.id, o.status, o.currency, o.total_amount, o.stock_reserved, o.paid_at,"  # noqa: S608
        " c.telegram_id, c.is_blocked, p.is_active, i.product_id, i.quantity, p.stock,"
        " o.created_at, i.unit_price, p.price, o.promo_code_id, o.customer_id,"
        " o.discount_amount"
        f" FROM {Order._meta.db_table} o"
        f" JOIN {Customer._meta.db_table} c ON c.id = o.customer_id"
        f" JOIN {OrderItem._meta.db_table} i ON i.order_id = o.id"
        f" JOIN {Product._meta.db_table} p ON p.id = i.product_id"
        " WHERE o.reference = %s ORDER BY i.id"
    )
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF o"
    return sql


def checkout_lines(*, reference: str) -> list[CheckoutLine]:
    """The order's lines as pre-checkout needs them, the order row locked (in a transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(_checkout_sql(), [reference])
        return [CheckoutLine._make(row) for row in cursor.fetchall()]


def checkout_refusal(
    *, reference: str, telegram_id: int, currency: str, total_amount: int
) -> str | None:
    """Pre-checkout's answer for an order: None to accept (stock reserved), or why not."""
    with transaction.atomic(savepoint=False):
        return shop_services.order_checkout(
            lines=checkout_lines(reference=reference),
            telegram_id=telegram_id,
            currency=currency,
            total_amount=total_amount,
        )
