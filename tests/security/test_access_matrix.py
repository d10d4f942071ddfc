"""The role x URL matrix, generated from the URLconf and compared with the README's permission table.

Every named URL must have an entry in ACCESS (a new URL without one fails), every permission an entry names must be
a row of the README's "Roles and permissions" table, and each role (and a user without a role) must get exactly the
access the table grants: GET for pages and API reads; for POST-only actions, the refusal of those not granted (an
empty POST by a granted role could act, so it is not sent).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dosereg.registry.models import ReceivedObject
from tests.conftest import REPO
from tests.factories import AlertFactory

ROLES = ("radiographer", "practitioner", "physicist", "qa_committee", "admin", "api_client")
OPEN, LOGIN = "open", "login"  # no login needed; any signed-in user (what the view shows is the user's own)
# url name -> (method, rule): rule is OPEN, LOGIN, "app.perm", "a.p1&a.p2" (all of) or "a.p1|a.p2" (any of)
ACCESS = {
    "login": ("GET", OPEN), "logout": ("POST", LOGIN), "password_change": ("GET", LOGIN),
    "password_change_done": ("GET", LOGIN), "healthz": ("GET", OPEN), "readyz": ("GET", OPEN),
    "metrics": ("GET", OPEN),  # from DOSEREG_METRICS_ALLOW addresses; elsewhere registry.view_metrics (test below)
    "api-schema": ("GET", OPEN), "api-docs": ("GET", LOGIN),
    "api-redoc": ("GET", LOGIN),
    # registry pages
    "home": ("GET", "registry.view_study"), "load_demo_data": ("POST", "registry.manage_site_settings"),
    "patient_search": ("GET", "registry.view_patient_history"),
    "patient_history": ("GET", "registry.view_patient_history"),
    "patient_sheet": ("GET", "registry.view_patient_sheet"), "study_list": ("GET", "registry.view_study"),
    "study_detail": ("GET", "registry.view_study_detail"),
    "study_confirm_values": ("POST", "drl.manage_mapping|registry.manage_equipment"),
    "download_object": ("GET", "registry.download_dicom"), "unit_list": ("GET", "registry.view_equipment"),
    "unit_detail": ("GET", "registry.view_equipment"), "audit_trail": ("GET", "registry.view_audit_trail"),
    "data_protection_report": ("GET", "registry.view_audit_trail"),
    "euratom": ("GET", "registry.manage_equipment"), "euratom_population_csv": ("GET", "registry.manage_equipment"),
    "euratom_units_csv": ("GET", "registry.manage_equipment"),
    # registry API
    "api-studies": ("GET", "registry.view_study"),
    "api-study": ("GET", "registry.view_study&registry.view_study_detail"),
    "api-study-skin-map": ("GET", "registry.view_study&registry.view_study_detail"),
    "api-patient-history": ("GET", "registry.view_patient_history"),
    # staff doses
    "staff:mine": ("GET", LOGIN), "staff:people": ("GET", "registry.view_all_staff_doses"),
    "staff:person": ("GET", "registry.view_all_staff_doses"),
    "staff:procedures": ("GET", "registry.view_all_staff_doses"),
    "staff:unmatched": ("GET", "registry.view_all_staff_doses"), "staff:manage": ("GET", "registry.view_staffmember"),
    "staff:member_edit": ("GET", "registry.change_staffmember"),
    "staff:member_new": ("GET", "registry.change_staffmember&registry.add_staffmember"),
    "staff:dosimeter_add": ("POST", "registry.add_dosimeter"), "staff:roster": ("GET", "registry.add_staffmember"),
    # alerts and rules
    "triggers:alert_inbox": ("GET", "triggers.view_alert"), "triggers:follow_up_list": ("GET", "triggers.view_alert"),
    "triggers:alert_detail": ("GET", "triggers.view_alert"),
    "triggers:alert_acknowledge": ("POST", "triggers.acknowledge_alert"),
    "triggers:alert_follow_up": ("POST", "triggers.follow_up_alert"),
    "triggers:alert_close": ("POST", "triggers.follow_up_alert"),
    "triggers:alert_escalate": ("POST", "triggers.escalate_alert"),
    "triggers:rule_list": ("GET", "triggers.view_triggerrule"),
    "triggers:rule_detail": ("GET", "triggers.view_triggerrule"), "triggers:rule_new": ("GET", "triggers.manage_rules"),
    "triggers:rule_edit": ("GET", "triggers.manage_rules"), "triggers:rule_tuning": ("GET", "triggers.export_alerts"),
    "alert-list": ("GET", "triggers.view_alert"), "alert-detail": ("GET", "triggers.view_alert"),
    "alert-acknowledge": ("POST", "triggers.acknowledge_alert"), "alert-follow-up": ("POST", "triggers.follow_up_alert"),
    "alert-close": ("POST", "triggers.follow_up_alert"), "triggerrule-list": ("GET", "triggers.view_triggerrule"),
    "triggerrule-detail": ("GET", "triggers.view_triggerrule"),
    # incidents
    "incidents:list": ("GET", "triggers.view_incidentreport"),
    "incidents:report_lookup": ("GET", "triggers.report_exposure"),
    "incidents:new": ("GET", "triggers.add_incidentreport"), "incidents:from_study": ("GET", "triggers.report_exposure"),
    "incidents:from_alert": ("GET", "triggers.escalate_alert"),
    "incidents:detail": ("GET", "triggers.view_incidentreport"), "incidents:print": ("GET", "triggers.view_incidentreport"),
    "incidents:pdf": ("GET", "triggers.view_incidentreport"), "incidents:edit": ("GET", "triggers.view_incidentreport"),
    "incidents:analysis": ("GET", "triggers.edit_incident_analysis"),
    "incidents:summary": ("GET", "triggers.view_all_incidents"),
    # incident steps: the service decides who may (reporter, QA committee...); the view itself needs a login
    "incidents:action_add": ("POST", LOGIN), "incidents:action_done": ("POST", LOGIN),
    "incidents:transition": ("POST", LOGIN), "incidents:notification": ("POST", LOGIN),
    "incidents:significance": ("POST", LOGIN), "incidents:comment": ("POST", LOGIN),
    "api-incidents": ("GET", "triggers.view_incidentreport"), "api-incident": ("GET", "triggers.view_incidentreport"),
    # DRL
    "drl:home": ("GET", "drl.view_drlcomparison"), "drl:report": ("GET", "drl.view_drlcomparison"),
    "drl:report_pdf": ("GET", "drl.view_drlcomparison"), "drl:report_csv": ("GET", "drl.view_drlcomparison"),
    "drl:run": ("POST", "drl.run_drl_comparison"), "drl:due_run": ("POST", "drl.run_drl_comparison"),
    "drl:sets": ("GET", "drl.view_drlcomparison"), "drl:set_import": ("GET", "drl.manage_drl_sets"),
    "drl:set_toggle": ("POST", "drl.manage_drl_sets"), "drl:mapping": ("GET", "drl.manage_mapping"),
    "drl:mapping_assign": ("POST", "drl.manage_mapping"), "drl:mapping_rule_add": ("POST", "drl.manage_mapping"),
    "drl:mapping_rule_toggle": ("POST", "drl.manage_mapping"), "drl:mapping_reapply": ("POST", "drl.manage_mapping"),
    "drl-comparisons": ("GET", "drl.view_drlcomparison"), "drl-comparison": ("GET", "drl.view_drlcomparison"),
    # DICOM listener
    "dicomrx:status": ("GET", "dicomrx.view_listener_status"),
    "dicomrx:reprocess": ("POST", "dicomrx.view_listener_status&registry.change_receivedobject"),
    # FHIR (read-only); metadata and unknown paths answer anyone (the capability statement; 404 in FHIR form)
    "fhir:metadata": ("GET", OPEN), "fhir:unknown": ("GET", OPEN),
    "fhir:observation-search": ("GET", "registry.view_study&registry.view_study_detail"),
    "fhir:observation": ("GET", "registry.view_study&registry.view_study_detail"),
    "fhir:patient": ("GET", "registry.view_study&registry.view_study_detail"),
    "fhir:imaging-study": ("GET", "registry.view_study&registry.view_study_detail"),
    "fhir:device": ("GET", "registry.view_study&registry.view_study_detail"),
}


def url_names() -> dict[str, str]:
    """name -> pattern of every named URL outside the admin (which checks model permissions itself)."""
    out = {}

    def walk(patterns, prefix, ns):
        for p in patterns:
            if isinstance(p, URLResolver):
                if not str(p.pattern).startswith("admin/"):
                    walk(p.url_patterns, prefix + str(p.pattern), f"{ns}{p.namespace}:" if p.namespace else ns)
            elif p.name:
                out[ns + p.name] = prefix + str(p.pattern)

    walk(get_resolver().url_patterns, "", "")
    return out


def readme_grants() -> dict[str, set[str]]:
    """permission -> roles, from the README's table ('✓' grants the row; 'view' only its view_* permissions)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Roles and permissions", 1)[1].split("\n## ", 1)[0]
    grants: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(ROLES) + 1 or "." not in cells[0] or cells[0].startswith("permission"):
            continue
        perms, app = [], ""
        for item in re.sub(r"\([^)]*\)", "", cells[0]).split(","):
            item = item.strip()
            app, code = item.split(".", 1) if "." in item else (app, item)
            perms.append(f"{app}.{code}")
        for perm in perms:
            grants.setdefault(perm, set())
            for role, cell in zip(ROLES, cells[1:], strict=True):
                if cell == "✓" or (cell == "view" and perm.split(".")[1].startswith("view")):
                    grants[perm].add(role)
    return grants


def expected_roles(rule: str, grants: dict[str, set[str]]) -> set[str]:
    if rule in (OPEN, LOGIN):
        return {*ROLES, None}
    if "|" in rule:
        return set().union(*(grants[p] for p in rule.split("|")))
    return set.intersection(*(grants[p] for p in rule.split("&")))


def test_every_url_has_an_entry_and_every_permission_a_readme_row():
    names = url_names()
    missing = sorted(set(names) - set(ACCESS))
    assert not missing, f"URLs without an entry in ACCESS (and the README's table): {missing}"
    assert not sorted(set(ACCESS) - set(names)), "entries for URLs that no longer exist"
    grants = readme_grants()
    rules = {p for _, rule in ACCESS.values() if rule not in (OPEN, LOGIN) for p in re.split(r"[&|]", rule)}
    assert not sorted(rules - set(grants)), f"permissions missing from the README's table: {sorted(rules - set(grants))}"


def _fill(pattern: str, ids: dict[str, object]) -> str:
    url = pattern.replace("^", "").replace("$", "")
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(ids.get(m.group(1), 1)), url)
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids.get(m.group(1), 1)), url)
    return "/" + url.replace("\\", "")


@pytest.mark.django_db
def test_each_role_gets_what_the_readme_grants(make_user, history):
    names, grants = url_names(), readme_grants()
    study = history.studies.order_by("pk").first()
    alert = AlertFactory(study=study, patient=study.patient)
    obj = ReceivedObject.objects.order_by("pk").first()
    ids = {"pk": 1, "study_id": study.pk, "alert_id": alert.pk, "study_instance_uid": study.study_instance_uid,
           "patient_id": history.patient_id, "fmt": "svg", "rest": "Nothing", "action_id": 1}
    specific = {"patient_history": history.pk, "patient_sheet": history.pk, "study_detail": study.pk,
                "download_object": obj.pk if obj else 1, "triggers:alert_detail": alert.pk,
                "alert-detail": alert.pk, "triggers:rule_detail": alert.rule_id, "triggers:rule_edit": alert.rule_id,
                "triggerrule-detail": alert.rule_id, "fhir:patient": history.pk, "fhir:imaging-study": study.pk}
    users = {role: make_user(role) for role in ROLES}
    users[None] = make_user(None)
    assert {g.name for g in Group.objects.all()} >= set(ROLES)
    wrong = []
    for name, (method, rule) in sorted(ACCESS.items()):
        if rule == OPEN or name in ("logout",):
            continue
        url = _fill(names[name], {**ids, "pk": specific.get(name, 1)})
        allowed = expected_roles(rule, grants)
        for role, user in users.items():
            if method == "POST" and role in allowed:
                continue  # an empty POST by a granted role could act
            client = APIClient()
            if url.startswith(("/api/v1/", "/fhir/")):
                client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
            else:
                client.force_login(user)
            status = (client.get if method == "GET" else client.post)(url).status_code
            granted = role in allowed
            # a granted role may meet a 404 (no such object); a refused one may be told 404 (not yours, hidden)
            refused = status in (401, 403) if granted else status in (401, 403, 404)
            if refused == granted or status >= 500:
                wrong.append((name, role, status, "granted" if role in allowed else "not granted"))
    assert not wrong, "\n".join(map(str, wrong))


@pytest.mark.django_db
def test_metrics_from_elsewhere_need_view_metrics(make_user):
    for role, wanted in (("radiographer", 403), ("physicist", 200)):
        client = APIClient(REMOTE_ADDR="10.9.9.9")
        client.force_login(make_user(role))
        assert client.get("/metrics").status_code == wanted, role
    assert readme_grants()["registry.view_metrics"] == {"physicist", "admin"}
