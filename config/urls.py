from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from botbridge.views import telegram_webhook

admin.site.site_header = "Shopbot back office"
admin.site.site_title = "Shopbot back office"
admin.site.index_title = "Back office"


@csrf_exempt
def healthz(request):
    """Liveness for load balancers; also the benchmark's no-op view."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("telegram/webhook/", telegram_webhook, name="telegram-webhook"),
    path("sandbox/", include("botbridge.sandbox.urls")),
    path("healthz/", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
