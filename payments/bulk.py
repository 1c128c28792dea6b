"""Helpers for the bulk loads of reconciliation (a provider's list, a statement)."""

from django.db import connection


def table_analyze(model) -> None:
    """Fresh planner statistics after a bulk load (PostgreSQL): without them the matching
    queries that follow are planned for the (near) empty table the load started from."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
