"""Admin search at a million rows: each way of finding a record is its own indexed lookup.

Django's admin ORs every search field into one WHERE across joins (orders ⋈ customers ⋈
payments), which PostgreSQL can only answer by reading every order. A term is tried here
only against the fields its shape fits (a reference, a Telegram id, a charge id, a
username), each lookup uses its own index, and the row ids are combined with UNION.
"""

import re
from collections.abc import Callable, Iterable

from django.db.models import Q, QuerySet

TELEGRAM_ID = re.compile(r"[0-9]{1,19}")


def indexed_search(
    queryset: QuerySet, term: str, lookups: Iterable[Callable[[str], Q | None]]
) -> QuerySet:
    """The rows of `queryset` found by any lookup that applies to `term` (none: no rows)."""
    term = term.strip()
    conditions = [q for lookup in lookups if term and (q := lookup(term)) is not None]
    if not conditions:
        return queryset.none()
    model = queryset.model
    branches = [model._default_manager.filter(q).values("pk") for q in conditions]
    found = branches[0].union(*branches[1:]) if len(branches) > 1 else branches[0]
    return queryset.filter(pk__in=found)


def exact(field: str, pattern: re.Pattern | None = None, convert=str):
    """A lookup of `field` = the term, when the term has the field's shape."""

    def lookup(term: str) -> Q | None:
        if pattern is not None and not pattern.fullmatch(term):
            return None
        try:
            return Q(**{field: convert(term)})
        except ValueError:
            return None

    return lookup


def username(field: str):
    """@name or name, whatever its case (Telegram's usernames ignore case)."""

    def lookup(term: str) -> Q | None:
        name = term.removeprefix("@")
        return Q(**{f"{field}__iexact": name}) if re.fullmatch(r"\w{1,64}", name) else None

    return lookup


class IndexedSearchMixin:
    """ModelAdmin: `search_lookups` replace `search_fields`' OR across joins."""

    search_lookups: tuple = ()

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return indexed_search(queryset, search_term, self.search_lookups), False
