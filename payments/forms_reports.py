from zoneinfo import available_timezones

from django import forms
from django.conf import settings
from django.utils import timezone

from core import money
from payments.models import Difference, Dispute, LedgerEntry, Payment, Refund
from payments.reports import REPORTS
from shop.models import Order

# Offered first in the time-zone picker, after the site's own.
COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "Europe/Moscow", "Asia/Dubai",
                "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "America/New_York",
                "America/Los_Angeles"]  # fmt: skip

# What "status" means in each report, as people read it.
STATUSES = {
    "orders": ("Orders", Order.Status.choices),
    "payments": ("Payments (review)", [c for c in Payment.Review.choices if c[0]]),
    "refunds": ("Refunds", Refund.Status.choices),
    "disputes": ("Disputes", Dispute.Status.choices),
    "ledger": ("Ledger (kind)", LedgerEntry.Kind.choices),
    "reconciliation": ("Differences", Difference.Status.choices),
}
REPORT_LABELS = {
    "orders": "Orders",
    "payments": "Payments",
    "refunds": "Refunds",
    "disputes": "Disputes and chargebacks",
    "ledger": "Ledger entries",
    "settlement": "Settlement (per day and currency)",
    "reconciliation": "Reconciliation differences",
    "promo_codes": "Promo codes (uses and discount per code)",
    "subscriptions": "Subscriptions (per month)",
}


def zone_choices() -> list:
    first = list(dict.fromkeys([settings.TIME_ZONE, *COMMON_ZONES]))
    rest = sorted(available_timezones() - set(first))
    return [("Common", [(z, z) for z in first]), ("All time zones", [(z, z) for z in rest])]


class ReportForm(forms.Form):
    report = forms.ChoiceField(choices=[(name, REPORT_LABELS.get(name, name)) for name in REPORTS])
    since = forms.DateField(
        help_text="First day, inclusive.", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        help_text="Last day, inclusive.", widget=forms.DateInput(attrs={"type": "date"})
    )
    tz = forms.ChoiceField(
        label="Time zone",
        initial=settings.TIME_ZONE,
        help_text="The days are counted in this time zone; timestamps are written in UTC.",
    )
    currency = forms.ChoiceField(choices=[("", "All")], required=False)
    status = forms.ChoiceField(
        required=False,
        help_text="Only rows in this state (for the report it belongs to).",
    )
    provider = forms.ChoiceField(choices=[("", "All"), *Payment.Provider.choices], required=False)
    include_test = forms.BooleanField(
        required=False,
        label="Include test payments",
        help_text="Payments made with a TEST provider token are not money and are left out.",
    )
    bom = forms.BooleanField(required=False, label="Excel (UTF-8 BOM)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.localdate()
        self.fields["since"].initial = today.replace(day=1)
        self.fields["until"].initial = today
        self.fields["currency"].choices = [("", "All"), *money.currency_choices()]
        self.fields["tz"].choices = zone_choices()
        self.fields["status"].choices = [("", "Any")] + [
            (label, list(choices)) for label, choices in STATUSES.values()
        ]

    def clean(self):
        data = super().clean()
        report, status = data.get("report"), data.get("status")
        if status and report:
            allowed = {value for value, _ in STATUSES.get(report, ("", []))[1]}
            if status not in allowed:
                self.add_error(
                    "status", f"The {REPORT_LABELS.get(report, report)} report has no such status."
                )
        return data

    def params(self) -> dict:
        data = self.cleaned_data
        return {
            "since": data["since"].isoformat(),
            "until": data["until"].isoformat(),
            "tz": data["tz"],
            "currency": data["currency"],
            "status": data["status"],
            "provider": data["provider"],
            "include_test": data["include_test"],
            "bom": data["bom"],
        }


def params_sentence(report: str, params: dict) -> str:
    """A report's parameters as a sentence: 'Payments from 2026-11-01 to 2026-11-30 (UTC), USD.'"""
    parts = [
        f"{REPORT_LABELS.get(report, report)} from {params.get('since')} to {params.get('until')}"
        f" ({params.get('tz') or settings.TIME_ZONE})"
    ]
    if params.get("currency"):
        parts.append(f"in {params['currency']} only")
    if params.get("status"):
        labels = dict(STATUSES.get(report, ("", []))[1])
        parts.append(f"{labels.get(params['status'], params['status']).lower()} only")
    if params.get("provider"):
        parts.append(f"paid through {dict(Payment.Provider.choices).get(params['provider'])}")
    if params.get("include_test"):
        parts.append("test payments included")
    if params.get("bom"):
        parts.append("for Excel")
    return ", ".join(parts) + "."
