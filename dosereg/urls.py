"""URL map.  Each app owns its pages (``<app>.urls``) and its API endpoints (``<app>.api_urls``, under /api/v1/)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated

from dosereg.web.signin import SignInView

urlpatterns = [
    path("accounts/login/", SignInView.as_view(), name="login"),  # with the sign-in lockout
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # the documentation pages need a login; the split view serves its script as a file (no inline script: CSP)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated]),
         name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated]),
         name="api-redoc"),
    *([path("oidc/", include("mozilla_django_oidc.urls"))] if settings.OIDC_CLIENT_ID else []),  # OpenID Connect
    path("api/v1/", include("dosereg.web.api_urls")),
    path("api/v1/", include("triggers.api_urls")),
    path("api/v1/", include("triggers.incidents.api_urls")),
    path("api/v1/", include("drl.api_urls")),
    path("dicom/", include("dicomrx.urls")),
    path("fhir/", include("dosereg.interop.fhir_urls")),  # FHIR R4 Radiation Dose Summary (read-only)
    path("", include("dosereg.ops.urls")),  # healthz, readyz, metrics
    path("", include("triggers.urls")),  # alerts/, rules/
    path("", include("triggers.incidents.urls")),  # incidents/
    path("", include("drl.urls")),  # drl/, mapping/
    path("staff/", include("dosereg.web.staff_urls")),
    path("", include("dosereg.web.urls")),
]
