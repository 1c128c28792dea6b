"""Form fields staff type money into: major units in, minor units out."""

from django import forms

from core import money


class MoneyField(forms.CharField):
    """An amount typed in major units ('12.50') for one currency, cleaned to minor units.

    More digits after the point than the currency has, or anything that is not a plain
    amount, is refused with a message that says what to type.
    """

    def __init__(self, *, currency: str, min_amount: int | None = None, **kwargs):
        self.currency = currency
        self.min_amount = min_amount
        kwargs.setdefault("max_length", 32)
        initial = kwargs.get("initial")
        if isinstance(initial, int):
            kwargs["initial"] = money.major_text(initial, currency)
        super().__init__(**kwargs)
        places = money.exponent(currency)
        self.help_text = self.help_text or f"In {currency}" + (
            f", up to {places} decimal places." if places else ", a whole number."
        )
        self.widget.attrs.setdefault("inputmode", "decimal")
        self.widget.attrs.setdefault("size", 14)

    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return None
        try:
            amount = money.to_minor(value, self.currency)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        if self.min_amount is not None and amount < self.min_amount:
            raise forms.ValidationError(
                f"Enter at least {money.format_amount(self.min_amount, self.currency)}."
            )
        return amount
