from zoneinfo import available_timezones

from django import forms
from django.conf import settings
from django.utils import timezone

from core import money
from payments.models import Payment
from payments.reports import REPORTS


class ReportForm(forms.Form):
    report = forms.ChoiceField(choices=[(name, name.title()) for name in REPORTS])
    since = forms.DateField(help_text="First day, inclusive (YYYY-MM-DD).")
    until = forms.DateField(help_text="Last day, inclusive.")
    tz = forms.ChoiceField(
        label="Time zone",
        choices=[(z, z) for z in sorted(available_timezones())],
        initial=settings.TIME_ZONE,
        help_text="The days are counted in this time zone; timestamps are written in UTC.",
    )
    currency = forms.ChoiceField(choices=[("", "All")], required=False)
    status = forms.CharField(
        required=False, help_text="Orders, refunds, disputes: status; ledger: kind."
    )
    provider = forms.ChoiceField(choices=[("", "All"), *Payment.Provider.choices], required=False)
    bom = forms.BooleanField(required=False, label="Excel (UTF-8 BOM)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.localdate()
        self.fields["since"].initial = today.replace(day=1)
        self.fields["until"].initial = today
        self.fields["currency"].choices = [("", "All"), *money.currency_choices()]

    def params(self) -> dict:
        data = self.cleaned_data
        return {
            "since": data["since"].isoformat(),
            "until": data["until"].isoformat(),
            "tz": data["tz"],
            "currency": data["currency"],
            "status": data["status"].strip(),
            "provider": data["provider"],
            "bom": data["bom"],
        }
