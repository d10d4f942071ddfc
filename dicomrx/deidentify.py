"""De-identification of a stored original (pure: a pydicom Dataset in, the same Dataset changed in place and out).

DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile (113100) with the options
  Retain UIDs (113110)                      - versions, corrections and re-sends still match by UID
  Retain Device Identity (113109)           - the unit is recognised again (manufacturer, model, serial, station)
  Retain Institution Identity (113112)      - the hospital's own name and department
  Retain Patient Characteristics (113108)   - sex, age, size, weight: what dose estimates need
  Retain Longitudinal Temporal Information with Full Dates (113106) - study and acquisition dates and times
  Clean Descriptors (113105)                - descriptions and protocol names kept, cleaned of the patient's
                                              name, ID and birth date
  Clean Structured Content (113104)         - in the SR tree: person names replaced, person and subject IDs and
                                              birth dates removed, texts cleaned; every numeric dose item kept.
The Patient ID becomes the registry's keyed pseudonym (HMAC-SHA-256), so the registry matches the object with the
patient's other studies; name and birth date are emptied.  Deviations from the profile, for the registry's own
links: the Accession Number (the RIS link, also held in the registry) and the Issuer of Patient ID (an organisation,
part of the pseudonym's input) are kept.  Private attributes are removed (no Retain Safe Private option).
"""

from __future__ import annotations

import datetime as dt
import re

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

METHOD = "DoseReg PS3.15 Basic Profile; keyed pseudonym (HMAC-SHA-256) as Patient ID"
# (code value, meaning): PS3.16 CID 7050 De-identification Method
OPTIONS = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113104", "Clean Structured Content Option"),
    ("113105", "Clean Descriptors Option"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113109", "Retain Device Identity Option"),
    ("113110", "Retain UIDs Option"),
    ("113112", "Retain Institution Identity Option"),
)
REPLACED_NAME = "Removed"  # a content item's Person Name is Type 1: a dummy value (action D), not empty

# PS3.15 Table E.1-1 attributes with action X (remove) that the options above do not retain
REMOVE = frozenset({
    "IssuerOfPatientIDQualifiersSequence", "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames",
    "PatientBirthTime", "PatientBirthName", "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers",
    "PatientTelecomInformation", "MedicalRecordLocator", "PatientComments", "PatientInsurancePlanCodeSequence",
    "PatientPrimaryLanguageCodeSequence", "PatientReligiousPreference", "MilitaryRank", "BranchOfService",
    "CountryOfResidence", "RegionOfResidence", "Occupation", "AdditionalPatientHistory", "PatientState",
    "ResponsiblePerson", "ResponsiblePersonRole", "ResponsibleOrganization", "MedicalAlerts", "Allergies",
    "LastMenstrualDate", "PersonAddress", "PersonTelephoneNumbers", "PersonTelecomInformation",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "ReferringPhysicianIdentificationSequence",
    "PerformingPhysicianIdentificationSequence", "PhysiciansOfRecordIdentificationSequence",
    "PhysiciansReadingStudyIdentificationSequence", "OperatorIdentificationSequence",
    "RequestingPhysicianIdentificationSequence", "PersonIdentificationCodeSequence", "AdmissionID",
    "IssuerOfAdmissionIDSequence", "ServiceEpisodeID", "CurrentPatientLocation",
    "PatientInstitutionResidence", "VisitComments", "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence", "ImageComments", "StudyComments", "RequestedProcedureComments",
    "RequestedProcedureID", "ScheduledProcedureStepID", "PerformedProcedureStepID", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest", "OrderCallbackPhoneNumber", "OrderEnteredBy", "OrderEntererLocation",
    "ReasonForTheRequestedProcedure", "ReasonForStudy", "RequestingService", "DerivationDescription",
    "OriginalAttributesSequence", "ContributingEquipmentSequence", "ReferencedPatientSequence",
    "ReferencedPatientPhotoSequence", "TextComments", "Signature", "DigitalSignaturesSequence",
})
# action Z (empty) that the options do not retain
EMPTY = frozenset({"PatientName", "PatientBirthDate", "StudyID"})

# SR concept codes (DCM) whose TEXT, DATE or UIDREF value identifies a person: the item's value is removed
_PERSON_ID_CONCEPTS = frozenset({
    "113871",  # Person ID
    "113872",  # Person ID Issuer
    "113873",  # Organization Name (of the person)
    "121030",  # Subject ID
    "121031",  # Subject Birth Date
    "128774",  # Person Observer's Login Name
    "121009",  # Person Observer's Organization Name
    "121010",  # Person Observer's Role in the Organization
})
_PN, _TEXT_VRS = "PN", frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})


def is_deidentified(ds: Dataset) -> bool:
    """True when this dataset was de-identified by DoseReg (its Patient ID is already the pseudonym)."""
    return str(ds.get("PatientIdentityRemoved", "")).upper() == "YES" and \
        str(ds.get("DeidentificationMethod", "")).startswith("DoseReg")


def identifying_tokens(ds: Dataset) -> list[str]:
    """What Clean Descriptors / Clean Structured Content remove from free text: the patient's ID, the parts of the
    name (3 characters or more) and the birth date as DICOM, ISO and European dates."""
    tokens = []
    pid = str(ds.get("PatientID", "") or "").strip()
    if len(pid) >= 3:
        tokens.append(pid)
    name = str(ds.get("PatientName", "") or "")
    tokens += [part for part in re.split(r"[\^=\s,]+", name) if len(part) >= 3]
    birth = str(ds.get("PatientBirthDate", "") or "").strip()
    if re.fullmatch(r"\d{8}", birth):
        tokens += [birth, f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", f"{birth[6:]}.{birth[4:6]}.{birth[:4]}"]
    return sorted(set(tokens), key=len, reverse=True)


def age_at(birth_date: str, on: str) -> str:
    """Patient's Age (AS) on a date from a birth date, both DICOM DA: '067Y'; under two years in months ('018M'),
    under a month in days ('012D'); '' when either date is unusable."""
    try:
        born, day = dt.date(int(birth_date[:4]), int(birth_date[4:6]), int(birth_date[6:8])), \
            dt.date(int(on[:4]), int(on[4:6]), int(on[6:8]))
    except (ValueError, IndexError):
        return ""
    if day < born:
        return ""
    months = (day.year - born.year) * 12 + day.month - born.month - (day.day < born.day)
    if months >= 24:
        return f"{min(months // 12, 999):03d}Y"
    if months >= 1:
        return f"{months:03d}M"
    return f"{(day - born).days:03d}D"


def clean_text(text: str, tokens: list[str]) -> str:
    """``text`` with every token (case-insensitive) replaced by '[removed]'."""
    for token in tokens:
        text = re.sub(re.escape(token), "[removed]", text, flags=re.IGNORECASE)
    return text


def deidentify(ds: Dataset, *, pseudonym: str) -> Dataset:
    """De-identify ``ds`` in place (see the module docstring) and return it; ``pseudonym`` becomes its Patient ID."""
    tokens = identifying_tokens(ds)
    if not str(ds.get("PatientAge", "") or "").strip():
        age = age_at(str(ds.get("PatientBirthDate", "") or ""), str(ds.get("StudyDate", "") or
                                                                    ds.get("ContentDate", "") or ""))
        if age:
            ds.PatientAge = age  # the age the birth date gave (Retain Patient Characteristics) before it goes
    _clean(ds, tokens, _byte_tokens(tokens))
    ds.PatientID = pseudonym
    for keyword in EMPTY:
        if keyword in ds:
            setattr(ds, keyword, "")
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES" and "PixelData" in ds:
        del ds.PixelData  # text burned into the pixels cannot be cleaned here; the dose is in the header
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    ds.DeidentificationMethodCodeSequence = Sequence([_code(value, meaning) for value, meaning in OPTIONS])
    ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    return ds


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def _byte_tokens(tokens: list[str]) -> list[bytes]:
    """The tokens as they may appear in undecoded values (UTF-8 and Latin-1, lower case): a cheap first test."""
    return sorted({t.lower().encode(codec, "ignore") for t in tokens for codec in ("utf-8", "latin-1")} - {b""})


def _clean(ds: Dataset, tokens: list[str], btokens: list[bytes]) -> None:
    """Remove private attributes and (X), empty person names (Z) and clean texts, at every level (sequences and the
    SR tree).  Values are decoded only where they change: the rest is written back as received (fast)."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if tag.is_private:
            del ds[tag]
            continue
        keyword = keyword_for_tag(tag)
        if keyword in REMOVE:
            del ds[tag]
            continue
        vr = raw.VR or _dictionary_vr(tag)
        if vr == "SQ":
            elem = ds[tag]
            for item in elem.value:
                _clean(item, tokens, btokens)
            if keyword == "ContentSequence":
                elem.value = Sequence([item for item in elem.value if not _identifies_person(item)])
        elif vr == _PN:
            if raw.value:  # in a content item (PNAME) Type 1: a dummy; elsewhere (patient, physicians...) empty
                ds[tag].value = REPLACED_NAME if keyword == "PersonName" else ""
        elif vr in _TEXT_VRS and btokens and raw.value and keyword not in ("PatientID", "IssuerOfPatientID"):
            value = raw.value
            probe = value.lower() if isinstance(value, bytes) else str(value).lower().encode("utf-8", "ignore")
            if any(t in probe for t in btokens):
                elem = ds[tag]
                if isinstance(elem.value, str):
                    elem.value = clean_text(elem.value, tokens)
                else:  # a multi-valued text
                    elem.value = [clean_text(str(v), tokens) for v in elem.value]


def _dictionary_vr(tag) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""


def _identifies_person(item: Dataset) -> bool:
    """An SR content item whose value names a person's or subject's ID, organisation or birth date."""
    concept = item.get("ConceptNameCodeSequence")
    if not concept:
        return False
    return str(concept[0].get("CodeValue", "")) in _PERSON_ID_CONCEPTS and \
        str(item.get("ValueType", "")) in ("TEXT", "DATE", "UIDREF", "CODE")
