"""The skin dose map of a study as PNG or SVG (``/api/v1/studies/{uid}/skin-map.png|svg``) for the study page, the
incident report and API clients.  404 with the reason where there is no map (no fluoroscopy, or the geometry is
incomplete: Ka,r is then the surrogate)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dosereg.core.skin_map import SkinMapUnavailable, render_png, render_svg
from dosereg.registry.models import Study
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.skin_dose import skin_dose_result
from dosereg.web.api import require_perms

RENDERERS = {"png": (render_png, "image/png"), "svg": (render_svg, "image/svg+xml")}


def skin_map_bytes(study: Study, fmt: str) -> tuple[bytes, str]:
    """The map in ``fmt`` ('png' or 'svg') and its content type; SkinMapUnavailable with the reasons when none."""
    result = skin_dose_result(study)
    if result is None:
        raise SkinMapUnavailable(("no fluoroscopy event with Ka,r: no skin dose was computed",))
    render, content_type = RENDERERS[fmt]
    out = render(result)
    return (out.encode() if isinstance(out, str) else out), content_type


class SkinMapView(APIView):
    """The study's skin dose map (the phantom unrolled, isodose bands in Gy, the peak marked)."""

    permission_classes = [IsAuthenticated, require_perms("registry.view_study", "registry.view_study_detail")]

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY, (200, "image/svg+xml"): OpenApiTypes.STR,
                              404: OpenApiTypes.OBJECT})
    def get(self, request, study_instance_uid: str, fmt: str):
        study = get_object_or_404(Study, study_instance_uid=study_instance_uid)
        try:
            body, content_type = skin_map_bytes(study, fmt)
        except SkinMapUnavailable as exc:
            return Response({"detail": "no skin dose map for this study", "reasons": list(exc.reasons)}, status=404)
        audit_record(action="api_view_skin_map", object_type="study", object_id=study.pk, request=request)
        return HttpResponse(body, content_type=content_type)
