"""FHIR resources of every corpus study: valid R4 (fhir.resources, R4B models: the elements used here are the same
in R4 4.0.1) and conform to the IG's profiles, element by element."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from dosereg.core.quantities import QUANTITIES
from dosereg.interop import fhir
from dosereg.registry.models import DoseReport, Study

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]

MODELS = {"Observation": Observation, "Patient": FhirPatient, "ImagingStudy": ImagingStudy, "Device": Device}
UCUM_UNITS = {"mGy", "mGy.cm", "Gy.cm2", "s", "MBq", "mSv", "1"}


def import_corpus(corpus, *parts):
    paths = [corpus / p for p in parts] if parts else [corpus]
    try:
        call_command("import_dose", *[str(p) for p in paths], stdout=open("/dev/null", "w"),
                     stderr=open("/dev/null", "w"))
    except SystemExit:
        pass


def assert_dose_summary_profile(obs: dict, study: Study) -> None:
    """RadiationDoseSummary (input/fsh/RadiationDoseSummary.fsh), rule by rule."""
    assert obs["meta"]["profile"] == [fhir.PROFILE_DOSE_SUMMARY]
    assert obs["code"]["coding"] == [{"system": "http://loinc.org", "code": "73569-6",
                                      "display": fhir.DOSE_SUMMARY_CODE[1]}]
    # identifier[radiationSRUID] 0..*: type sop-instance-uid, system urn:dicom:uid, value 1..1
    sops = set(DoseReport.objects.filter(study=study).values_list("sop_instance_uid", flat=True))
    assert {i["value"] for i in obs["identifier"]} == {f"urn:oid:{s}" for s in sops}
    for ident in obs["identifier"]:
        assert ident["system"] == "urn:dicom:uid"
        assert ident["type"]["coding"][0] == {"system": fhir.DICOM_ID_TYPE, "code": "sop-instance-uid",
                                              "display": "SOP Instance UID"}
    # partOf[imagingStudyRef] 1..1, identifier type study-instance-uid 1..1, system urn:dicom:uid, value 1..1
    assert len(obs["partOf"]) == 1
    part = obs["partOf"][0]
    assert part["reference"] == f"ImagingStudy/{study.pk}"
    assert part["identifier"]["type"]["coding"][0]["code"] == "study-instance-uid"
    assert part["identifier"]["system"] == "urn:dicom:uid"
    assert part["identifier"]["value"] == f"urn:oid:{study.study_instance_uid}"
    # basedOn[serviceRequestRef] 0..1: identifier.type ACSN 1..1, value 1..1
    if study.accession_number:
        (based,) = obs["basedOn"]
        assert based["identifier"]["type"]["coding"][0]["code"] == "ACSN"
        assert based["identifier"]["value"] == study.accession_number
    else:
        assert "basedOn" not in obs
    assert obs["subject"]["reference"] == f"Patient/{study.patient_id}"  # 1..1
    assert obs["focus"] == [{"reference": f"ImagingStudy/{study.pk}", "type": "ImagingStudy"}]  # 1..1
    assert obs["status"] in {"final", "amended"}  # fhir.resources does not check code bindings: here
    assert obs["effectiveDateTime"]  # 1..1
    assert isinstance(obs["valueString"], str) and obs["valueString"]  # value[x] 1..1 only string
    assert "dataAbsentReason" not in obs and "specimen" not in obs  # 0..0
    assert len(obs["performer"]) == 1 and obs["performer"][0]["type"] == "Practitioner"  # 1..1
    if study.equipment_id:
        assert obs["device"]["reference"] == f"Device/{study.equipment_id}"
    for comp in obs.get("component", []):
        coding = comp["code"]["coding"][0]
        if coding["code"] == "121058":  # procedure reported: ProcedureReportedTypeVS
            assert comp["valueCodeableConcept"]["coding"][0]["code"] in {"113502", "77477000", "113704",
                                                                         "71651007"}
            continue
        quantity = comp["valueQuantity"]
        assert quantity["system"] == "http://unitsofmeasure.org" and quantity["code"] in UCUM_UNITS
        name = next(n for n, c in fhir.COMPONENT_CODES.items() if c[1] == coding["code"]
                    and (n not in fhir.COMPONENT_TEXT or comp["code"].get("text") == fhir.COMPONENT_TEXT[n]))
        assert quantity["code"] == QUANTITIES[name].unit
        if getattr(study, name, None) is not None:
            assert quantity["value"] == pytest.approx(getattr(study, name))


def assert_modality_device_profile(dev: dict) -> None:
    """ModalityDevice (input/fsh/Modality.fsh): identifier[aeTitle] 1..1, type 1..1 from DICOM CID 33."""
    assert dev["meta"]["profile"] == [fhir.PROFILE_MODALITY_DEVICE]
    ae = [i for i in dev["identifier"] if i["type"]["coding"][0]["code"] == "application-entity"]
    assert len(ae) == 1 and ae[0]["value"]
    assert dev["type"]["coding"][0]["system"] == fhir.DCM
    assert dev["type"]["coding"][0]["code"] in {"CT", "XA", "DX", "MG", "NM", "OT"}
    for ident in dev["identifier"]:
        if ident["type"]["coding"][0]["code"] == "device-uid":
            assert ident["system"] == "urn:dicom:uid" and ident["value"].startswith("urn:oid:")
    for name in dev.get("deviceName", []):
        assert name["type"] in {"manufacturer-name", "model-name"}


def test_every_corpus_study_gives_valid_conformant_resources(corpus):
    import_corpus(corpus)
    studies = list(Study.objects.select_related("patient", "equipment"))
    assert len(studies) > 30
    seen_codes = set()
    for study in studies:
        summary = fhir.dose_summary(study)
        for resource in fhir.resources(summary):
            MODELS[resource["resourceType"]].model_validate(resource)  # raises on an invalid resource
            if resource["resourceType"] == "Observation":
                assert_dose_summary_profile(resource, study)
                seen_codes |= {c["code"]["coding"][0]["code"] for c in resource.get("component", [])}
            elif resource["resourceType"] == "Device":
                assert_modality_device_profile(resource)
            elif resource["resourceType"] == "ImagingStudy":
                assert resource["identifier"][0] == {"system": "urn:dicom:uid",
                                                     "value": f"urn:oid:{study.study_instance_uid}"}
        bundle = fhir.transaction_bundle(summary)
        Bundle.model_validate(bundle)
        json.dumps(bundle)
        assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT"] * len(bundle["entry"])
        obs = bundle["entry"][-1]
        assert obs["request"]["url"] == f"Observation?identifier=urn:dicom:uid|urn:oid:{summary.key}"
        assert obs["resource"]["subject"]["reference"] == bundle["entry"][0]["fullUrl"]
    # the corpus covers CT, projection X-ray, mammography and NM totals
    assert {"113813", "113722", "113725", "111637", "113507", "121058"} <= seen_codes


def test_the_validator_refuses_what_the_profile_needs():
    """fhir.resources really checks: no required code, a date that is none, a quantity that is no number."""
    with pytest.raises(ValidationError):
        Observation.model_validate({"resourceType": "Observation", "status": "final"})
    with pytest.raises(ValidationError):
        Observation.model_validate({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                    "effectiveDateTime": "yesterday"})
    with pytest.raises(ValidationError):
        Observation.model_validate({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                    "valueQuantity": {"value": "much"}})


def test_pseudonymised_patient_carries_the_pseudonym_only(corpus, settings):
    settings.PSEUDONYM_KEY = "fhir-test-key"
    import_corpus(corpus, "ct/CT-ESR-GE_Optima.dcm")
    study = Study.objects.get()
    patient = fhir.patient_resource(fhir.dose_summary(study).patient)
    assert patient["identifier"][0]["system"] == fhir.PSEUDONYM_SYSTEM
    assert patient["identifier"][0]["value"] == study.patient.patient_id and len(study.patient.patient_id) == 64
    assert "name" not in patient and "birthDate" not in patient
