"""Money is an integer in minor units plus a currency code; this module knows the exponents.

The table is Telegram's own (`core/data/currencies.json`, copied from core.telegram.org's
currencies.json). Telegram Stars (`XTR`) is not in it: Stars are whole units.
"""

import json
import re
from decimal import Decimal
from functools import cache
from pathlib import Path

STARS = "XTR"
# Digits, optionally a point and more digits: no signs, exponents, NaN or infinity.
_PLAIN_AMOUNT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")
_TABLE_PATH = Path(__file__).resolve().parent / "data" / "currencies.json"


class UnknownCurrency(ValueError):
    pass


@cache
def _table() -> dict[str, dict]:
    with _TABLE_PATH.open(encoding="utf-8") as handle:
        table = json.load(handle)
    table[STARS] = {"code": STARS, "title": "Telegram Stars", "symbol": "⭐", "exp": 0}
    return table


def currency_codes() -> list[str]:
    return sorted(_table())


def currency_choices() -> list[tuple[str, str]]:
    return [(code, f"{code} — {_table()[code]['title']}") for code in currency_codes()]


def is_known_currency(code: str) -> bool:
    return code in _table()


def exponent(code: str) -> int:
    """Digits after the decimal point for this currency (USD 2, JPY 0, XTR 0)."""
    try:
        return int(_table()[code]["exp"])
    except KeyError:
        raise UnknownCurrency(f"Unknown currency {code!r}") from None


def amount_limits(code: str) -> tuple[int, int] | None:
    """Telegram's accepted (min, max) invoice amount in minor units, where it publishes one."""
    entry = _table().get(code)
    if not entry or "min_amount" not in entry:
        return None
    return int(entry["min_amount"]), int(entry["max_amount"])


def to_major(amount: int, code: str) -> Decimal:
    """Minor units to a Decimal in major units with exactly the currency's digits."""
    exp = exponent(code)
    return (Decimal(int(amount)) / (Decimal(10) ** exp)).quantize(Decimal(1).scaleb(-exp))


def format_amount(amount: int, code: str, language: str = "en") -> str:
    """For people only: '12.50 USD', '1,490.00 RUB', '350 XTR'; in Russian '1 490,00 RUB'.

    A currency Telegram's table does not know is never formatted by guess: the amount is
    shown as it came, in minor units, and says so.
    """
    if not is_known_currency(code):
        return f"{amount} {code} (unknown currency, minor units)"
    shown = f"{to_major(amount, code):,}"
    if language == "ru":
        # Russian groups thousands with a (no-break) space and uses a decimal comma.
        shown = shown.replace(",", "\u00a0").replace(".", ",")
    return f"{shown} {code}"


def major_text(amount: int, code: str) -> str:
    """The amount in major units as a person types it back ('1490.00'), for form initials."""
    return str(to_major(amount, code))


def to_minor(text: str | Decimal | int, code: str) -> int:
    """What a person typed in major units ('12.50') as an integer in minor units (1250).

    Refuses anything that is not a plain non-negative decimal, or that has more digits after
    the point than the currency has (12.505 USD, 1.5 XTR), with a message a person can act on.
    """
    exp = exponent(code)
    raw = str(text).strip().replace(",", "").replace(" ", "").replace("\u00a0", "")
    if not _PLAIN_AMOUNT.fullmatch(raw):
        raise ValueError(f"Enter an amount such as {_example(code)}.")
    value = Decimal(raw)
    if -value.as_tuple().exponent > exp and value != value.quantize(Decimal(1).scaleb(-exp)):
        if exp == 0:
            raise ValueError(f"{code} has no minor unit: enter a whole number.")
        raise ValueError(f"{code} has {exp} digits after the decimal point at most.")
    return int((value * (Decimal(10) ** exp)).to_integral_value())


def _example(code: str) -> str:
    exp = exponent(code)
    return "350" if exp == 0 else "12." + "5".ljust(exp, "0")
