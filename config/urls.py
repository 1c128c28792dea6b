from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from botbridge.views import telegram_webhook


@csrf_exempt
def healthz(request):
    """Liveness for load balancers; also the benchmark's no-op view."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("telegram/webhook/", telegram_webhook, name="telegram-webhook"),
    path("healthz/", healthz, name="healthz"),
    # Messages belong to the shop since the apps were layered: old links still land.
    path(
        "admin/botbridge/message/<path:rest>",
        RedirectView.as_view(url="/admin/shop/message/%(rest)s", query_string=True),
    ),
    path(
        "admin/botbridge/message/",
        RedirectView.as_view(url="/admin/shop/message/", query_string=True),
    ),
    path("admin/", admin.site.urls),
]
if settings.TELEGRAM_SANDBOX:
    # The local Telegram's chat page, only when the bot talks to the local Telegram.
    urlpatterns.append(path("sandbox/", include("botbridge.sandbox.urls")))
