"""/healthz, /readyz and /metrics: open without a login session, carrying no patient data."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from dosereg.ops import health, metrics

METRICS_PERMISSION = "registry.view_metrics"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers HTTP.  Nothing else is checked, so a database outage does not restart it."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    checks = health.readiness(with_listener=request.GET.get("listener") == "1")
    ready = all(c.ok for c in checks)
    body = {"status": "ok" if ready else "unavailable",
            "checks": {c.name: "ok" if c.ok else f"failed: {c.reason}" for c in checks}}
    return JsonResponse(body, status=200 if ready else 503)


def address_allowed(address: str, allowed: list[str]) -> bool:
    """Whether ``address`` lies in one of the ``allowed`` addresses or networks (pure)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _may_read_metrics(request: HttpRequest) -> bool:
    if address_allowed(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOW):
        return True
    if request.user.is_authenticated and request.user.has_perm(METRICS_PERMISSION):
        return True
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return False
    return found is not None and found[0].has_perm(METRICS_PERMISSION)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _may_read_metrics(request):
        return HttpResponse("metrics need an API token with registry.view_metrics or an address in "
                            "DOSEREG_METRICS_ALLOW\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.render(metrics.collect()), content_type=metrics.CONTENT_TYPE)
