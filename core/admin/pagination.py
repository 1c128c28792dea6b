"""A paginator for the admin's biggest lists: no full-table COUNT(*) on every page."""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many rows an exact count is cheap and nicer to read.
ESTIMATE_ABOVE = 50_000


class EstimatedCountPaginator(Paginator):
    """Uses PostgreSQL's row estimate for an unfiltered list; counts exactly otherwise."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is not None and not query.where:
            connection = connections[queryset.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                        [queryset.model._meta.db_table],
                    )
                    row = cursor.fetchone()
                if row and row[0] > ESTIMATE_ABOVE:
                    return int(row[0])
        return super().count
