"""Rows from the parser's dataclasses: irradiation events, accumulated doses, dose checks.

Every quantity passes the border check of the catalogue (``dosereg.core.sanity.screen_value``) on its way into a
column: an invalid value (not finite, or a negative dose, time or activity) is not stored as a value — the value and
unit as sent stay in ``raw`` — and becomes a finding; an implausible one is stored and becomes a finding.  JSON
columns never receive NaN, infinities or NUL characters (PostgreSQL's jsonb refuses them).
"""

from __future__ import annotations

import datetime as dt
import json
import math

from dosereg.core import dose_report as dr
from dosereg.core.sanity import Finding, clean_text, is_storable, screen_value
from dosereg.core.versions import event_digest
from dosereg.registry.fields import TextFitter
from dosereg.registry.models import (
    AccumulatedDose,
    DoseCheckOverride,
    DoseReport,
    IrradiationEvent,
    ReceivedObject,
    Study,
)
from dosereg.registry.services.recording.identity import aware

EVENT_COLUMNS = frozenset(f.name for f in IrradiationEvent._meta.concrete_fields)
ACCUMULATED_COLUMNS = frozenset(f.name for f in AccumulatedDose._meta.concrete_fields) - {
    "id", "report", "plane", "raw", "attributes"}
DERIVED_EVENT_COLUMNS = frozenset({"effective_dose_estimate_msv"})  # computed by DoseReg, never taken from input


def _column_defaults(model) -> tuple[dict, dict]:
    """(plain defaults, callables for mutable ones) of the model's columns, by attname; the primary key None."""
    plain, factories = {}, {}
    for f in model._meta.concrete_fields:
        if f.primary_key:
            plain[f.attname] = None
        elif f.has_default() and callable(f.default):
            factories[f.attname] = f.default
        else:
            plain[f.attname] = f.get_default()
    return plain, factories


def row_class(model) -> type:
    """A class for rows of ``model`` on their way to a multi-row insert (``bulk_sql.insert_rows``): the model's
    columns as plain attributes by attname (``study_id``, not ``study``), with its defaults.  Not a model instance:
    ``Model.__init__`` was a sixth of recording a 316-event report, and a tenth of a bulk batch."""
    defaults, factories = _column_defaults(model)
    pk_name = model._meta.pk.attname

    def __init__(self, **values):
        state = self.__dict__
        state.update(defaults)
        for name, make in factories.items():
            state[name] = make()
        state.update(values)

    return type(f"{model.__name__}Row", (), {
        "__init__": __init__, "pk": property(lambda self: self.__dict__[pk_name]),
        "__doc__": f"A {model.__name__} row by attname, not a model instance (see ``row_class``)."})


EventRow = row_class(IrradiationEvent)
StudyRow = row_class(Study)
ReportRow = row_class(DoseReport)
ReceivedRow = row_class(ReceivedObject)


def jsonable(value):
    """Any parser value as JSON a database accepts: codes as lists, dates as ISO text, non-finite numbers as None,
    text without NUL characters."""
    if isinstance(value, dict):
        return {clean_text(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int)) or value is None:
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (dt.date, dt.time, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dr.Code):
        return [value.scheme, value.value, value.meaning]
    return clean_text(value)


def safe_json(value):
    """``value`` unchanged when it is already clean JSON (the fast path for reports with hundreds of events), else
    :func:`jsonable` of it."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return jsonable(value)
    return jsonable(value) if "\\u0000" in text else value


def code_list(code: dr.Code | None):
    return [code.scheme, code.value, code.meaning] if code else None


def _screened(name: str, q: dr.Quantity, where: str, findings: list[Finding]) -> float | None:
    """The value to store for quantity ``name`` (None when invalid), recording any finding."""
    finding = screen_value(name, q.value, where=where)
    if finding is not None:
        findings.append(Finding(finding.flag, finding.quantity, finding.reason,
                                {**finding.detail, "sent": [clean_text(q.raw_value), clean_text(q.raw_unit)]}))
    if not is_storable(finding):
        return None
    return q.value


def event_row(ev: dr.IrradiationEventData, *, study: Study | None, rep: DoseReport, seq: int, offset: str,
              fit: TextFitter, findings: list[Finding], digest: str | None = None):
    """The event's row; ``digest``: its ``event_digest`` when the caller has it already."""
    region = ev.target_region
    row = EventRow(
        study_id=study.pk if study is not None else None, report_id=rep.pk, irradiation_event_uid=fit(IrradiationEvent, "irradiation_event_uid",
                                                           ev.irradiation_event_uid) or None,
        source_sop_instance_uid=rep.sop_instance_uid, sequence=seq,
        event_type=fit(IrradiationEvent, "event_type", ev.event_type), datetime=aware(ev.datetime, offset),
        protocol=fit(IrradiationEvent, "protocol", ev.protocol),
        target_region=fit(IrradiationEvent, "target_region", region.meaning if region else ""),
        target_region_code=fit(IrradiationEvent, "target_region_code", region.value if region else ""),
        plane=ev.plane or "", is_localizer=ev.is_localizer,
        exposure_key=fit(IrradiationEvent, "exposure_key", ev.exposure_key), value_digest=digest if digest is not None else event_digest(ev))
    attrs = dict(ev.attributes)
    row.ctdi_phantom = fit(IrradiationEvent, "ctdi_phantom", attrs.get("ctdi_phantom"))
    row.laterality = fit(IrradiationEvent, "laterality", attrs.get("laterality"))
    row.view = fit(IrradiationEvent, "view", attrs.get("view"))
    raw = {}
    where = f"event {seq + 1}"
    for name, q in ev.quantities.items():
        value = _screened(name, q, where, findings)
        if name in EVENT_COLUMNS and name not in DERIVED_EVENT_COLUMNS:
            setattr(row, name, value)
        else:
            attrs.setdefault("quantities", {})[name] = value
        raw[name] = [clean_text(q.raw_value), clean_text(q.raw_unit)]
    if ev.event_type_code is not None:
        attrs["event_type_code"] = code_list(ev.event_type_code)
    if region is not None:
        attrs["target_region_code"] = code_list(region)
    row.raw = raw
    row.attributes = safe_json(jsonable(attrs) if not _plain(attrs) else attrs)
    row.content = safe_json(ev.content)
    return row


def _plain(d: dict) -> bool:
    plain = (str, int, float, bool, list, dict, type(None))
    return all(isinstance(v, plain) for v in d.values())


def accumulated_row(acc: dr.AccumulatedDoseData, rep: DoseReport | None,
                    findings: list[Finding]) -> AccumulatedDose:
    row = AccumulatedDose(report=rep, plane=acc.plane or "")
    raw, attrs = {}, dict(acc.attributes)
    where = f"accumulated dose{' plane ' + acc.plane if acc.plane else ''}"
    for name, q in acc.quantities.items():
        value = _screened(name, q, where, findings)
        if name in ACCUMULATED_COLUMNS:
            setattr(row, name, value)
        else:
            attrs.setdefault("quantities", {})[name] = value
        raw[name] = [clean_text(q.raw_value), clean_text(q.raw_unit)]
    row.raw = raw
    row.attributes = jsonable(attrs)
    return row


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def dose_check_row(chk: dr.DoseCheckData, rep, fit: TextFitter) -> DoseCheckOverride:
    return DoseCheckOverride(
        report_id=rep.pk, irradiation_event_uid=fit(DoseCheckOverride, "irradiation_event_uid", chk.irradiation_event_uid),
        kind=fit(DoseCheckOverride, "kind", chk.kind), dlp_configured=chk.dlp_configured,
        ctdivol_configured=chk.ctdivol_configured, dlp_value_mgycm=_finite(chk.dlp_value_mgycm),
        ctdivol_value_mgy=_finite(chk.ctdivol_value_mgy),
        dlp_forward_estimate_mgycm=_finite(chk.dlp_forward_estimate_mgycm),
        ctdivol_forward_estimate_mgy=_finite(chk.ctdivol_forward_estimate_mgy),
        reason_for_proceeding=clean_text(chk.reason_for_proceeding),
        person_name=fit(DoseCheckOverride, "person_name", chk.person_name))
