"""The audit trail: who viewed or changed what.  Never store patient names or IDs in ``detail``."""

from __future__ import annotations

from typing import Any

from dosereg.registry.models import AuditLog


def audit_record(*, user=None, action: str, object_type: str = "", object_id: Any = "",
                 detail: dict | None = None, request=None) -> AuditLog:
    ip = None
    if request is not None:
        ip = request.META.get("REMOTE_ADDR") or None
        if user is None:
            user = getattr(request, "user", None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return AuditLog.objects.create(
        user=user,
        username=getattr(user, "username", "") if user else "",
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:128],
        detail=detail or {},
        ip_address=ip,
    )
