"""The DICOM status page for administrators and physicists: listener, senders, refusals, reprocess."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dicomrx import selectors
from dicomrx.ingest import ingest_received_object
from dicomrx.listener import effective_allowlist
from dosereg.registry.models import ReceivedObject
from dosereg.registry.services.audit import audit_record


@permission_required("dicomrx.view_listener_status", raise_exception=True)
def listener_status(request):
    allowlist = effective_allowlist()
    return render(request, "dicomrx/status.html", {
        "listeners": selectors.listener_statuses(),
        "allowlist": [f"{a}@{h}" if h else a for a, h in allowlist],
        "senders": selectors.senders(),
        "silent_senders": selectors.silent_senders(),
        "silent_units": selectors.silent_units(),
        "refused": selectors.refused(),
        "rejected": selectors.rejected_objects(),
        "waiting": selectors.waiting_objects(),
        "oldest_waiting_s": selectors.oldest_waiting_seconds(),
        "space": selectors.inbox_space(),
        "can_reprocess": request.user.has_perm("registry.change_receivedobject"),
    })


@require_POST
@permission_required(["dicomrx.view_listener_status", "registry.change_receivedobject"], raise_exception=True)
def reprocess_object(request, pk: int):

    row = get_object_or_404(ReceivedObject, pk=pk)
    try:
        outcome = ingest_received_object(row.pk, force=True)
    except Exception as exc:  # noqa: BLE001 - shown to the administrator; the object stays as it was
        messages.error(request, f"Reprocessing {row.sop_instance_uid} failed: {exc}")
        outcome = None
    audit_record(user=request.user, action="reprocess_object", object_type="ReceivedObject", object_id=row.pk,
                 detail={"sop_instance_uid": row.sop_instance_uid, "outcome": getattr(outcome, "status", "error")},
                 request=request)
    if outcome is not None:
        row.refresh_from_db()
        messages.info(request, f"Reprocessed {row.sop_instance_uid}: {outcome.status} (state {row.state})"
                      + (f": {outcome.reason}" if outcome.reason else ""))
    return redirect("dicomrx:status")
