"""Outbound deliveries: the FHIR transaction Bundle to the hospital's FHIR server and the ORU^R01 to the RIS.

:func:`interop_after_studies_recorded` (called by the ingest pipeline after commit) writes one Delivery row per
study and destination whose content changed since the last one (``version``: the digest of what is sent, without
timestamps or control ids), then sends it.  A failed attempt (no answer, a NAK, an HTTP error) leaves the row
pending with ``next_attempt_at`` set by exponential backoff (30 s doubling, at most an hour apart);
:func:`deliveries_retry_due` (Celery beat every minute, or ``manage.py interop_retry`` from cron in the embedded
mode) sends the due ones, until ``DOSEREG_INTEROP_MAX_ATTEMPTS`` marks the row failed.  The row is locked while it
is sent, so two workers never send it twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dosereg.interop import fhir, hl7, mllp
from dosereg.interop.models import Delivery
from dosereg.registry.models import SiteSettings, Study

log = logging.getLogger("dosereg.interop.push")

BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 3600.0
HTTP_TIMEOUT_S = (5.0, 30.0)  # connect, read
MLLP_TIMEOUT_S = 30.0


def fhir_enabled() -> bool:
    return bool(settings.FHIR_BASE_URL)


def hl7_enabled() -> bool:
    return bool(settings.HL7_RIS_HOST)


def backoff(attempts: int) -> dt.timedelta:
    """The wait after ``attempts`` failed attempts: 30 s, 60 s, 120 s ... at most an hour."""
    return dt.timedelta(seconds=min(BACKOFF_FIRST_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _queue(*, kind: str, study: Study, key: str, version: str, destination: str, payload: str) -> Delivery | None:
    """A new pending row, or None when this content already went (or is going) to this destination."""
    try:
        with transaction.atomic():
            return Delivery.objects.create(kind=kind, study=study, key=key[:128], version=version,
                                           destination=destination[:255], payload=payload,
                                           next_attempt_at=timezone.now())
    except IntegrityError:
        return None


def queue_fhir(study: Study, site: SiteSettings | None = None) -> Delivery | None:
    summary = fhir.dose_summary(study, site=site)
    bundle = fhir.transaction_bundle(summary)
    return _queue(kind=Delivery.KIND_FHIR, study=study, key=summary.key, version=_digest(bundle),
                  destination=settings.FHIR_BASE_URL, payload=json.dumps(bundle))


def oru_content(study: Study, summary_text: str, *, corrected: bool, control_id: str) -> hl7.OruContent:
    patient = study.patient
    pseudo = patient.pseudonymised
    return hl7.OruContent(
        control_id=control_id, sent_at=timezone.now(), sending_application=settings.DICOM_AE_TITLE,
        sending_facility=settings.HL7_SENDING_FACILITY, receiving_application=settings.HL7_RIS_APPLICATION,
        receiving_facility="", patient_id=patient.patient_id, issuer="" if pseudo else patient.issuer,
        accession_number=study.accession_number, study_instance_uid=study.study_instance_uid,
        procedure=study.requested_procedure_description or study.study_description or "Imaging examination",
        procedure_code=study.requested_procedure_code, procedure_scheme=study.requested_procedure_scheme,
        observed_at=study.study_datetime, corrected=corrected, lines=tuple(summary_text.splitlines()),
        patient_name="" if pseudo else patient.name, birth_date=None if pseudo else patient.birth_date,
        sex=patient.sex,
    )


def queue_oru(study: Study, site: SiteSettings | None = None) -> Delivery | None:
    """The ORU^R01 of a study's dose text; sent once per content, a changed text again with result status C."""
    text = fhir.summary_text(study, site)
    key = study.accession_number or study.study_instance_uid
    destination = f"{settings.HL7_RIS_HOST}:{settings.HL7_RIS_PORT}"
    version = _digest(text, study.patient.patient_id, study.accession_number)
    earlier = Delivery.objects.filter(kind=Delivery.KIND_HL7_ORU, key=key[:128], destination=destination) \
        .exclude(version=version).exists()
    control_id = uuid.uuid4().hex[:20]
    payload = hl7.build_oru(oru_content(study, text, corrected=earlier, control_id=control_id))
    return _queue(kind=Delivery.KIND_HL7_ORU, study=study, key=key, version=version, destination=destination,
                  payload=payload)


def interop_after_studies_recorded(study_ids) -> list[int]:
    """Queue and send the FHIR Bundle and the ORU of each new, corrected or superseded study (when configured).
    For the ingest pipeline, after commit.  Returns the new Delivery ids."""
    if not (fhir_enabled() or hl7_enabled()):
        return []
    site = SiteSettings.load()
    created = []
    for study in Study.objects.select_related("patient", "equipment").filter(pk__in=list(study_ids), demo=False):
        for enabled, queue in ((fhir_enabled(), queue_fhir), (hl7_enabled(), queue_oru)):
            if enabled:
                delivery = queue(study, site)
                if delivery is not None:
                    created.append(delivery.pk)
    from dosereg.interop.tasks import send_delivery_task  # noqa: PLC0415 - tasks imports this module

    for pk in created:
        send_delivery_task.delay(pk)
    return created


# --- sending -----------------------------------------------------------------------------------------------------
class DeliveryFailed(Exception):
    """One attempt failed in a way worth retrying; the message says why (and goes to last_error)."""

    def __init__(self, reason: str, response: str = ""):
        super().__init__(reason)
        self.response = response


def _send_fhir(delivery: Delivery) -> str:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if settings.FHIR_AUTHORIZATION:
        headers["Authorization"] = settings.FHIR_AUTHORIZATION
    try:
        response = requests.post(delivery.destination, data=delivery.payload.encode(), headers=headers,
                                 timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc
    answer = f"HTTP {response.status_code} {response.text[:1000]}"
    if response.status_code >= 300:
        raise DeliveryFailed(f"the FHIR server answered HTTP {response.status_code}", answer)
    return answer


def _send_oru(delivery: Delivery) -> str:
    host, _, port = delivery.destination.rpartition(":")
    try:
        answer = mllp.send_message(host, int(port), delivery.payload, timeout=MLLP_TIMEOUT_S)
    except mllp.MLLPError as exc:
        raise DeliveryFailed(str(exc)[:500]) from exc
    try:
        ack = hl7.parse_ack(answer)
    except hl7.HL7Error as exc:
        raise DeliveryFailed(f"no acknowledgement: {exc}", answer[:1000]) from exc
    if not ack.accepted:
        raise DeliveryFailed(f"the RIS answered {ack.code}: {ack.text or 'no reason given'}"[:500], answer[:1000])
    return answer[:1000]


SENDERS = {Delivery.KIND_FHIR: _send_fhir, Delivery.KIND_HL7_ORU: _send_oru}


def delivery_send(delivery_id: int) -> Delivery:
    """One attempt at one pending delivery (locked while sending); the row says how it went."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.state != Delivery.STATE_PENDING:
            return delivery
        delivery.attempts += 1
        now = timezone.now()
        try:
            delivery.response = SENDERS[delivery.kind](delivery)
        except DeliveryFailed as exc:
            delivery.last_error, delivery.response = str(exc), exc.response
            give_up = delivery.attempts >= settings.INTEROP_MAX_ATTEMPTS
            delivery.state = Delivery.STATE_FAILED if give_up else Delivery.STATE_PENDING
            delivery.next_attempt_at = None if give_up else now + backoff(delivery.attempts)
            log.warning("%s delivery %s (attempt %s) failed%s: %s", delivery.kind, delivery.pk, delivery.attempts,
                        ", given up" if give_up else "", exc)
        else:
            delivery.state, delivery.sent_at, delivery.last_error = Delivery.STATE_SENT, now, ""
            delivery.next_attempt_at = None
        delivery.save(update_fields=["attempts", "state", "sent_at", "last_error", "response", "next_attempt_at"])
    return delivery


def deliveries_retry_due(now: dt.datetime | None = None) -> int:
    """Send every pending delivery whose next attempt is due; the number sent."""
    now = now or timezone.now()
    due = Delivery.objects.filter(state=Delivery.STATE_PENDING, next_attempt_at__lte=now).order_by("pk")
    return sum(delivery_send(pk).state == Delivery.STATE_SENT for pk in due.values_list("pk", flat=True))
