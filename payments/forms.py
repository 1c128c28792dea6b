"""Forms for the staff steps on payments, refunds and disputes (the admin's own pages)."""

from django import forms
from django.contrib.auth import get_user_model

from core import money
from core.forms import MoneyField
from payments.models import Dispute, Refund


class RefundForm(forms.Form):
    reason = forms.ChoiceField(choices=Refund.Reason.choices)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    restock = forms.BooleanField(
        label="Restock",
        required=False,
        help_text="Put the order's units back in stock when the refund completes "
        "(the goods came back or were never sent).",
    )

    def __init__(self, *args, payment, **kwargs):
        super().__init__(*args, **kwargs)
        refundable = payment.refundable_amount
        self.fields["amount"] = MoneyField(
            currency=payment.currency,
            initial=refundable,
            min_amount=1,
            help_text=(
                f"At most {money.format_amount(refundable, payment.currency)} can be refunded."
                + (" Stars payments are refunded whole." if payment.currency == "XTR" else "")
            ),
        )
        self.order_fields(["amount", "reason", "note", "restock"])


class RefundConfirmForm(forms.Form):
    external_reference = forms.CharField(
        label="Provider's refund reference",
        max_length=255,
        help_text="The reference A-Pay shows for the refund you made there.",
    )


class DisputeOpenForm(forms.Form):
    reason = forms.ChoiceField(choices=Dispute.Reason.choices)
    provider_reference = forms.CharField(max_length=255, required=False)
    evidence_due_by = forms.DateTimeField(
        help_text="From the provider's notice (YYYY-MM-DD HH:MM, site time zone)."
    )
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True), required=False
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, payment, **kwargs):
        super().__init__(*args, **kwargs)
        disputable = payment.amount - payment.refunded_amount
        self.fields["amount"] = MoneyField(
            currency=payment.currency,
            initial=disputable,
            min_amount=1,
            help_text=f"At most {money.format_amount(disputable, payment.currency)}.",
        )
        self.order_fields(["amount", "reason", "provider_reference", "evidence_due_by"])


class DisputeStepForm(forms.Form):
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class ChargebackForm(DisputeStepForm):
    block_customer = forms.BooleanField(
        required=False, help_text="Also block the customer from paying again."
    )

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fee"] = MoneyField(
            currency=currency, required=False, initial=0, help_text="The provider's chargeback fee."
        )
        self.order_fields(["fee", "block_customer", "notes"])


class ResolveForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you found and did. Kept with the difference, with your name and the time.",
    )


class ConfirmForm(forms.Form):
    """A step with nothing to type: the button is the decision."""


class StatementUploadForm(forms.Form):
    file = forms.FileField(
        label="A-Pay statement (CSV)",
        help_text="Downloaded from the A-Pay dashboard: ';'-separated UTF-8. The whole file is "
        "checked first; if any line is wrong, nothing is imported.",
    )
    currency = forms.CharField(
        max_length=3,
        required=False,
        help_text="Only if the file has no currency column (an A-Pay project has one currency).",
    )

    def clean_currency(self):
        code = (self.cleaned_data.get("currency") or "").strip().upper()
        if code and not money.is_known_currency(code):
            raise forms.ValidationError(f"{code} is not in Telegram's currency table.")
        return code


class StatementFetchForm(forms.Form):
    since = forms.DateField(
        help_text="First day, inclusive.", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        help_text="Last day, inclusive. Longer than 31 days is fetched as several reports.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise forms.ValidationError("The last day is before the first.")
        return data
