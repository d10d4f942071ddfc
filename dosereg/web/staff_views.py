"""Staff dose pages.  Staff doses are personal data: a person sees their own; holders of
``registry.view_all_staff_doses`` (physicists, administrators) see everyone's.  Anyone else gets 404 for a person
(no hint that the record exists) and 403 for the lists.  Every view is written to the audit trail."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dosereg.registry.models import Room, StaffDoseReading, StaffMember
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.staff import (
    StaffImportError,
    staff_can_view,
    staff_member_for_user,
    staff_procedures,
    staff_roster_import,
    staff_unmatched_readings,
    staff_year_summaries,
)
from dosereg.registry.staff_config import staff_config
from dosereg.web.forms import DosimeterForm, RosterForm, StaffMemberForm
from dosereg.web.params import id_param

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
    room_id = id_param(request.GET, "room")
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


# --- staff members, dosimeters and the roster (administrators: registry.add_staffmember / change_staffmember) -----
def _members_overview():
    return (StaffMember.objects.select_related("user").prefetch_related("dosimeters__room").order_by("name"))


@login_required
@permission_required("registry.view_staffmember", raise_exception=True)
def manage(request):
    """Who wears which dosimeter and signs in with which account; where to add people or import a roster."""
    return render(request, "web/staff/manage.html", {"members": _members_overview()})


@login_required
@permission_required("registry.change_staffmember", raise_exception=True)
def member_edit(request, pk: int | None = None):
    member = get_object_or_404(StaffMember, pk=pk) if pk else None
    if member is None and not request.user.has_perm("registry.add_staffmember"):
        raise PermissionDenied
    form = StaffMemberForm(request.POST or None, instance=member)
    dosimeter_form = DosimeterForm()
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        audit_record(request=request, action="staff_member_save", object_type="staff_member", object_id=saved.pk,
                     detail={"created": member is None, "fields": sorted(form.changed_data)})
        messages.success(request, _("Staff member saved."))
        return redirect("staff:member_edit", pk=saved.pk)
    return render(request, "web/staff/member_form.html", {"form": form, "member": member,
                                                          "dosimeter_form": dosimeter_form})


@require_POST
@login_required
@permission_required("registry.add_dosimeter", raise_exception=True)
def dosimeter_add(request, pk: int):
    member = get_object_or_404(StaffMember, pk=pk)
    form = DosimeterForm(request.POST)
    if form.is_valid():
        dosimeter = form.save(commit=False)
        dosimeter.staff_member = member
        dosimeter.save()
        audit_record(request=request, action="dosimeter_add", object_type="dosimeter", object_id=dosimeter.pk,
                     detail={"dosimeter_id": dosimeter.dosimeter_id, "staff_member": member.pk})
        messages.success(request, _("Dosimeter %(id)s added.") % {"id": dosimeter.dosimeter_id})
        return redirect("staff:member_edit", pk=member.pk)
    return render(request, "web/staff/member_form.html", {"form": StaffMemberForm(instance=member), "member": member,
                                                          "dosimeter_form": form}, status=400)


@login_required
@permission_required("registry.add_staffmember", raise_exception=True)
def roster_import(request):
    """Upload or paste a roster: staff members and their dosimeters in one go (see docs/examples/staff-roster.csv)."""
    form = RosterForm(request.POST or None, request.FILES or None)
    summary = None
    if request.method == "POST" and form.is_valid():
        try:
            summary = staff_roster_import(form.cleaned_data["roster"], user=request.user)
        except StaffImportError as exc:
            form.add_error(None, str(exc))
        else:
            if not summary.errors:
                messages.success(request, _("Roster imported."))
    return render(request, "web/staff/roster.html", {"form": form, "summary": summary},
                  status=400 if summary is not None and summary.errors else 200)
