"""Request middleware: log in to see anything, security headers, and an access log without patient data.

Log in: pages redirect to the login page, API calls get 401/403 (never a redirect).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.utils.cache import patch_cache_control

from dosereg.registry.models import Patient
from dosereg.web.privacy_log import patient_id_in_path, redact_path

OPEN_PREFIXES = ("/accounts/login/", "/static/", "/api/schema/", "/healthz", "/readyz", "/metrics", "/oidc/")
# the API's own documentation pages are pages: a browser without a session goes to the login page
API_DOC_PREFIXES = ("/api/docs/", "/api/redoc/")

access_log = logging.getLogger("dosereg.access")


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if request.user.is_authenticated or path.startswith(OPEN_PREFIXES):
            return self.get_response(request)
        if path.startswith(("/api/", "/fhir/")) and not path.startswith(API_DOC_PREFIXES):
            # API and FHIR requests authenticate per request (token) in DRF; let DRF answer 401 itself.
            return self.get_response(request)
        if path.startswith("/admin/"):
            return self.get_response(request)  # the admin has its own login page
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)


def api_unauthenticated(request):
    return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)


class SecurityHeadersMiddleware:
    """Content-Security-Policy on every response (settings.CONTENT_SECURITY_POLICY: scripts from this origin only,
    never inline) and ``Cache-Control: no-store`` on every response but static files: pages, API answers and
    downloads may carry patient data, and a shared or browser cache must not keep them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        if not request.path_info.startswith("/static/"):
            patch_cache_control(response, no_store=True, private=True)
        return response


class AccessLogMiddleware:
    """One line per request on the ``dosereg.access`` logger, replacing the web server's access log (which writes
    the query string and the path as sent): method, path without query string and with a patient ID replaced by
    the patient's internal id, status, duration and the user's internal id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        if access_log.isEnabledFor(logging.INFO):
            path = request.path_info
            internal = None
            raw = patient_id_in_path(path)
            if raw is not None and response.status_code < 400:
                internal = _patient_pk(unquote(raw))
            user = getattr(request, "user", None)
            access_log.info("%s %s %s %dms user=%s", request.method, redact_path(path, internal),
                            response.status_code, (time.monotonic() - started) * 1000,
                            user.pk if user is not None and user.is_authenticated else "-")
        return response


def _patient_pk(patient_id: str) -> int | None:
    return Patient.objects.filter(patient_id=patient_id).values_list("pk", flat=True).first()
