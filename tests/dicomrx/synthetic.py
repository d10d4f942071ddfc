"""Synthetic dose SRs built with pydicom, for tests that must not depend on ../shared/rdsr.

    build_ct_rdsr(study_uid=..., events=[{"ctdivol": 5.3, "dlp": 251.2}, ...]) -> bytes
    build_projection_rdsr(study_uid=..., events=[{"kap_gym2": 1e-4, "ka_r_gy": 0.002, "event_type": "fluoroscopy"}])
    build_rrdsr(activity_mbq=394)

Each returns the encoded file (bytes); pass ``as_dataset=True`` for the pydicom Dataset.  ``snomed="SCT"`` writes
SNOMED CT codes, ``snomed="SRT"`` the legacy SNOMED RT codes most systems still send.  Unit codes can be overridden
per event (``dlp_unit``, ``kap_unit``...) to test vendor spellings and unknown units.
"""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
RRDSR = "1.2.840.10008.5.1.4.1.1.88.68"

# (SRT, SCT) pairs used below (PS3.16 SNOMED mapping)
_SNOMED = {
    "has_intent": ("G-C0E8", "363703001", "Has Intent"),
    "diagnostic": ("R-408C3", "261004008", "Diagnostic Intent"),
    "ct": ("P5-08000", "77477000", "Computed Tomography X-Ray"),
    "spiral": ("P5-08001", "116152004", "Spiral Acquisition"),
    "fluoroscopy": ("P5-06000", "44491008", "Fluoroscopy"),
    "abdomen": ("T-D4000", "113345001", "Abdomen"),
    "yes": ("R-0038D", "373066001", "Yes"),
    "no": ("R-00339", "373067005", "No"),
    "laterality": ("G-C171", "272741003", "Laterality"),
    "right_breast": ("T-04020", "73056007", "Right breast"),
    "breast": ("T-04000", "76752008", "Breast"),
    "right": ("G-A100", "24028007", "Right"),
    "left": ("G-A101", "7771000", "Left"),
    "both": ("G-A102", "51440002", "Right and left"),
    "left_breast": ("T-04030", "80248007", "Left breast"),
    "mammography": ("P5-40010", "71651007", "Mammography"),
    "aluminum": ("C-120F9", "12503006", "Aluminum"),
    "copper": ("C-127F9", "66925006", "Copper"),
    "agent": ("F-61FDB", "349358000", "Radiopharmaceutical agent"),
    "fdg": ("C-B1031", "35321007", "Fluorodeoxyglucose F^18^"),
    "radionuclide": ("C-10072", "89457008", "Radionuclide"),
    "f18": ("C-111A1", "77004003", "^18^Fluorine"),
    "measurement_method": ("G-C036", "370129005", "Measurement Method"),
}
_DCM_EVENT_TYPES = {"stationary": "113611", "stepping": "113612", "rotational": "113613"}
_CT_TYPES = {"sequenced": ("DCM", "113804"), "constant_angle": ("DCM", "113805"), "stationary": ("DCM", "113806"),
             "free": ("DCM", "113807")}


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _sn(name: str, snomed: str) -> Dataset:
    srt, sct, meaning = _SNOMED[name]
    return code(sct if snomed == "SCT" else srt, snomed, meaning)


def item(vt: str, concept: Dataset, rel: str = "CONTAINS", children: list[Dataset] | None = None) -> Dataset:
    ds = Dataset()
    ds.RelationshipType = rel
    ds.ValueType = vt
    ds.ConceptNameCodeSequence = Sequence([concept])
    if vt == "CONTAINER":
        ds.ContinuityOfContent = "SEPARATE"
    if children:
        ds.ContentSequence = Sequence(children)
    return ds


def num(concept: Dataset, value: Any, unit: str | None, rel: str = "CONTAINS", scheme: str = "UCUM") -> Dataset:
    ds = item("NUM", concept, rel)
    if value is None:
        ds.MeasuredValueSequence = Sequence([])
        return ds
    mv = Dataset()
    mv.NumericValue = str(value)
    if unit is not None:
        mv.MeasurementUnitsCodeSequence = Sequence([code(unit, scheme, unit)])
    ds.MeasuredValueSequence = Sequence([mv])
    return ds


def code_item(concept: Dataset, value: Dataset, rel: str = "CONTAINS", children: list[Dataset] | None = None) -> Dataset:
    ds = item("CODE", concept, rel, children)
    ds.ConceptCodeSequence = Sequence([value])
    return ds


def text(concept: Dataset, value: str, vt: str = "TEXT", rel: str = "CONTAINS") -> Dataset:
    ds = item(vt, concept, rel)
    attr = {"TEXT": "TextValue", "UIDREF": "UID", "DATETIME": "DateTime", "PNAME": "PersonName"}[vt]
    setattr(ds, attr, value)
    return ds


def dcm(value: str, meaning: str = "") -> Dataset:
    return code(value, "DCM", meaning or value)


def _document(sop_class: str, study_uid: str, root: Dataset, children: list[Dataset], template: str,
              patient: dict | None, implicit: bool) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.ContentDate = "20240102"
    ds.ContentTime = "103000"
    ds.AccessionNumber = "ACC1"
    ds.Manufacturer = "DoseReg Test"
    ds.ManufacturerModelName = "Synthetic"
    patient = patient or {}
    ds.PatientName = patient.get("name", "Test^Patient")
    ds.PatientID = patient.get("id", "P1")
    ds.PatientBirthDate = patient.get("birth_date", "19600101")
    ds.PatientSex = patient.get("sex", "F")
    if "age" in patient:
        ds.PatientAge = patient["age"]
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([root])
    ds.ContinuityOfContent = "SEPARATE"
    tmpl = Dataset()
    tmpl.MappingResource = "DCMR"
    tmpl.TemplateIdentifier = template
    ds.ContentTemplateSequence = Sequence([tmpl])
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentSequence = Sequence(children)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    return ds


def to_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    implicit = ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    pydicom.dcmwrite(out, ds, implicit_vr=implicit, little_endian=True, enforce_file_format=True)
    return out.getvalue()


def _observer(study_uid: str) -> list[Dataset]:
    return [
        code_item(dcm("121005", "Observer Type"), dcm("121007", "Device"), rel="HAS OBS CONTEXT"),
        text(dcm("121012", "Device Observer UID"), "1.2.3.4.5", vt="UIDREF", rel="HAS OBS CONTEXT"),
        text(dcm("121014", "Device Observer Manufacturer"), "DoseReg Test", rel="HAS OBS CONTEXT"),
        code_item(dcm("113705", "Scope of Accumulation"), dcm("113014", "Study"), rel="HAS OBS CONTEXT",
                  children=[text(dcm("110180", "Study Instance UID"), study_uid, vt="UIDREF", rel="HAS PROPERTIES")]),
    ]


def build_ct_rdsr(study_uid: str | None = None, events: list[dict] | None = None, *, dlp_total: float | None = None,
                  snomed: str = "SRT", dlp_unit: str = "mGy.cm", implicit: bool = False, as_dataset: bool = False,
                  patient: dict | None = None) -> bytes | Dataset:
    """A TID 10011 CT Radiation Dose report.  Event keys: uid, ctdivol, dlp, kvp, ma, phantom ('head'/'body'),
    acquisition_type ('spiral', 'sequenced', 'constant_angle', ...), protocol, dlp_unit, dose_check (dict with
    dlp_alert, ctdivol_alert, dlp_forward, ctdivol_forward, reason, person), ssde (dict: value in mGy, method (CID 10023
    code), and any of lateral, ap, deff, dw as (value, unit): the patient size items under the SSDE item)."""
    study_uid = study_uid or generate_uid()
    events = events if events is not None else [{"ctdivol": 5.3, "dlp": 251.2}]
    children = [
        code_item(dcm("121058", "Procedure reported"), _sn("ct", snomed), rel="HAS CONCEPT MOD",
                  children=[code_item(_sn("has_intent", snomed), _sn("diagnostic", snomed), rel="HAS CONCEPT MOD")]),
        *_observer(study_uid),
    ]
    total = dlp_total if dlp_total is not None else sum(float(e.get("dlp") or 0) for e in events)
    children.append(item("CONTAINER", dcm("113811", "CT Accumulated Dose Data"), children=[
        num(dcm("113812", "Total Number of Irradiation Events"), len(events), "{events}"),
        num(dcm("113813", "CT Dose Length Product Total"), f"{total:.2f}", dlp_unit),
    ]))
    for ev in events:
        acq = ev.get("acquisition_type", "spiral")
        acq_code = _sn("spiral", snomed) if acq == "spiral" else dcm(_CT_TYPES[acq][1], acq)
        source = item("CONTAINER", dcm("113831", "CT X-Ray Source Parameters"), children=[
            text(dcm("113832", "Identification of the X-Ray Source"), "A"),
            num(dcm("113733", "KVP"), ev.get("kvp", 120), "kV"),
            num(dcm("113833", "Maximum X-Ray Tube Current"), ev.get("max_ma", 200), "mA"),
            num(dcm("113734", "X-Ray Tube Current"), ev.get("ma", 150), "mA"),
            num(dcm("113834", "Exposure Time per Rotation"), 0.5, "s"),
        ])
        params = item("CONTAINER", dcm("113822", "CT Acquisition Parameters"), children=[
            num(dcm("113824", "Exposure Time"), ev.get("exposure_time_s", 7.49), "s"),
            num(dcm("113825", "Scanning Length"), ev.get("scanning_length_mm", 487), "mm"),
            num(dcm("113826", "Nominal Single Collimation Width"), 0.5, "mm"),
            num(dcm("113827", "Nominal Total Collimation Width"), 40, "mm"),
            num(dcm("113828", "Pitch Factor"), 0.813, "{ratio}"),
            num(dcm("113823", "Number of X-Ray Sources"), 1, "{X-Ray sources}"),
            source,
        ])
        event_children = [
            text(dcm("125203", "Acquisition Protocol"), ev.get("protocol", "Abdomen")),
            code_item(dcm("123014", "Target Region"), _sn("abdomen", snomed)),
            code_item(dcm("113820", "CT Acquisition Type"), acq_code),
            text(dcm("113769", "Irradiation Event UID"), ev.get("uid") or generate_uid(), vt="UIDREF"),
            params,
        ]
        if ev.get("ctdivol") is not None or ev.get("dlp") is not None:
            phantom = {"head": dcm("113690", "IEC Head Dosimetry Phantom"),
                       "body": dcm("113691", "IEC Body Dosimetry Phantom")}[ev.get("phantom", "body")]
            dose_children = [
                num(dcm("113830", "Mean CTDIvol"), ev.get("ctdivol"), "mGy"),
                code_item(dcm("113835", "CTDIw Phantom Type"), phantom),
                num(dcm("113838", "DLP"), ev.get("dlp"), ev.get("dlp_unit", dlp_unit)),
            ]
            if ev.get("ssde"):
                dose_children.append(_ssde_item(ev["ssde"], snomed))
            check = ev.get("dose_check")
            if check:
                alert = [
                    code_item(dcm("113901", "DLP Alert Value Configured"),
                              _sn("yes" if check.get("dlp_alert") is not None else "no", snomed)),
                    code_item(dcm("113902", "CTDIvol Alert Value Configured"),
                              _sn("yes" if check.get("ctdivol_alert") is not None else "no", snomed)),
                ]
                if check.get("dlp_alert") is not None:
                    alert.append(num(dcm("113903", "DLP Alert Value"), check["dlp_alert"], dlp_unit))
                if check.get("ctdivol_alert") is not None:
                    alert.append(num(dcm("113904", "CTDIvol Alert Value"), check["ctdivol_alert"], "mGy"))
                if check.get("dlp_forward") is not None:
                    alert.append(num(dcm("113905", "Accumulated DLP Forward Estimate"), check["dlp_forward"], dlp_unit))
                if check.get("ctdivol_forward") is not None:
                    alert.append(num(dcm("113906", "Accumulated CTDIvol Forward Estimate"), check["ctdivol_forward"],
                                     "mGy"))
                if check.get("reason"):
                    alert.append(text(dcm("113907", "Reason for Proceeding"), check["reason"]))
                if check.get("person"):
                    alert.append(text(dcm("113870", "Person Name"), check["person"], vt="PNAME"))
                dose_children.append(item("CONTAINER", dcm("113900", "Dose Check Alert Details"), children=alert))
            event_children.append(item("CONTAINER", dcm("113829", "CT Dose"), children=dose_children))
        children.append(item("CONTAINER", dcm("113819", "CT Acquisition"), children=event_children))
    children.append(code_item(dcm("113854", "Source of Dose Information"), dcm("113856", "Automated Data Collection")))
    ds = _document(XRAY_RDSR, study_uid, dcm("113701", "X-Ray Radiation Dose Report"), children, "10011", patient,
                   implicit)
    return ds if as_dataset else to_bytes(ds)


# the patient size items under SSDE (TID 10013, CP-1525), INFERRED FROM the SSDE item
_SSDE_SIZE_ITEMS = {"lateral": ("113931", "Measured Lateral Dimension"), "ap": ("113932", "Measured AP Dimension"),
                    "deff": ("113933", "Derived Effective Diameter"), "dw": ("113980", "Water Equivalent Diameter")}


def _ssde_item(spec: dict, snomed: str) -> Dataset:
    """A Size Specific Dose Estimation item (DCM 113930) with its method and the patient size items of ``spec``."""
    children = [code_item(_sn("measurement_method", snomed), dcm(spec.get("method", "113936")), rel="HAS CONCEPT MOD")]
    for key, (value, meaning) in _SSDE_SIZE_ITEMS.items():
        if key in spec:
            size, unit = spec[key]
            children.append(num(dcm(value, meaning), size, unit, rel="INFERRED FROM"))
    ssde = num(dcm("113930", "Size Specific Dose Estimation"), spec.get("value", 10.0), "mGy")
    ssde.ContentSequence = Sequence(children)
    return ssde


def build_projection_rdsr(study_uid: str | None = None, events: list[dict] | None = None, *,
                          totals: dict | None = None, snomed: str = "SRT", plane: str = "single",
                          mammography: bool = False, agd_totals: dict | None = None, kap_unit: str = "Gy.m2",
                          implicit: bool = False, as_dataset: bool = False,
                          patient: dict | None = None) -> bytes | Dataset:
    """A TID 10001 Projection X-Ray report.  Event keys: uid, event_type ('fluoroscopy', 'stationary', ...),
    kap_gym2, ka_r_gy (None -> an empty measured value), kvp, filters [(material, min_mm, max_mm)], agd_mgy,
    laterality ('left'/'right': Anatomical structure Left/Right breast), target_laterality ('left'/'right'/'both':
    Target Region Breast with a Laterality modifier; laterality_concept (scheme, value) overrides its concept),
    exposure_uas, exposures_uas [one Exposure item per projection], projections_uas [one container per projection],
    exposure_unit, kap_unit.  totals: kap_gym2, ka_r_gy, fluoro_time_s, fluoro_kap_gym2.
    agd_totals: {'left': mGy, 'right': mGy}."""
    study_uid = study_uid or generate_uid()
    events = events if events is not None else [{"event_type": "fluoroscopy", "kap_gym2": 1e-4, "ka_r_gy": 0.002}]
    totals = totals if totals is not None else {
        "kap_gym2": sum(float(e.get("kap_gym2") or 0) for e in events),
        "ka_r_gy": sum(float(e.get("ka_r_gy") or 0) for e in events),
        "fluoro_time_s": 10.0 if any(e.get("event_type") == "fluoroscopy" for e in events) else 0.0,
    }
    plane_code = {"single": dcm("113622", "Single Plane"), "A": dcm("113620", "Plane A"),
                  "B": dcm("113621", "Plane B")}[plane]
    procedure = _sn("mammography", snomed) if mammography else dcm("113704", "Projection X-Ray")
    children = [
        code_item(dcm("121058", "Procedure reported"), procedure, rel="HAS CONCEPT MOD",
                  children=[code_item(_sn("has_intent", snomed), _sn("diagnostic", snomed), rel="HAS CONCEPT MOD")]),
        *_observer(study_uid),
    ]
    children.append(_projection_accumulated(plane_code, totals, agd_totals or {}, kap_unit, snomed))
    for ev in events:
        children.append(item("CONTAINER", dcm("113706", "Irradiation Event X-Ray Data"),
                             children=_projection_event_items(ev, plane_code, kap_unit, snomed)))
    children.append(code_item(dcm("113854", "Source of Dose Information"), dcm("113856", "Automated Data Collection")))
    ds = _document(XRAY_RDSR, study_uid, dcm("113701", "X-Ray Radiation Dose Report"), children, "10001", patient,
                   implicit)
    return ds if as_dataset else to_bytes(ds)


# TID 10002 Accumulated X-Ray Dose: totals key -> (concept, unit; None: the report's KAP unit)
_PROJECTION_TOTALS = (
    ("kap_gym2", dcm("113722", "Dose Area Product Total"), None),
    ("ka_r_gy", dcm("113725", "Dose (RP) Total"), "Gy"),
    ("fluoro_time_s", dcm("113730", "Total Fluoro Time"), "s"),
    ("fluoro_kap_gym2", dcm("113726", "Fluoro Dose Area Product Total"), None),
)


def _projection_accumulated(plane_code, totals: dict, agd_totals: dict, kap_unit: str, snomed: str) -> Dataset:
    acc = [code_item(dcm("113764", "Acquisition Plane"), plane_code, rel="HAS CONCEPT MOD")]
    acc += [num(concept, totals[key], unit or kap_unit) for key, concept, unit in _PROJECTION_TOTALS if key in totals]
    acc += [_agd_total(value, side, snomed) for side, value in agd_totals.items()]
    return item("CONTAINER", dcm("113702", "Accumulated X-Ray Dose Data"), children=acc)


def _projection_event_items(ev: dict, plane_code, kap_unit: str, snomed: str) -> list[Dataset]:
    """The content of one TID 10003 Irradiation Event X-Ray Data container (event keys: build_projection_rdsr)."""
    kind = ev.get("event_type", "fluoroscopy")
    etype = _sn("fluoroscopy", snomed) if kind == "fluoroscopy" else dcm(_DCM_EVENT_TYPES[kind], kind)
    event_children = [
        code_item(dcm("113764", "Acquisition Plane"), plane_code, rel="HAS CONCEPT MOD"),
        text(dcm("113769", "Irradiation Event UID"), ev.get("uid") or generate_uid(), vt="UIDREF"),
        text(dcm("111526", "DateTime Started"), ev.get("datetime", "20240102101600"), vt="DATETIME"),
        code_item(dcm("113721", "Irradiation Event Type"), etype),
        text(dcm("125203", "Acquisition Protocol"), ev.get("protocol", "Test protocol")),
    ]
    if "kap_gym2" in ev:
        event_children.append(num(dcm("122130", "Dose Area Product"), ev["kap_gym2"],
                                  ev.get("kap_unit", kap_unit)))
    if "ka_r_gy" in ev:
        event_children.append(num(dcm("113738", "Dose (RP)"), ev["ka_r_gy"], "Gy"))
    if "agd_mgy" in ev:
        event_children.append(num(dcm("111631", "Average Glandular Dose"), ev["agd_mgy"], "mGy"))
    if "laterality" in ev:
        breast = _sn("right_breast" if ev["laterality"] == "right" else "left_breast", snomed)
        event_children.append(code_item(code("91723000" if snomed == "SCT" else "T-D0005", snomed,
                                             "Anatomical structure"), breast))
    if "kvp" in ev:
        event_children.append(num(dcm("113733", "KVP"), ev["kvp"], "kV"))
    if "exposure_uas" in ev:
        event_children.append(num(dcm("113736", "Exposure"), ev["exposure_uas"], "uA.s"))
    for value in ev.get("exposures_uas", []):  # tomosynthesis: one Exposure item per projection
        event_children.append(num(dcm("113736", "Exposure"), value, ev.get("exposure_unit", "uA.s")))
    for index, value in enumerate(ev.get("projections_uas", []), 1):  # ... or one container per projection
        event_children.append(item("CONTAINER", code(f"P{index}", "99TEST", "Projection"), children=[
            num(dcm("113733", "KVP"), 30, "kV"), num(dcm("113736", "Exposure"), value, "uA.s")]))
    if "target_laterality" in ev:  # Target Region Breast, laterality as a HAS CONCEPT MOD modifier
        scheme, value = ev.get("laterality_concept", (None, None))
        concept = code(value, scheme, "Laterality") if value else \
            _sn("laterality", snomed)
        event_children.append(code_item(dcm("123014", "Target Region"), _sn("breast", snomed), children=[
            code_item(concept, _sn(ev["target_laterality"], snomed), rel="HAS CONCEPT MOD")]))
    for material, tmin, tmax in ev.get("filters", []):
        event_children.append(item("CONTAINER", dcm("113771", "X-Ray Filters"), children=[
            code_item(dcm("113772", "X-Ray Filter Type"), dcm("113653", "Flat filter")),
            code_item(dcm("113757", "X-Ray Filter Material"), _sn(material, snomed)),
            num(dcm("113758", "X-Ray Filter Thickness Minimum"), tmin, "mm"),
            num(dcm("113773", "X-Ray Filter Thickness Maximum"), tmax, "mm"),
        ]))
    return event_children


def add_predecessors(ds: Dataset, studies: list[tuple[str, list[tuple[str, list[str]]]]]) -> Dataset:
    """Predecessor Documents Sequence (0040,A360) of the SR Document General Module (PS3.3 C.17.2):
    [(study UID, [(series UID, [SOP Instance UIDs])])]."""
    items = []
    for study_uid, series in studies:
        study = Dataset()
        study.StudyInstanceUID = study_uid
        series_items = []
        for series_uid, sops in series:
            one = Dataset()
            one.SeriesInstanceUID = series_uid
            refs = []
            for sop in sops:
                ref = Dataset()
                ref.ReferencedSOPClassUID = ds.SOPClassUID
                ref.ReferencedSOPInstanceUID = sop
                refs.append(ref)
            one.ReferencedSOPSequence = Sequence(refs)
            series_items.append(one)
        study.ReferencedSeriesSequence = Sequence(series_items)
        items.append(study)
    ds.PredecessorDocumentsSequence = Sequence(items)
    return ds


def _agd_total(value: float, side: str, snomed: str) -> Dataset:
    ds = num(dcm("111637", "Accumulated Average Glandular Dose"), value, "mGy")
    breast = _sn("right_breast" if side == "right" else "left_breast", snomed)
    ds.ContentSequence = Sequence([code_item(_sn("laterality", snomed), breast, rel="HAS CONCEPT MOD")])
    return ds


def build_rrdsr(study_uid: str | None = None, *, activity_mbq: float = 394, effective_dose_msv: float | None = 7.5,
                snomed: str = "SRT", as_dataset: bool = False) -> bytes | Dataset:
    """A TID 10021 Radiopharmaceutical Radiation Dose report with one administration."""
    study_uid = study_uid or generate_uid()
    admin = [
        code_item(_sn("agent", snomed), _sn("fdg", snomed),
                  children=[code_item(_sn("radionuclide", snomed), _sn("f18", snomed), rel="HAS PROPERTIES")]),
        text(dcm("113503", "Radiopharmaceutical Administration Event UID"), generate_uid(), vt="UIDREF"),
        text(dcm("123003", "Radiopharmaceutical Start DateTime"), "20240102100000", vt="DATETIME"),
        num(dcm("113507", "Administered activity"), activity_mbq, "MBq"),
    ]
    if effective_dose_msv is not None:
        admin.append(num(dcm("113839", "Effective Dose"), effective_dose_msv, "mSv"))
    children = [
        item("CONTAINER", dcm("113502", "Radiopharmaceutical Administration"), children=admin),
        item("CONTAINER", dcm("121118", "Patient Characteristics"), children=[
            num(dcm("121033", "Subject Age"), 63, "a"),
            num(code("8302-2", "LN", "Patient Height"), 1.78, "m"),
            num(code("29463-7", "LN", "Patient Weight"), 110, "kg"),
        ]),
    ]
    ds = _document(RRDSR, study_uid, dcm("113500", "Radiopharmaceutical Radiation Dose Report"), children, "10021",
                   None, False)
    return ds if as_dataset else to_bytes(ds)
