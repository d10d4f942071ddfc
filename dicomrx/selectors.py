"""Read-only queries behind the DICOM status page (aggregated in the database)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Max, Q
from django.utils import timezone

from dicomrx import diskspace
from dicomrx.models import ListenerStatus, RefusedObject
from dosereg.registry.models import Equipment, ReceivedObject

HEARTBEAT_STALE = dt.timedelta(seconds=60)


def listener_statuses() -> list[dict]:
    now = timezone.now()
    out = []
    for row in ListenerStatus.objects.order_by("-heartbeat_at")[:10]:
        up = row.stopped_at is None and now - row.heartbeat_at < HEARTBEAT_STALE
        out.append({"row": row, "up": up, "age_s": int((now - row.heartbeat_at).total_seconds())})
    return out


def senders(days: int = 30) -> list[dict]:
    """Per calling AE: last object, objects in the window, objects refused by ingest in the window."""
    since = timezone.now() - dt.timedelta(days=days)
    return list(ReceivedObject.objects.exclude(calling_ae="").values("calling_ae").annotate(
        last=Max("received_at"), recent=Count("id", filter=Q(received_at__gte=since)),
        rejected=Count("id", filter=Q(received_at__gte=since, state=ReceivedObject.STATE_REJECTED)),
    ).order_by("-last")[:200])


def silent_senders(quiet_days: int = 7, window_days: int = 90) -> list[dict]:
    """Calling AEs that sent within the window but nothing for quiet_days."""
    now = timezone.now()
    return [s for s in ReceivedObject.objects.exclude(calling_ae="")
            .filter(received_at__gte=now - dt.timedelta(days=window_days)).values("calling_ae")
            .annotate(last=Max("received_at")).order_by("last")
            if s["last"] < now - dt.timedelta(days=quiet_days)]


def silent_units(quiet_days: int = 14, window_days: int = 180):
    now = timezone.now()
    return Equipment.objects.filter(demo=False, last_object_at__lt=now - dt.timedelta(days=quiet_days),
                                    last_object_at__gte=now - dt.timedelta(days=window_days)
                                    ).select_related("room").order_by("last_object_at")[:100]


def refused(limit: int = 50):
    return RefusedObject.objects.all()[:limit]


def rejected_objects(limit: int = 50):
    return ReceivedObject.objects.filter(state__in=[ReceivedObject.STATE_REJECTED]).order_by("-received_at")[:limit]


def waiting_objects() -> int:
    return ReceivedObject.objects.filter(state=ReceivedObject.STATE_RECEIVED).count()


def oldest_waiting_seconds() -> float | None:
    """How long the oldest object not yet ingested has waited (None when nothing waits)."""
    oldest = ReceivedObject.objects.filter(state=ReceivedObject.STATE_RECEIVED).order_by("received_at").values_list(
        "received_at", flat=True).first()
    return None if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


def inbox_space() -> dict:
    """Free space on the inbox's file system beside the reserve below which objects are answered 0xA700."""
    try:
        space = diskspace.inbox_space()
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}
    return {"free_mb": space.free_bytes // diskspace.MB, "reserve_mb": space.reserve_bytes // diskspace.MB,
            "low": not space.room_for(0)}
