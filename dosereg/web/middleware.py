"""Log in to see anything: pages redirect to the login page, API calls get 401/403 (never a redirect)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse

OPEN_PREFIXES = ("/accounts/login/", "/static/", "/api/schema/", "/healthz")


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if request.user.is_authenticated or path.startswith(OPEN_PREFIXES):
            return self.get_response(request)
        if path.startswith("/api/"):
            # API requests authenticate per request (token) in DRF; let DRF answer 401 itself.
            return self.get_response(request)
        if path.startswith("/admin/"):
            return self.get_response(request)  # the admin has its own login page
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)


def api_unauthenticated(request):
    return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
