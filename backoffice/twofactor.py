"""Two-factor login for staff: a TOTP authenticator app, with recovery codes (django-otp).

The admin's login form takes the code beside the password. A staff user who has enrolled
always needs it; with STAFF_REQUIRE_2FA on (production) a user who has not enrolled is sent
to enrol after the password and can open nothing else until they have.
"""

import secrets as random

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe
from django_otp import devices_for_user, match_token
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = 10


def is_enrolled(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


class StaffAuthenticationForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="From your authenticator app, or one of your recovery codes.",
    )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and is_enrolled(user):
            token = (cleaned.get("otp_token") or "").replace(" ", "")
            device = match_token(user, token) if token else None
            if device is None:
                # Counted like a wrong password (django-axes listens), and worded like one.
                user_login_failed.send(
                    sender=__name__,
                    credentials={"username": cleaned.get("username")},
                    request=self.request,
                )
                raise forms.ValidationError(
                    "Enter the code from your authenticator app (or a recovery code).",
                    code="otp",
                )
            # django-otp keeps the device in the session when Django logs the user in.
            user.otp_device = device
        return cleaned


class ConfirmForm(forms.Form):
    token = forms.CharField(
        label="Code from the app", max_length=8, widget=forms.TextInput(attrs={"autofocus": True})
    )


def enrol_view(site, request):
    """Add an authenticator app: a QR code, a code to confirm it, then recovery codes."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if is_enrolled(user) and request.user.is_verified():
        context = {
            **site.each_context(request),
            "title": "Two-factor login",
            "enrolled": True,
            "recovery_left": StaticToken.objects.filter(device__user=user).count(),
        }
        return TemplateResponse(request, "admin/backoffice/twofactor.html", context)
    device = TOTPDevice.objects.filter(
        user=user, confirmed=False
    ).first() or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].replace(" ", "")):
            codes = _confirm(device)
            otp_login(request, device)
            context = {**site.each_context(request), "title": "Two-factor login is on",
                       "codes": codes}  # fmt: skip
            return TemplateResponse(request, "admin/backoffice/twofactor_codes.html", context)
        form.add_error("token", "That code is not right: check the app's clock and try again.")
    svg = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    context = {
        **site.each_context(request),
        "title": "Turn on two-factor login",
        "qr": mark_safe(svg.to_string(encoding="unicode")),  # noqa: S308 (our own SVG)
        "secret": device.bin_key.hex(),
        "secret_base32": _base32(device.bin_key),
        "form": form,
        "required": settings.STAFF_REQUIRE_2FA,
    }
    return TemplateResponse(request, "admin/backoffice/twofactor.html", context)


@transaction.atomic
def _confirm(device: TOTPDevice) -> list[str]:
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    recovery, _ = StaticDevice.objects.get_or_create(
        user=device.user, name="Recovery codes", defaults={"confirmed": True}
    )
    recovery.token_set.all().delete()
    codes = [f"{random.randbelow(10**8):08d}" for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=recovery, token=code) for code in codes)
    return codes


def _base32(key: bytes) -> str:
    import base64

    return base64.b32encode(key).decode().rstrip("=")
