"""A-Pay statements on PostgreSQL: a million rows in one pass and three statements.

The rows are checked and COPied into a temporary table in the same pass over the file (a bad
line and the transaction is rolled back: nothing is imported). One statement then upserts
them (a row already known is left alone unless A-Pay changed it), matches each new row to
the payment whose provider_payment_charge_id is its order_id, and posts A-Pay's fee of each
new matched Success row to the ledger under its idempotency key. The ORM path in
`statements` does the same for other databases (the embedded SQLite), batch by batch, two
orders of magnitude slower; this one exists for the size of real statements.
"""

from collections.abc import Callable
from pathlib import Path

from django.db import connection
from django.utils import timezone

from payments.apay.statement import StatementCheck, StatementRowData, statement_check
from payments.models import LedgerEntry, Payment, StatementImport, StatementRow

_COLUMNS = ("transaction_id", "order_id", "custom_transaction_id", "custom_user_id", "amount",
            "amount_after_commission", "fee", "currency", "status", "created_at", "updated_at",
            "activated_at")  # fmt: skip
_STAGE = "apay_statement_stage"


def _sql(statement: str) -> str:
    """The tables' real names in a fixed statement (no value is ever formatted in)."""
    return statement.format(
        stage=_STAGE,
        rows=StatementRow._meta.db_table,
        payments=Payment._meta.db_table,
        ledger=LedgerEntry._meta.db_table,
        columns=", ".join(_COLUMNS),
        staged_columns=", ".join(f"s.{c}" for c in _COLUMNS),
        updates=", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:]),
        ours=", ".join(f"r.{c}" for c in _COLUMNS[1:]),
        theirs=", ".join(f"EXCLUDED.{c}" for c in _COLUMNS[1:]),
    )


_CREATE = """
CREATE TEMPORARY TABLE {stage} (
  seq bigint, transaction_id text, order_id text, custom_transaction_id text,
  custom_user_id text, amount bigint, amount_after_commission bigint, fee bigint,
  currency text, status text, created_at timestamptz, updated_at timestamptz,
  activated_at timestamptz
) ON COMMIT DROP
"""

# A repeated transaction_id in one file: the last line wins.
_UPSERT = """
WITH staged AS MATERIALIZED (
  SELECT DISTINCT ON (s.transaction_id) {staged_columns},
         m.id AS payment_id, m.customer_id, m.order_id AS order_ref
  FROM {stage} s
  LEFT JOIN LATERAL (
    SELECT p.id, p.customer_id, p.order_id FROM {payments} p
    WHERE p.provider = %(apay)s AND s.order_id <> '' AND p.provider_payment_charge_id = s.order_id
    ORDER BY p.id LIMIT 1
  ) m ON true
  ORDER BY s.transaction_id, s.seq DESC
),
upserted AS (
  INSERT INTO {rows} AS r (provider, {columns}, payment_id, "match", fee_posted, statement_id)
  SELECT %(apay)s, {columns}, payment_id,
         CASE WHEN payment_id IS NULL THEN '' ELSE %(exact)s END,
         payment_id IS NOT NULL AND status = %(success)s AND fee > 0, %(statement)s
  FROM staged
  ON CONFLICT (provider, transaction_id) DO UPDATE
    SET {updates}, statement_id = EXCLUDED.statement_id
    WHERE ({ours}) IS DISTINCT FROM ({theirs})
  RETURNING (xmax = 0) AS inserted, r.transaction_id, r.fee_posted
),
fees AS (
  INSERT INTO {ledger} (customer_id, kind, amount, currency, idempotency_key, order_id,
                        payment_id, memo, created_at)
  SELECT st.customer_id, %(fee_kind)s, -st.fee, st.currency, 'apay-fee:' || st.transaction_id,
         st.order_ref, st.payment_id, 'A-Pay fee, transaction ' || st.transaction_id, %(now)s
  FROM upserted u JOIN staged st ON st.transaction_id = u.transaction_id
  WHERE u.inserted AND u.fee_posted
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING 1
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),
       (SELECT count(*) FROM fees)
FROM upserted
"""


def take_in(
    *,
    path: Path,
    currency: str,
    allow_empty: bool,
    sha256: str,
    create_import: Callable[[StatementCheck], StatementImport],
) -> tuple[StatementImport, int, int]:
    """Inside the caller's transaction: (the import, rows matched, fees posted)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql("DROP TABLE IF EXISTS {stage}"))
        cursor.execute(_sql(_CREATE))
        copy_sql = _sql("COPY {stage} (seq, {columns}) FROM STDIN")
        seq = iter(range(1, 1 << 62))
        with cursor.cursor.copy(copy_sql) as copy:

            def stage(row: StatementRowData) -> None:
                copy.write_row((next(seq), *row))

            check = statement_check(
                path, currency=currency, allow_empty=allow_empty, on_row=stage, sha256=sha256
            )
        imported = create_import(check)
        cursor.execute(
            _sql(_UPSERT),
            {
                "apay": Payment.Provider.APAY,
                "exact": StatementRow.Match.EXACT,
                "success": StatementRow.SUCCESS,
                "statement": imported.pk,
                "fee_kind": LedgerEntry.Kind.FEE,
                "now": timezone.now(),
            },
        )
        new, changed, fees = cursor.fetchone()
        cursor.execute(_sql("DROP TABLE {stage}"))
    imported.rows_new, imported.rows_changed = new, changed
    imported.save(update_fields=["rows_new", "rows_changed"])
    return imported, _matched(imported), fees


def _matched(imported: StatementImport) -> int:
    return StatementRow.objects.filter(statement=imported, match=StatementRow.Match.EXACT).count()
