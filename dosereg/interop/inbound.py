"""Inbound HL7 v2 from the master patient index: ADT^A40 (merge) and ADT^A08 (demographics), answered by an ACK.

Every message gets an answer: AA when applied (or when there is nothing to apply: a merge of a patient DoseReg has
never seen), AE with the reason when a required field is missing or the change cannot be made, AR for message
types DoseReg does not take.  With pseudonymisation on, inbound patient IDs are hashed with the same key before
matching, and names and birth dates are not stored.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from dosereg.interop import hl7
from dosereg.interop.mllp import MLLPListener
from dosereg.registry.models import Patient, Study
from dosereg.registry.services.patients import (
    PatientMergeError,
    patient_merge,
    patient_update_demographics,
)
from dosereg.registry.services.pseudonyms import patient_pseudonym, pseudonym_enabled
from triggers.models import Alert
from triggers.services import check_study

log = logging.getLogger("dosereg.interop.hl7")


def _registry_id(ident: hl7.PatientIdent, issuer: str) -> str:
    return patient_pseudonym(ident.patient_id, issuer) if pseudonym_enabled() else ident.patient_id


def find_patient(ident: hl7.PatientIdent) -> Patient | None:
    """The registry patient of an HL7 identifier: (issuer, ID) exactly, else the one patient with that ID."""
    for issuer in dict.fromkeys([ident.issuer, ""]):
        rows = list(Patient.objects.filter(patient_id=_registry_id(ident, issuer)))
        exact = [p for p in rows if p.issuer == issuer]
        if exact:
            return exact[0]
        if len(rows) == 1:
            return rows[0]
    return None


def recheck_history(patient_id: int) -> None:
    """Alerts follow their study's patient; cumulative windows are evaluated again over the joined history."""
    study_ids = list(Study.objects.filter(patient_id=patient_id).order_by("study_date", "pk")
                     .values_list("pk", flat=True))
    Alert.objects.filter(study_id__in=study_ids).exclude(patient_id=patient_id).update(patient_id=patient_id)
    for study_id in study_ids:
        check_study(study_id)


def apply_merge(message: hl7.AdtMessage) -> str:
    """ADT^A40: the prior patient's studies join the surviving patient's history.  Returns the ACK text."""
    merged = find_patient(message.prior)
    if merged is None:
        return "prior patient not in the registry: nothing to merge"
    with transaction.atomic():
        surviving = find_patient(message.patient)
        if surviving is None:  # the surviving ID is new to DoseReg: it takes over the prior patient's history
            pseudo = pseudonym_enabled()
            surviving = Patient.objects.create(patient_id=_registry_id(message.patient, message.patient.issuer),
                                               issuer=message.patient.issuer, pseudonymised=pseudo,
                                               sex=message.sex or merged.sex)
        if surviving.pk == merged.pk:
            return "already one patient"
        result = patient_merge(surviving_id=surviving.pk, merged_id=merged.pk, source="hl7 ADT^A40")
    recheck_history(surviving.pk)
    return f"merged: {len(result.study_ids)} stud{'y' if len(result.study_ids) == 1 else 'ies'} moved"


def apply_update(message: hl7.AdtMessage) -> str:
    """ADT^A08: name, birth date and sex of a known patient (name and birth date not with pseudonyms)."""
    patient = find_patient(message.patient)
    if patient is None:
        return "patient not in the registry: nothing to update"
    changed = patient_update_demographics(patient_id=patient.pk, name=message.name, birth_date=message.birth_date,
                                          sex=message.sex, source="hl7 ADT^A08")
    return f"updated: {', '.join(changed)}" if changed else "no change"


def handle_message(text: str) -> str:
    """One inbound message in, its ACK out (never an exception)."""
    close_old_connections()
    now = timezone.now()
    control_id = uuid.uuid4().hex[:20]
    try:
        header = hl7.read_header(text)
    except hl7.HL7Error as exc:
        return hl7.build_ack(hl7.Header(receiving_application=settings.HL7_SENDING_FACILITY), hl7.REJECT, str(exc),
                             err=hl7.UNSUPPORTED_MESSAGE_TYPE, control_id=control_id, sent_at=now)
    try:
        message = hl7.parse_adt(text)
        note = apply_merge(message) if header.trigger == "A40" else apply_update(message)
    except hl7.HL7Error as exc:
        log.warning("HL7 %s^%s %s refused (%s): %s", header.message_type, header.trigger, header.control_id,
                    exc.ack_code, exc)
        return hl7.build_ack(header, exc.ack_code, str(exc), err=exc.err, control_id=control_id, sent_at=now)
    except PatientMergeError as exc:
        return hl7.build_ack(header, hl7.ERROR, str(exc), control_id=control_id, sent_at=now)
    except Exception as exc:  # noqa: BLE001 - the sender gets AE and retries or alerts; the listener stays up
        log.exception("HL7 %s^%s %s failed", header.message_type, header.trigger, header.control_id)
        return hl7.build_ack(header, hl7.ERROR, f"internal error ({type(exc).__name__}); logged",
                             control_id=control_id, sent_at=now)
    log.info("HL7 %s^%s %s from %s: %s", header.message_type, header.trigger, header.control_id,
             header.sending_application, note)
    return hl7.build_ack(header, hl7.ACCEPT, note, control_id=control_id, sent_at=now)


def mllp_listener(bind: str, port: int) -> MLLPListener:
    """The MLLP listener for the master patient index (``hl7_listen``): each connection's thread closes its database
    connections when the MPI closes it (they stayed open, one more for every connection, until the process ended)."""
    return MLLPListener(bind, port, handle_message, on_connection_end=connections.close_all)
