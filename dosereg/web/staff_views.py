"""Staff dose pages.  Staff doses are personal data: a person sees their own; holders of
``registry.view_all_staff_doses`` (physicists, administrators) see everyone's.  Anyone else gets 404 for a person
(no hint that the record exists) and 403 for the lists.  Every view is written to the audit trail."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from dosereg.registry.models import Room, StaffDoseReading, StaffMember
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.staff import (
    staff_can_view,
    staff_member_for_user,
    staff_procedures,
    staff_unmatched_readings,
    staff_year_summaries,
)
from dosereg.registry.staff_config import staff_config

VIEW_ALL = "registry.view_all_staff_doses"


def _year(request) -> int:
    raw = request.GET.get("year", "")
    try:
        year = int(raw) if raw else timezone.localdate().year
    except ValueError:
        year = timezone.localdate().year
    return min(max(year, 1900), 2999)


def _date(request, name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.GET.get(name, ""))
    except ValueError:
        return None


def _person_context(request, member: StaffMember, year: int) -> dict:
    summary = staff_year_summaries(year=year, staff_member_ids=[member.pk])[0]
    readings = (StaffDoseReading.objects.filter(dosimeter__staff_member=member)
                .select_related("dosimeter", "room", "study").order_by("-start")[:300])
    return {"member": member, "year": year, "summary": summary, "readings": readings,
            "procedures": staff_procedures(staff_member_id=member.pk, limit=100),
            "config": staff_config(), "years": range(year - 4, year + 2)}


@login_required
def my_doses(request):
    member = staff_member_for_user(request.user)
    year = _year(request)
    context = {"member": member, "year": year, "can_view_all": request.user.has_perm(VIEW_ALL)}
    if member is not None:
        context.update(_person_context(request, member, year))
        audit_record(request=request, action="view_staff_doses", object_type="staff_member", object_id=member.pk,
                     detail={"year": year, "own": True})
    return render(request, "web/staff/mine.html", context)


@login_required
@permission_required(VIEW_ALL, raise_exception=True)
def people(request):
    year = _year(request)
    summaries = staff_year_summaries(year=year)
    audit_record(request=request, action="view_staff_doses", object_type="staff_member", object_id="*",
                 detail={"year": year, "people": len(summaries)})
    return render(request, "web/staff/people.html", {"summaries": summaries, "year": year, "config": staff_config(),
                                                     "years": range(year - 4, year + 2)})


@login_required
def person(request, pk: int):
    member = get_object_or_404(StaffMember, pk=pk)
    if not staff_can_view(request.user, member):
        raise Http404("No such staff member")
    year = _year(request)
    audit_record(request=request, action="view_staff_doses", object_type="staff_member", object_id=member.pk,
                 detail={"year": year, "own": member.user_id == request.user.pk})
    return render(request, "web/staff/person.html", _person_context(request, member, year))


@login_required
@permission_required(VIEW_ALL, raise_exception=True)
def procedures(request):
    date_from, date_to = _date(request, "from"), _date(request, "to")
    room_id = request.GET.get("room") or None
    room_id = int(room_id) if room_id and room_id.isdigit() else None
    rows = staff_procedures(date_from=date_from, date_to=date_to, room_id=room_id)
    audit_record(request=request, action="view_staff_procedures", object_type="staff_dose_reading", object_id="*",
                 detail={"from": str(date_from or ""), "to": str(date_to or ""), "room": room_id,
                         "procedures": len(rows)})
    return render(request, "web/staff/procedures.html", {
        "rows": rows, "rooms": Room.objects.all(), "room_id": room_id, "date_from": date_from, "date_to": date_to,
        "config": staff_config()})


@login_required
@permission_required(VIEW_ALL, raise_exception=True)
def unmatched(request):
    readings = staff_unmatched_readings()
    audit_record(request=request, action="view_staff_unmatched", object_type="staff_dose_reading", object_id="*",
                 detail={"readings": len(readings)})
    return render(request, "web/staff/unmatched.html", {"readings": readings})
