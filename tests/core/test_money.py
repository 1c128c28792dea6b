import pytest

from core import money


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [("12.50", "USD", 1250), ("12.5", "USD", 1250), ("12", "USD", 1200),
     ("1,490.00", "RUB", 149000), ("350", "XTR", 350), ("12.500", "USD", 1250),
     ("1000", "JPY", 1000)],
)  # fmt: skip
def test_major_units_typed_by_a_person_become_minor_units(typed, currency, minor):
    assert money.to_minor(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "message"),
    [("12.505", "USD", "USD has 2 digits after the decimal point at most."),
     ("1.5", "XTR", "XTR has no minor unit: enter a whole number."),
     ("-1", "USD", "Enter an amount such as 12.50."),
     ("1e4", "USD", "Enter an amount such as 12.50."),
     ("nan", "USD", "Enter an amount such as 12.50."),
     ("", "XTR", "Enter an amount such as 350.")],
)  # fmt: skip
def test_refuses_amounts_a_currency_cannot_hold(typed, currency, message):
    with pytest.raises(ValueError) as refused:
        money.to_minor(typed, currency)
    assert str(refused.value) == message


def test_formats_with_the_currency_exponent():
    assert money.format_amount(1250, "USD") == "12.50 USD"
    assert money.format_amount(350, "XTR") == "350 XTR"
    assert money.format_amount(1000, "JPY") == "1,000 JPY"
    assert money.format_amount(149000, "RUB") == "1,490.00 RUB"
    assert money.format_amount(149000, "RUB", "ru") == "1\u00a0490,00 RUB"
    assert money.format_amount(1234, "ZZZ") == "1234 ZZZ (unknown currency, minor units)"
