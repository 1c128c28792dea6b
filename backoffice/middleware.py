"""Staff sessions end after STAFF_IDLE_TIMEOUT without a request."""

import time

from django.conf import settings
from django.contrib.auth import logout

LAST_SEEN = "backoffice:last_seen"


class StaffIdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            now = time.time()
            last = request.session.get(LAST_SEEN)
            if last is not None and now - last > settings.STAFF_IDLE_TIMEOUT.total_seconds():
                logout(request)
            elif last is None or now - last > 60:
                # Written at most once a minute: not a session write per request.
                request.session[LAST_SEEN] = now
        return self.get_response(request)
