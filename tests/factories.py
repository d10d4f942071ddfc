"""factory_boy factories: registry rows, trigger rules and alerts, and the parser's output (dosereg.core.dose_report).

The one home of the test builders.  The factory modules of the test areas (tests/web, tests/drl, tests/triggers,
tests/ingest), the incident fixtures and bench/ compose these with their scenario's values.  Every UID comes from
one sequence (``UidFactory``), so no two rows share one; a related row is built by a SubFactory unless passed.
Quantities are in the catalogue's canonical units, named like the columns (dlp_total_mgycm, kap_total_gycm2, ...).

    study = StudyFactory(fluoroscopy=True, ka_r_total_mgy=3200.0)
    report = DoseReportFactory(study=study)
    IrradiationEventFactory(report=report, fluoroscopy=True, plane="A", ka_r_mgy=3200.0)
"""

from __future__ import annotations

import datetime as dt
import hashlib

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from dosereg.core import dose_report as dr
from dosereg.registry.models import (
    AccumulatedDose,
    DoseReport,
    Equipment,
    EquipmentChange,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    Room,
    StandardExam,
    Study,
)
from triggers.models import Alert, TriggerRule

UID_ROOT = "1.2.826.0.1.3680043.10.999"  # the test UIDs' root
# SOP classes (DICOM PS3.4 Annex B.5)
RDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR Storage
RRDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.68"  # Radiopharmaceutical Radiation Dose SR Storage
DX_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


class UidFactory(factory.Factory):
    """A fresh UID: ``UidFactory()`` -> '1.2.826.0.1.3680043.10.999.17'; ``UidFactory(root="1.2.3")`` -> '1.2.3.18'."""

    class Meta:
        model = str  # str(object=...): the factory builds the text itself

    class Params:
        root = UID_ROOT

    object = factory.LazyAttributeSequence(lambda o, n: f"{o.root}.{n}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- registry -----------------------------------------------------------------------------------------------------


class RoomFactory(DjangoModelFactory):
    class Meta:
        model = Room
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Room {n}")


class EquipmentFactory(DjangoModelFactory):
    """A unit, found again by its identity key (manufacturer|model|station, as the recording service keys it).

    ``reporting=True``: a unit that has sent dose reports (and was last heard from now).  ``announced=<date>``
    records its 'new_unit' change once, with that effective date, as the recording service does for a new unit."""

    class Meta:
        model = Equipment
        django_get_or_create = ("identity_key",)
        skip_postgeneration_save = True

    class Params:
        reporting = factory.Trait(
            sends_dose_reports=True,
            last_object_at=factory.LazyFunction(timezone.now),
            last_report_at=factory.LazyFunction(timezone.now),
        )

    manufacturer = "Acme"
    model = "Scanner"
    station_name = factory.Sequence(lambda n: f"UNIT{n}")
    identity_key = factory.LazyAttribute(lambda o: f"{o.manufacturer}|{o.model}|{o.station_name}")
    room = None

    @factory.post_generation
    def announced(unit, create, effective_date, **kwargs):
        if create and effective_date and not unit.changes.filter(kind="new_unit").exists():
            EquipmentChange.objects.create(equipment=unit, kind="new_unit", new_value=unit.display_name,
                                           effective_date=effective_date)


class PatientFactory(DjangoModelFactory):
    """A patient, found again by issuer and Patient ID (the registry's patient identity)."""

    class Meta:
        model = Patient
        django_get_or_create = ("issuer", "patient_id")

    issuer = ""
    patient_id = factory.Sequence(lambda n: f"P{n}")


class StandardExamFactory(DjangoModelFactory):
    class Meta:
        model = StandardExam
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"exam-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").capitalize())
    modality_type = "CT"


def _age_at(study) -> float | None:
    birth = study.patient.birth_date
    if birth is None or study.study_date is None:
        return None
    return round((study.study_date - birth).days / 365.2425, 2)


class StudyFactory(DjangoModelFactory):
    """A study without reports; totals are passed as fields.  Traits set the modality type and a usual description:
    ``ct``, ``fluoroscopy``, ``mammography``, ``radiography``, ``nuclear_medicine``.  ``demo=True`` is the field."""

    class Meta:
        model = Study

    class Params:
        ct = factory.Trait(modality_type="CT", study_description="CT Chest")
        fluoroscopy = factory.Trait(modality_type="fluoroscopy", study_description="Coronary angiography")
        mammography = factory.Trait(modality_type="mammography", study_description="Screening mammography")
        radiography = factory.Trait(modality_type="radiography", study_description="Chest PA and lateral")
        nuclear_medicine = factory.Trait(modality_type="nuclear_medicine", study_description="Bone scintigraphy")

    study_instance_uid = factory.LazyFunction(UidFactory)
    patient = factory.SubFactory(PatientFactory)
    equipment = factory.SubFactory(EquipmentFactory)
    accession_number = factory.Sequence(lambda n: f"ACC{n:06d}")
    study_date = dt.date(2024, 3, 4)
    study_datetime = factory.LazyAttribute(
        lambda o: timezone.make_aware(dt.datetime.combine(o.study_date, dt.time(10, 30))) if o.study_date else None)
    modality_type = "CT"
    modality_types = factory.LazyAttribute(lambda o: [o.modality_type] if o.modality_type else [])
    study_description = "CT Chest"
    sex = factory.SelfAttribute("patient.sex")
    age_years = factory.LazyAttribute(_age_at)


class ReceivedObjectFactory(DjangoModelFactory):
    """A received object already ingested; its sha256 stands in for the file's (unique per row)."""

    class Meta:
        model = ReceivedObject

    class Params:
        # pushed by a modality and kept on disk
        c_store = factory.Trait(source="c-store", calling_ae="MODALITY1", peer_address="10.0.0.5",
                                file_path=factory.LazyAttribute(lambda o: f"{o.sop_instance_uid}.dcm"), size=1234,
                                processed_at=factory.LazyFunction(timezone.now))
        demo = factory.Trait(source="demo")  # written by generate_demo_data

    sop_instance_uid = factory.LazyFunction(UidFactory)
    sop_class_uid = RDSR_CLASS
    sha256 = factory.LazyAttributeSequence(lambda o, n: _sha256(f"{o.sop_instance_uid}#{n}"))
    study_instance_uid = ""
    source = "import"
    state = ReceivedObject.STATE_INGESTED


class DoseReportFactory(DjangoModelFactory):
    """A current RDSR of a study, with the received object it was read from."""

    class Meta:
        model = DoseReport

    study = factory.SubFactory(StudyFactory)
    received_object = factory.SubFactory(ReceivedObjectFactory,
                                         study_instance_uid=factory.SelfAttribute("..study.study_instance_uid"),
                                         sop_class_uid=factory.SelfAttribute("..sop_class_uid"))
    sop_instance_uid = factory.SelfAttribute("received_object.sop_instance_uid")
    sop_class_uid = RDSR_CLASS
    source_kind = "rdsr"
    modality_types = factory.LazyAttribute(lambda o: list(o.study.modality_types))


class AccumulatedDoseFactory(DjangoModelFactory):
    """A report's accumulated dose (TID 10002/10012) for one plane ('' for CT)."""

    class Meta:
        model = AccumulatedDose

    report = factory.SubFactory(DoseReportFactory)
    plane = ""


class IrradiationEventFactory(DjangoModelFactory):
    """An irradiation event of a report (and its study).  Traits set the event type: ``ct`` (spiral, body phantom),
    ``localizer``, ``fluoroscopy``, ``acquisition`` (stationary), ``image_header`` (a dose-carrying image: no
    event UID, its own SOP Instance UID)."""

    class Meta:
        model = IrradiationEvent

    class Params:
        ct = factory.Trait(event_type="spiral_acquisition", ctdi_phantom="body")
        localizer = factory.Trait(event_type="constant_angle_acquisition", is_localizer=True)
        fluoroscopy = factory.Trait(event_type="fluoroscopy")
        acquisition = factory.Trait(event_type="stationary_acquisition")
        image_header = factory.Trait(event_type="image_header", irradiation_event_uid=None,
                                     source_sop_instance_uid=factory.LazyFunction(UidFactory))

    report = factory.SubFactory(DoseReportFactory)
    study = factory.SelfAttribute("report.study")
    irradiation_event_uid = factory.LazyFunction(UidFactory)
    source_sop_instance_uid = factory.SelfAttribute("report.sop_instance_uid")
    sequence = 0


# -- triggers -----------------------------------------------------------------------------------------------------


class TriggerRuleFactory(DjangoModelFactory):
    """A study-scope threshold rule on Ka,r (NCRP 168's 5 Gy as the default threshold)."""

    class Meta:
        model = TriggerRule

    key = factory.Sequence(lambda n: f"test-rule-{n}")
    name = factory.Sequence(lambda n: f"Test rule {n}")
    quantity = "ka_r_total_mgy"
    threshold = 5000.0
    unit = "mGy"
    scope = "study"
    severity = "alert"
    source = "test source"


class AlertFactory(DjangoModelFactory):
    """An open alert of a study on a rule made for it (same quantity, threshold, unit and severity)."""

    class Meta:
        model = Alert

    study = factory.SubFactory(StudyFactory, fluoroscopy=True)
    patient = factory.SelfAttribute("study.patient")
    severity = "alert"
    scope = "study"
    quantity = "ka_r_total_mgy"
    quantity_label = "Ka,r"
    value = 5100.0
    unit = "mGy"
    threshold = 5000.0
    rule = factory.SubFactory(TriggerRuleFactory, quantity=factory.SelfAttribute("..quantity"),
                              threshold=factory.SelfAttribute("..threshold"), unit=factory.SelfAttribute("..unit"),
                              severity=factory.SelfAttribute("..severity"), scope=factory.SelfAttribute("..scope"))
    summary = factory.LazyAttribute(lambda o: f"{o.quantity_label} {o.value} {o.unit} ≥ {o.threshold} {o.unit}")


# -- the parser's output (dosereg.core.dose_report): plain dataclasses, built without a database ----------------------


class QuantityFactory(factory.Factory):
    """A value as the parser hands it over: canonical value, the text and unit code as sent."""

    class Meta:
        model = dr.Quantity

    value = 1.0
    raw_value = factory.LazyAttribute(lambda o: repr(o.value))
    raw_unit = ""


class PatientInfoFactory(factory.Factory):
    class Meta:
        model = dr.PatientInfo

    patient_id = "P1"
    name = "Doe^Jane"
    sex = "F"
    birth_date = dt.date(1970, 3, 1)


class EquipmentInfoFactory(factory.Factory):
    class Meta:
        model = dr.EquipmentInfo

    manufacturer = "ACME"
    model = "Scan 1"
    serial_number = "42"
    station_name = "CT1"
    software_versions = "1.0"
    device_observer_uid = "1.2.999.1"


class StudyInfoFactory(factory.Factory):
    class Meta:
        model = dr.StudyInfo

    study_instance_uid = factory.LazyFunction(UidFactory)
    study_date = dt.date(2024, 3, 1)
    study_time = dt.time(10, 30)
    study_description = "CT CHEST"
    header_modality = "SR"


class CtEventDataFactory(factory.Factory):
    """A CT spiral acquisition (TID 10013) with DLP, CTDIvol and kVp; ``region`` is a SNOMED CT (code, meaning)."""

    class Meta:
        model = dr.IrradiationEventData

    class Params:
        dlp = 100.0
        ctdivol = 5.0
        phantom = "body"
        region = ("51185008", "Chest")

    irradiation_event_uid = factory.LazyFunction(UidFactory)
    event_type = "spiral_acquisition"
    event_type_code = dr.Code("SCT", "116152004", "Spiral Acquisition")
    target_region = factory.LazyAttribute(lambda o: dr.Code("SCT", *o.region) if o.region else None)
    protocol = "Chest"
    quantities = factory.LazyAttribute(lambda o: {
        "dlp_mgycm": QuantityFactory(value=o.dlp, raw_unit="mGy.cm"),
        "ctdivol_mgy": QuantityFactory(value=o.ctdivol, raw_unit="mGy"),
        "kvp": QuantityFactory(value=120.0, raw_value="120", raw_unit="kV")})
    attributes = factory.LazyAttribute(lambda o: {"ctdi_phantom": o.phantom})
    content = factory.LazyFunction(lambda: [{"concept": ["DCM", "121106", "Comment"], "value": "x"}])


class ImageEventDataFactory(factory.Factory):
    """The one exposure of a dose-carrying image header; ``quantities`` as read from the header."""

    class Meta:
        model = dr.IrradiationEventData

    irradiation_event_uid = None
    event_type = "image_header"
    quantities = factory.Dict({})
    attributes = factory.Dict({})
    exposure_key = None


def _accumulated_dlp(o) -> tuple[dr.AccumulatedDoseData, ...]:
    total = o.dlp_total if o.dlp_total is not None else sum(e.quantities["dlp_mgycm"].value for e in o.events)
    return (dr.AccumulatedDoseData(quantities={"dlp_total_mgycm": QuantityFactory(value=total, raw_unit="mGy.cm")}),)


class DoseReportDataFactory(factory.Factory):
    """A CT RDSR (TID 10011) as the parser returns it; the accumulated DLP is the events' sum unless ``dlp_total``
    is given.  ``image_header=True``: a DX image header instead (no accumulated dose; pass its events)."""

    class Meta:
        model = dr.DoseReport

    class Params:
        dlp_total = None
        image_header = factory.Trait(
            source_kind=dr.SOURCE_IMAGE_HEADER, sop_class_uid=DX_CLASS, template="header",
            modality_types=("radiography",), accumulated=(),
            study=factory.SubFactory(StudyInfoFactory, study_date=dt.date(2024, 3, 2), study_time=None,
                                     study_description="", header_modality="DX"),
            patient=factory.SubFactory(PatientInfoFactory, patient_id="P2", name="", sex="M", birth_date=None,
                                       age_years=40.0),
            equipment=factory.SubFactory(EquipmentInfoFactory, model="DR", serial_number="7", station_name="DX1",
                                         software_versions="", device_observer_uid=""))

    source_kind = dr.SOURCE_RDSR
    sop_class_uid = RDSR_CLASS
    sop_instance_uid = factory.LazyFunction(UidFactory)
    study = factory.SubFactory(StudyInfoFactory)
    patient = factory.SubFactory(PatientInfoFactory)
    equipment = factory.SubFactory(EquipmentInfoFactory)
    template = "TID 10011"
    modality_types = ("CT",)
    content_datetime = None
    events = ()
    accumulated = factory.LazyAttribute(_accumulated_dlp)
