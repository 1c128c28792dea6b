"""A-Pay's statement CSV: read, checked whole before anything is taken in.

The file is `;`-separated UTF-8 (a BOM is accepted), with ISO 8601 dates and amounts in major
units ("6008.39"), converted to minor units with Telegram's currency table, never by assuming
two digits. A-Pay's fee is `amount - amount_after_commision` (A-Pay spells it so). Columns
may come in any order and unknown ones are ignored ("may be extended over time"). A file
without a `currency` column needs the currency given (an A-Pay project works in one).

The file is read twice, as a stream: once to check every row (`statement_check`), then to
import it in batches (`statement_batches`), so memory stays flat for a million rows.
"""

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from core import money
from core.errors import DomainError

REQUIRED = ("transaction_id", "order_id", "amount", "amount_after_commision", "status",
            "created_at")  # fmt: skip
OPTIONAL = ("currency", "custom_transaction_id", "custom_user_id", "updated_at", "activated_at")
MAX_ERRORS_SHOWN = 20


class StatementRowData(NamedTuple):
    transaction_id: str
    order_id: str
    custom_transaction_id: str
    custom_user_id: str
    amount: int
    amount_after_commission: int
    fee: int
    currency: str
    status: str
    created_at: datetime
    updated_at: datetime | None
    activated_at: datetime | None


class StatementInvalid(DomainError):
    """The file was refused whole: nothing was imported. `errors` name the lines."""

    code = "statement_invalid"

    def __init__(self, errors: list[str], total: int | None = None):
        total = total if total is not None else len(errors)
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f" … and {total - len(shown)} more." if total > len(shown) else ""
        super().__init__(
            "The statement was not imported (nothing was changed): " + " ".join(shown) + more,
            code=self.code,
        )
        self.errors = errors
        self.total = total


@dataclass
class StatementCheck:
    rows: int = 0
    sha256: str = ""
    first: datetime | None = None
    last: datetime | None = None
    errors: list[str] = field(default_factory=list)
    error_count: int = 0


def _minor(text: str, currency: str, column: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{column} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{column} {text!r} is not a positive amount")
    minor = value.scaleb(money.exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{column} {text!r} has more decimals than {currency} allows")
    return int(minor)


def _when(text: str, column: str, required: bool = False) -> datetime | None:
    text = text.strip()
    if not text:
        if required:
            raise ValueError(f"{column} is empty")
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not an ISO 8601 date") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _header(line: str) -> list[str]:
    if ";" not in line:
        for name, sep in (("a comma", ","), ("a tab", "\t"), ("'|'", "|")):
            if sep in line:
                raise StatementInvalid(
                    [f"Line 1: the columns are separated by {name}; A-Pay statements use ';'."]
                )
    return [name.strip().lower() for name in next(csv.reader([line], delimiter=";"))]


def _columns(header: list[str], currency: str) -> dict[str, int]:
    missing = [name for name in REQUIRED if name not in header]
    if "currency" not in header and not currency:
        missing.append("currency (or give the statement's currency)")
    if missing:
        raise StatementInvalid([f"Line 1: missing column(s): {', '.join(missing)}."])
    return {name: header.index(name) for name in (*REQUIRED, *OPTIONAL) if name in header}


def _rows(path: Path, currency: str) -> Iterator[tuple[int, StatementRowData | str]]:
    """(line number, the row or what is wrong with it) for every data line."""
    currency = (currency or "").upper()
    if currency and not money.is_known_currency(currency):
        raise StatementInvalid([f"Unknown currency {currency}."])
    with open(path, encoding="utf-8-sig", newline="") as handle:
        try:
            first = handle.readline()
        except UnicodeDecodeError:
            raise StatementInvalid(["The file is not UTF-8 text."]) from None
        if not first.strip():
            raise StatementInvalid(["The file is empty."])
        header = _header(first.rstrip("\r\n"))
        at = _columns(header, currency)
        width = len(header)
        reader = csv.reader(handle, delimiter=";")
        line = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                yield reader.line_num + 1, "is not UTF-8 text"
                return
            except csv.Error as error:
                yield reader.line_num + 1, f"cannot be read ({error})"
                continue
            line = reader.line_num + 1
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != width:
                yield line, f"has {len(cells)} fields; the header has {width}"
                continue
            try:
                yield line, _row(cells, at, currency)
            except ValueError as error:
                yield line, str(error)


def _row(cells: list[str], at: dict[str, int], currency: str) -> StatementRowData:
    def get(name: str) -> str:
        return cells[at[name]].strip() if name in at else ""

    code = (get("currency") or currency).upper()
    if not money.is_known_currency(code):
        raise ValueError(f"currency {code!r} is not in Telegram's currency table")
    transaction_id = get("transaction_id")
    if not transaction_id or len(transaction_id) > 64:
        raise ValueError("transaction_id is empty or longer than 64 characters")
    amount = _minor(get("amount"), code, "amount")
    after = _minor(get("amount_after_commision"), code, "amount_after_commision")
    if after > amount:
        raise ValueError("amount_after_commision is larger than amount")
    status = get("status")
    if not status or len(status) > 32:
        raise ValueError("status is empty or longer than 32 characters")
    return StatementRowData(
        transaction_id=transaction_id,
        order_id=get("order_id")[:64],
        custom_transaction_id=get("custom_transaction_id")[:255],
        custom_user_id=get("custom_user_id")[:255],
        amount=amount,
        amount_after_commission=after,
        fee=amount - after,
        currency=code,
        status=status,
        created_at=_when(get("created_at"), "created_at", required=True),
        updated_at=_when(get("updated_at"), "updated_at"),
        activated_at=_when(get("activated_at"), "activated_at"),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def statement_check(
    path: Path,
    *,
    currency: str = "",
    allow_empty: bool = False,
    on_row: Callable[[StatementRowData], None] | None = None,
    sha256: str = "",
) -> StatementCheck:
    """Read the whole file; StatementInvalid naming the lines if anything is wrong.

    `on_row`, if given, is handed each row while no line was wrong so far (the bulk import
    stages them in the same pass; a refusal then discards what was staged).
    """
    check = StatementCheck(sha256=sha256 or file_sha256(path))
    for line, row in _rows(path, currency):
        if isinstance(row, str):
            check.error_count += 1
            if len(check.errors) < MAX_ERRORS_SHOWN:
                check.errors.append(f"Line {line}: {row}.")
            continue
        check.rows += 1
        if on_row is not None and not check.error_count:
            on_row(row)
        if check.first is None or row.created_at < check.first:
            check.first = row.created_at
        if check.last is None or row.created_at > check.last:
            check.last = row.created_at
    if check.error_count:
        raise StatementInvalid(check.errors, check.error_count)
    if not check.rows and not allow_empty:
        raise StatementInvalid(["The file has a header but no rows."])
    return check


def statement_batches(
    path: Path, *, currency: str = "", size: int = 5000
) -> Iterator[list[StatementRowData]]:
    """The rows in batches (after `statement_check` passed)."""
    batch: list[StatementRowData] = []
    for line, row in _rows(path, currency):
        if isinstance(row, str):  # the file changed since it was checked
            raise StatementInvalid([f"Line {line}: {row}."])
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
