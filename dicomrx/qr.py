"""The Query/Retrieve SCP (PS3.4 Annex C; IHE REM): C-FIND, C-MOVE and C-GET of the stored dose objects.

The information model is the registry's: every recorded dose report whose stored object is a whole dose SR (image
headers kept without their pixels are never served) is one instance, under its study and registry patient.  Patient
and study attributes come from the registry (so a merged patient answers under the surviving ID); series and
instance attributes from the stored object's top level.  With pseudonymisation on, the Patient ID is the pseudonym,
name and birth date stay empty, and retrieved objects carry the pseudonym instead of the patient's identifiers
(PS3.15 E.1 in part: the patient module only; staff names in the content tree are kept).

Matching (PS3.4 C.2.2.2): single value, wildcard (``*``, ``?``), list of UIDs, date range (``a-b``, ``-b``, ``a-``),
universal (empty).  Matching is case-sensitive except for the Person Name attributes (C.2.2.2.1 leaves that to the
SCP; the conformance statement says so).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from django.conf import settings
from django.db import close_old_connections
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pynetdicom import build_context, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from dosereg.registry.models import DoseReport
from dosereg.registry.services.pseudonyms import patient_pseudonym, pseudonym_enabled

log = logging.getLogger("dicomrx.qr")

PATIENT_ROOT = {PatientRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelMove,
                PatientRootQueryRetrieveInformationModelGet}
QR_SOP_CLASSES = (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind,
                  PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove,
                  PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelGet)

# DIMSE statuses (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4)
PENDING = 0xFF00
SUCCESS = 0x0000
CANCEL = 0xFE00
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
MOVE_DESTINATION_UNKNOWN = 0xA801

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
# The attributes each level answers (besides the levels above it), PS3.4 C.6.1.1 / C.6.2.1.
LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientID", "PatientName", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances"),
    "STUDY": ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
              "ReferringPhysicianName", "ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances"),
    "SERIES": ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "ContentDate", "ContentTime"),
}
UNIQUE_KEY = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
              "IMAGE": "SOPInstanceUID"}
_PERSON_NAMES = {"PatientName", "ReferringPhysicianName"}
_DATES = {"PatientBirthDate", "StudyDate", "ContentDate"}
_TIMES = {"StudyTime", "ContentTime"}
_COUNTS = {"NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances", "NumberOfStudyRelatedSeries",
           "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances"}
_DERIVED = _COUNTS | {"ModalitiesInStudy", "SOPClassesInStudy"}
_CONTENT_ITEMS = 0x0040A000  # the top level ends before the SR content (PS3.3 C.17.3)
# the patient's identifying attributes a pseudonymised site never sends (PS3.15 Table E.1-1, patient module)
_PATIENT_IDENTIFIERS = ("PatientBirthDate", "PatientBirthTime", "OtherPatientIDs", "OtherPatientIDsSequence",
                        "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
                        "MedicalRecordLocator", "IssuerOfPatientID", "EthnicGroup", "PatientComments")


class QueryError(Exception):
    """The identifier cannot be processed; ``status`` is the DIMSE status to answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


# --- matching (pure) -------------------------------------------------------------------------------------------------
def _wildcard(value: str, pattern: str, fold: bool) -> bool:
    if fold:
        value, pattern = value.upper(), pattern.upper()
    translated = pattern.replace("[", "[[]")  # '[' is a literal in DICOM wildcards
    return fnmatch.fnmatchcase(value, translated)


def _in_range(value: str, pattern: str) -> bool:
    low, _, high = pattern.partition("-")
    if not value:
        return False
    return (not low.strip() or value >= low.strip()) and (not high.strip() or value <= high.strip())


def matches(keyword: str, value: str, pattern: str) -> bool:
    """Does ``value`` match the query ``pattern`` for attribute ``keyword`` (PS3.4 C.2.2.2)?"""
    pattern = pattern.strip()
    if pattern in ("", "*"):
        return True
    fold = keyword in _PERSON_NAMES
    if (keyword in _DATES or keyword in _TIMES) and "-" in pattern:
        return _in_range(value, pattern)
    if "\\" in pattern:  # a list of values (UIDs, codes): any one
        return any(matches(keyword, value, p) for p in pattern.split("\\") if p)
    if "*" in pattern or "?" in pattern:
        return _wildcard(value, pattern, fold)
    if keyword in _TIMES:  # a time matches at the precision given: 1015 matches 101530
        return value.startswith(pattern.split(".")[0]) if value else False
    return value.upper() == pattern.upper() if fold else value == pattern


# --- the instances -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    """One stored dose object with the attributes of its four levels."""

    path: Path
    patient: dict[str, str]
    study: dict[str, str]
    series: dict[str, str]
    image: dict[str, str]
    patient_pk: int = 0
    pseudonym: bool = False

    def value(self, level: str, keyword: str) -> str:
        return getattr(self, level.lower()).get(keyword, "")


_HEADER_KEYS = ("PatientName", "StudyDate", "StudyTime", "StudyID", "ReferringPhysicianName", "SeriesInstanceUID",
                "Modality", "SeriesNumber", "SeriesDescription", "InstanceNumber", "ContentDate", "ContentTime")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()


@dataclass
class _HeaderCache:
    """The query attributes of stored objects' top levels by (path, mtime): the files never change once stored.
    Only the few strings a query needs are kept (a bounded cache: cleared when it holds 50 000 objects)."""

    entries: dict[tuple[str, float], dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, path: Path) -> dict[str, str] | None:
        try:
            key = (str(path), path.stat().st_mtime)
        except OSError:
            return None
        with self.lock:
            if key in self.entries:
                return self.entries[key]
        try:
            with open(path, "rb") as fp:
                ds = read_partial(fp, stop_when=lambda tag, vr, length: tag >= _CONTENT_ITEMS)
            header = {keyword: _text(ds, keyword) for keyword in _HEADER_KEYS}
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on a damaged file: skip the object
            log.warning("stored object %s not readable for query/retrieve: %s", path, type(exc).__name__)
            return None
        with self.lock:
            if len(self.entries) >= 50000:
                self.entries.clear()
            self.entries[key] = header
        return header


_headers = _HeaderCache()


def _instance(report: DoseReport) -> Instance | None:
    received = report.received_object
    path = Path(received.file_path) if received.file_path else None
    header = _headers.get(path) if path else None
    if header is None:
        return None
    study, patient = report.study, report.study.patient
    pseudo = patient.pseudonymised or pseudonym_enabled()
    return Instance(
        path=path, patient_pk=patient.pk, pseudonym=pseudo,
        patient={"PatientID": patient.patient_id, "IssuerOfPatientID": "" if pseudo else patient.issuer,
                 "PatientName": "" if pseudo else (patient.name or header["PatientName"]),
                 "PatientBirthDate": "" if pseudo or not patient.birth_date else f"{patient.birth_date:%Y%m%d}",
                 "PatientSex": patient.sex or ""},
        study={"StudyInstanceUID": study.study_instance_uid,
               "StudyDate": f"{study.study_date:%Y%m%d}" if study.study_date else header["StudyDate"],
               "StudyTime": header["StudyTime"], "AccessionNumber": study.accession_number,
               "StudyID": header["StudyID"], "StudyDescription": study.study_description,
               "ReferringPhysicianName": "" if pseudo else header["ReferringPhysicianName"]},
        series={"SeriesInstanceUID": header["SeriesInstanceUID"], "Modality": header["Modality"],
                "SeriesNumber": header["SeriesNumber"], "SeriesDescription": header["SeriesDescription"]},
        image={"SOPInstanceUID": report.sop_instance_uid, "SOPClassUID": report.sop_class_uid,
               "InstanceNumber": header["InstanceNumber"], "ContentDate": header["ContentDate"],
               "ContentTime": header["ContentTime"]},
    )


def _single(identifier: Dataset, keyword: str) -> list[str]:
    """The values of a list-or-single UID key without wildcards, for narrowing the database query; [] for any."""
    value = _text(identifier, keyword)
    if not value or "*" in value or "?" in value:
        return []
    return [v for v in value.split("\\") if v]


def _date_range(pattern: str) -> tuple[dt.date, dt.date] | None:
    """A Study Date key as a database range (single date or range); None for anything else (matched later)."""
    low, dash, high = pattern.strip().partition("-")
    try:
        first = dt.datetime.strptime(low.strip(), "%Y%m%d").date() if low.strip() else dt.date.min
        last = dt.datetime.strptime(high.strip(), "%Y%m%d").date() if high.strip() else dt.date.max
    except ValueError:
        return None
    if not dash:
        last = first
    return (first, last) if low.strip() or high.strip() else None


def _patient_ids(values: list[str], identifier: Dataset) -> list[str]:
    """With pseudonymisation on, a caller may ask by the hospital's Patient ID: hashed with the same key."""
    if not values or not pseudonym_enabled():
        return values
    issuer = _text(identifier, "IssuerOfPatientID")
    return values + [patient_pseudonym(v, issuer) for v in values]


def instances(identifier: Dataset, sop_classes) -> list[Instance]:
    """The stored dose objects of ``sop_classes`` the identifier's unique keys can select (narrowed in the
    database)."""
    reports = (DoseReport.objects.select_related("received_object", "study__patient")
               .filter(sop_class_uid__in=list(sop_classes)).order_by("study_id", "pk"))
    if uids := _single(identifier, "StudyInstanceUID"):
        reports = reports.filter(study__study_instance_uid__in=uids)
    if uids := _single(identifier, "SOPInstanceUID"):
        reports = reports.filter(sop_instance_uid__in=uids)
    if ids := _patient_ids(_single(identifier, "PatientID"), identifier):
        reports = reports.filter(study__patient__patient_id__in=ids)
    if numbers := _single(identifier, "AccessionNumber"):
        reports = reports.filter(study__accession_number__in=numbers)
    if dates := _date_range(_text(identifier, "StudyDate")):
        reports = reports.filter(study__study_date__range=dates)
    return [inst for inst in map(_instance, reports) if inst is not None]


def query_level(identifier: Dataset, model: str) -> str:
    level = _text(identifier, "QueryRetrieveLevel").upper()
    if level not in LEVELS:
        raise QueryError(IDENTIFIER_DOES_NOT_MATCH, f"Query/Retrieve Level {level or '(none)'} is not valid")
    if level == "PATIENT" and model not in PATIENT_ROOT:
        raise QueryError(IDENTIFIER_DOES_NOT_MATCH, "PATIENT level is not in the Study Root model")
    return level


def _levels_to(level: str) -> tuple[str, ...]:
    return LEVELS[: LEVELS.index(level) + 1]


def select(identifier: Dataset, level: str, sop_classes) -> list[Instance]:
    """The instances matching every non-derived key given at ``level`` and above."""
    if "PatientID" in identifier and pseudonym_enabled():
        ids = _patient_ids(_single(identifier, "PatientID"), identifier)
    else:
        ids = []
    keys = [(lv, kw, _text(identifier, kw)) for lv in _levels_to(level) for kw in LEVEL_KEYS[lv]
            if kw in identifier and kw not in _DERIVED]
    out = []
    for inst in instances(identifier, sop_classes):
        ok = True
        for lv, kw, pattern in keys:
            if kw == "PatientID" and ids:
                ok = inst.patient["PatientID"] in ids
            else:
                ok = matches(kw, inst.value(lv, kw), pattern)
            if not ok:
                break
        if ok:
            out.append(inst)
    return out


def _derived(keyword: str, group: list[Instance]) -> str:
    if keyword == "ModalitiesInStudy":
        return "\\".join(sorted({i.series["Modality"] for i in group if i.series["Modality"]}))
    if keyword == "SOPClassesInStudy":
        return "\\".join(sorted({i.image["SOPClassUID"] for i in group}))
    if keyword in ("NumberOfPatientRelatedStudies",):
        return str(len({i.study["StudyInstanceUID"] for i in group}))
    if keyword == "NumberOfStudyRelatedSeries":
        return str(len({i.series["SeriesInstanceUID"] for i in group}))
    return str(len(group))  # instances


def find_responses(identifier: Dataset, model: str, sop_classes) -> list[Dataset]:
    """One response identifier per matching entity at the query level (PS3.4 C.4.1.3.1)."""
    level = query_level(identifier, model)
    groups: dict[str, list[Instance]] = {}
    for inst in select(identifier, level, sop_classes):
        key = "|".join(inst.value(lv, UNIQUE_KEY[lv]) for lv in _levels_to(level))
        groups.setdefault(key, []).append(inst)
    wanted = {m for m in _text(identifier, "ModalitiesInStudy").split("\\") if m and m != "*"}
    out = []
    for group in groups.values():
        if wanted and level != "PATIENT" and not wanted & {i.series["Modality"] for i in group}:
            continue  # Modalities in Study matches when any series' modality is asked for (C.6.2.1.2)
        first = group[0]
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        for lv in _levels_to(level):
            for kw in LEVEL_KEYS[lv]:
                if kw in identifier or kw == UNIQUE_KEY[lv]:
                    setattr(ds, kw, _derived(kw, group) if kw in _DERIVED else first.value(lv, kw))
        ds.SpecificCharacterSet = "ISO_IR 192"  # names and descriptions as the registry holds them (UTF-8)
        ds.RetrieveAETitle = settings.DICOM_AE_TITLE
        out.append(ds)
    return out


# --- retrieve ----------------------------------------------------------------------------------------------------
def load_for_retrieve(inst: Instance) -> Dataset:
    """The stored object as sent: with pseudonymisation on, the pseudonym in place of the patient's identifiers."""
    ds = pydicom.dcmread(inst.path)
    ds.PatientID = inst.patient["PatientID"]  # the registry's patient: the surviving ID after a merge
    if inst.pseudonym:
        ds.PatientName = ""
        for keyword in _PATIENT_IDENTIFIERS:
            if keyword in ds:
                delattr(ds, keyword)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "DoseReg keyed pseudonym (HMAC-SHA-256) of the Patient ID"
    return ds


def retrieve_set(identifier: Dataset, model: str, sop_classes) -> list[Instance]:
    level = query_level(identifier, model)
    if not _text(identifier, UNIQUE_KEY[level]):
        raise QueryError(IDENTIFIER_DOES_NOT_MATCH, f"{UNIQUE_KEY[level]} is required at the {level} level")
    return select(identifier, level, sop_classes)


class QRHandlers:
    """The pynetdicom handlers of EVT_C_FIND, EVT_C_MOVE and EVT_C_GET over the stored objects of
    ``sop_classes`` (the listener's dose SR classes), sent in ``syntaxes``."""

    def __init__(self, sop_classes, syntaxes, destinations: dict[str, tuple[str, int]] | None = None):
        self.sop_classes = tuple(sop_classes)
        self.syntaxes = list(syntaxes)
        self.destinations = destinations

    def _contexts(self, items: list[Instance]) -> list:
        """Presentation contexts for the store sub-operations: each SOP class to send (at least one)."""
        classes = sorted({i.image["SOPClassUID"] for i in items}) or [self.sop_classes[0]]
        return [build_context(sop_class, self.syntaxes) for sop_class in classes]

    def add_contexts(self, ae) -> None:
        """The six Q/R models, and the dose SR storage classes with the SCP role a C-GET requestor proposes."""
        for sop_class in QR_SOP_CLASSES:
            ae.add_supported_context(sop_class)
        for sop_class in self.sop_classes:
            ae.add_supported_context(sop_class, self.syntaxes, scu_role=True, scp_role=True)

    def handlers(self) -> list:
        return [(evt.EVT_C_FIND, self.on_find), (evt.EVT_C_MOVE, self.on_move), (evt.EVT_C_GET, self.on_get)]

    def _destinations(self) -> dict[str, tuple[str, int]]:
        return settings.QR_DESTINATIONS if self.destinations is None else self.destinations

    def on_find(self, event) -> Iterator[tuple[int, Dataset | None]]:
        close_old_connections()
        model = str(event.request.AffectedSOPClassUID)
        try:
            responses = find_responses(event.identifier, model, self.sop_classes)
        except QueryError as exc:
            log.warning("C-FIND refused 0x%04X: %s", exc.status, exc)
            yield _failure(exc.status, str(exc)), None
            return
        log.info("C-FIND from %s: %d match(es)", event.assoc.requestor.ae_title.strip(), len(responses))
        for ds in responses:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, ds

    def on_move(self, event) -> Iterator:
        close_old_connections()
        destination = str(event.move_destination).strip()
        known = self._destinations()
        if destination not in known:
            log.warning("C-MOVE to unknown destination %r (configure DOSEREG_QR_DESTINATIONS)", destination)
            yield None, None
            return
        try:
            items = retrieve_set(event.identifier, str(event.request.AffectedSOPClassUID), self.sop_classes)
        except QueryError as exc:
            log.warning("C-MOVE refused 0x%04X: %s", exc.status, exc)
            yield (*known[destination], {"contexts": self._contexts([])})
            yield 1
            yield _failure(exc.status, str(exc)), None
            return
        host, port = known[destination]
        yield host, port, {"contexts": self._contexts(items)}
        yield len(items)
        yield from self._send(event, items)

    def on_get(self, event) -> Iterator:
        close_old_connections()
        try:
            items = retrieve_set(event.identifier, str(event.request.AffectedSOPClassUID), self.sop_classes)
        except QueryError as exc:
            log.warning("C-GET refused 0x%04X: %s", exc.status, exc)
            yield 1
            yield _failure(exc.status, str(exc)), None
            return
        yield len(items)
        yield from self._send(event, items)

    @staticmethod
    def _send(event, items: list[Instance]) -> Iterator:
        for inst in items:
            if event.is_cancelled:
                yield CANCEL, None
                return
            try:
                ds = load_for_retrieve(inst)
            except Exception as exc:  # noqa: BLE001 - a file gone or damaged since the query: one failed sub-op
                log.warning("retrieve: %s not readable: %s", inst.path, type(exc).__name__)
                yield UNABLE_TO_PROCESS, None
                continue
            yield PENDING, ds


def _failure(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds
