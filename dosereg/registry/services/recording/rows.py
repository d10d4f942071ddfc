"""Rows from the parser's dataclasses: irradiation events, accumulated doses, dose checks.

Every quantity passes the border check of the catalogue (``dosereg.core.sanity.screen_value``) on its way into a
column: an invalid value (not finite, or a negative dose, time or activity) is not stored as a value — the value and
unit as sent stay in ``raw`` — and becomes a finding; an implausible one is stored and becomes a finding.  JSON
columns never receive NaN, infinities or NUL characters (PostgreSQL refuses them: NaN and infinities are not JSON,
and no text holds NUL).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import Any

from dosereg.core import dose_report as dr
from dosereg.core.json_text import text_encoder
from dosereg.core.quantities import QUANTITIES
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
from dosereg.registry.services.recording.bulk_sql import JSON_TEXTS
from dosereg.registry.services.recording.identity import aware, zone

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
    return json_with_text(value)[0]


# json.dumps(value, allow_nan=False), with its encoder made once
_STRICT_JSON = text_encoder(allow_nan=False)


def json_with_text(value) -> tuple[Any, str]:
    """(``value`` as :func:`safe_json` gives it, its text as a JSON column stores it: ``json.dumps``): the text that
    checks the value is the one written (``bulk_sql.insert_rows`` takes it from ``JSON_TEXTS``), not made twice."""
    try:
        text = _STRICT_JSON(value)
    except (TypeError, ValueError):
        value = jsonable(value)
        return value, json.dumps(value)
    if "\\u0000" in text:
        value = jsonable(value)
        return value, json.dumps(value)
    return value, text


def items_json_with_text(items: list, memo: dict[int, tuple[Any, str]]) -> tuple[Any, str]:
    """:func:`json_with_text` of a list whose items repeat across a report's events (the parser gives a content item
    it meets again as the same dict): each distinct item is serialised once per report, in ``memo`` (by identity),
    and the list's text joined as ``json.dumps`` writes it."""
    parts = []
    for item in items:
        known = memo.get(id(item))
        if known is None or known[0] is not item:
            try:
                text = _STRICT_JSON(item)
            except (TypeError, ValueError):
                return json_with_text(items)
            if "\\u0000" in text:
                return json_with_text(items)
            known = memo[id(item)] = (item, text)
        parts.append(known[1])
    return items, "[" + ", ".join(parts) + "]"


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


_FLOAT_MAX = sys.float_info.max


def _quiet_range(name: str) -> tuple[float, float]:
    """The closed range in which a float of quantity ``name`` passes ``screen_value`` without a finding (finite, not
    negative unless the quantity is signed, not above its plausible maximum): most values of a report, checked
    with two comparisons; anything else (NaN and infinities fail both) takes ``screen_value`` itself."""
    q = QUANTITIES.get(name)
    if q is None:
        return -_FLOAT_MAX, _FLOAT_MAX
    top = q.plausible_max if q.plausible_max is not None else _FLOAT_MAX
    return (-top if q.signed else 0.0), top


_QUIET_RANGES = {name: _quiet_range(name) for name in QUANTITIES}


def _text(value) -> str:
    """:func:`clean_text` without its work for the common case (plain ASCII text without NUL)."""
    if type(value) is str and value.isascii() and "\x00" not in value:
        return value
    return clean_text(value)


def _raw_of(q: dr.Quantity, memo: dict[int, tuple[dr.Quantity, list[str], str]]) -> tuple[dr.Quantity, list[str], str]:
    """(``q``, [value, unit] as sent for ``raw``, that pair's JSON text).  The parser gives a repeated item's
    quantity as the same object: its pair and text are made once per report (``memo``, by identity) and the pair is
    shared by the rows (read-only)."""
    known = memo.get(id(q))
    if known is None or known[0] is not q:
        pair = [_text(q.raw_value), _text(q.raw_unit)]
        known = memo[id(q)] = (q, pair, _STRICT_JSON(pair))
    return known


# a quantity name's text as a key of a JSON object (``"kvp": ``), made once per name
_KEY_TEXTS: dict[str, str] = {}


def _key_text(name: str) -> str:
    text = _KEY_TEXTS.get(name)
    if text is None:
        text = _KEY_TEXTS[name] = _STRICT_JSON(name) + ": "
    return text


# quantities with an event column of their own; the others go in attributes["quantities"]
EVENT_QUANTITY_COLUMNS = EVENT_COLUMNS - DERIVED_EVENT_COLUMNS


class ReportMemo:
    """What the rows of one report's events share: the zone of its naive date/times (``identity.zone``), and the
    texts of its repeated content items and quantities (the parser gives a repeated item as the same object), for
    their JSON columns and their digests (``versions.quantities_digest``)."""

    __slots__ = ("tz", "content", "raw", "digests")

    def __init__(self, offset: str) -> None:
        self.tz = zone(offset)
        self.content: dict[int, tuple[Any, str]] = {}
        self.raw: dict[int, tuple[dr.Quantity, list[str], str]] = {}
        self.digests: dict = {}


def event_row(ev: dr.IrradiationEventData, *, study: Study | None, rep: DoseReport, seq: int, memo: ReportMemo,
              fit: TextFitter, findings: list[Finding], digest: str | None = None):
    """The event's row; ``memo``: its report's (:class:`ReportMemo`); ``digest``: its ``event_digest`` when the
    caller has it already.  The JSON columns' texts are made here, once (``JSON_TEXTS``)."""
    region = ev.target_region
    attrs = dict(ev.attributes)
    get = attrs.get
    row = EventRow(
        study_id=study.pk if study is not None else None, report_id=rep.pk,
        irradiation_event_uid=fit(IrradiationEvent, "irradiation_event_uid", ev.irradiation_event_uid) or None,
        source_sop_instance_uid=rep.sop_instance_uid, sequence=seq,
        event_type=fit(IrradiationEvent, "event_type", ev.event_type), datetime=aware(ev.datetime, tz=memo.tz),
        protocol=fit(IrradiationEvent, "protocol", ev.protocol),
        target_region=fit(IrradiationEvent, "target_region", region.meaning if region else ""),
        target_region_code=fit(IrradiationEvent, "target_region_code", region.value if region else ""),
        plane=ev.plane or "", is_localizer=ev.is_localizer,
        exposure_key=fit(IrradiationEvent, "exposure_key", ev.exposure_key),
        value_digest=digest if digest is not None else event_digest(ev, memo.digests),
        # fit(None) is "": said without the call for what most events do not carry
        ctdi_phantom=fit(IrradiationEvent, "ctdi_phantom", get("ctdi_phantom")) if "ctdi_phantom" in attrs else "",
        laterality=fit(IrradiationEvent, "laterality", get("laterality")) if "laterality" in attrs else "",
        view=fit(IrradiationEvent, "view", get("view")) if "view" in attrs else "")
    values = row.__dict__
    raw, raw_texts = {}, []
    quiet, raw_memo, keys = _QUIET_RANGES, memo.raw, _KEY_TEXTS
    for name, q in ev.quantities.items():
        value = q.value
        low, high = quiet.get(name) or _quiet_range(name)
        if type(value) is not float or not low <= value <= high:
            value = _screened(name, q, f"event {seq + 1}", findings)
        if name in EVENT_QUANTITY_COLUMNS:
            values[name] = value
        else:
            attrs.setdefault("quantities", {})[name] = value
        known = raw_memo.get(id(q))  # _raw_of and _key_text, said here: calls per quantity of every event
        if known is None or known[0] is not q:
            known = _raw_of(q, raw_memo)
        raw[name] = known[1]
        raw_texts.append((keys.get(name) or _key_text(name)) + known[2])
    if ev.event_type_code is not None:
        attrs["event_type_code"] = code_list(ev.event_type_code)
    if region is not None:
        attrs["target_region_code"] = code_list(region)
    # raw's text joined from its pairs' texts as json.dumps writes an object (its texts are clean: see _text)
    values["raw"] = raw
    texts = {"raw": (raw, "{" + ", ".join(raw_texts) + "}")}
    value, text = json_with_text(attrs if _plain(attrs) else jsonable(attrs))
    values["attributes"] = value
    texts["attributes"] = (value, text)
    content = ev.content
    value, text = items_json_with_text(content, memo.content) if type(content) is list else json_with_text(content)
    values["content"] = value
    texts["content"] = (value, text)
    values[JSON_TEXTS] = texts
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
