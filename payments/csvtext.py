"""CSV text as finance and the evidence pack need it: RFC 4180, CRLF, formula-safe cells.

Written in pieces as rows come (Python's csv writer, or PostgreSQL's COPY passed on block by
block), so memory stays flat however many rows there are.
"""

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator

from django.db import connection

BOM = "\ufeff"
# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
Progress = Callable[[int], None] | None


def safe_text(value) -> str:
    """A text cell no spreadsheet will run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class _Line:
    """A file-like target for csv.writer that hands back what was written."""

    def __init__(self):
        self.buffer = io.StringIO()

    def write(self, text: str) -> None:
        self.buffer.write(text)

    def take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def csv_chunks(
    header: list[str],
    rows: Iterable[list],
    *,
    bom: bool = False,
    rows_per_chunk: int = 1000,
    progress: Progress = None,
) -> Iterator[str]:
    """RFC 4180 text in pieces of about `rows_per_chunk` rows, header first.

    `progress`, if given, is told the number of rows written so far after each piece.
    """
    target = _Line()
    writer = csv.writer(target, lineterminator="\r\n")
    writer.writerow(header)
    yield (BOM if bom else "") + target.take()
    pending, written = [], 0
    for row in rows:
        pending.append(row)
        if len(pending) >= rows_per_chunk:
            writer.writerows(pending)
            written += len(pending)
            pending.clear()
            yield target.take()
            if progress:
                progress(written)
    if pending:
        writer.writerows(pending)
        written += len(pending)
        yield target.take()
    if progress:
        progress(written)


def copy_csv(sql: str, params, *, progress: Progress = None) -> Iterator[str]:
    """The rows as PostgreSQL's COPY writes them, with CRLF between records (RFC 4180).

    COPY ends records with LF. A LF outside quotes ends a record; one inside a quoted field is
    data and stays as it is. Quote parity is carried from one block to the next, and so is a
    character split between blocks.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    quoted, records = False, 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
        for block in copy:
            parts = decoder.decode(bytes(block)).split('"')
            for i in range(len(parts)):
                if not quoted:
                    records += parts[i].count("\n")
                    parts[i] = parts[i].replace("\n", "\r\n")
                if i < len(parts) - 1:
                    quoted = not quoted
            yield '"'.join(parts)
            if progress:
                progress(records)
