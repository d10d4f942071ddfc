"""HL7 v2.5.1 messages (hl7apy): the ORU^R01 with the dose text out, ADT^A40 / ADT^A08 in, and their ACKs.

Pure: content in (dataclasses), ER7 text out, and back.  Segment terminator CR (HL7 v2.5.1 §2.5.4); text is escaped
per §2.7 (``\\F\\`` for ``|``, ``\\S\\`` for ``^``, ``\\T\\`` for ``&``, ``\\R\\`` for ``~``, ``\\E\\`` for
``\\``).  The dose text goes as one OBX (value type TX, LOINC 73569-6 "Radiation exposure and protection
information") per line, the accession number in OBR-3 (filler order number) and OBR-18 (placer field 1): the RIS
matches the report by it.  Result status F, C for a correction (Table 0085).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

VERSION = "2.5.1"
DOSE_TEXT_CODE = "73569-6^Radiation exposure and protection information^LN"
ACCEPT, ERROR, REJECT = "AA", "AE", "AR"  # MSA-1 (Table 0008)
SUPPORTED_INBOUND = {("ADT", "A40"), ("ADT", "A08")}
# ERR-3 codes (HL7 Table 0357)
UNSUPPORTED_MESSAGE_TYPE, UNSUPPORTED_EVENT, REQUIRED_FIELD_MISSING, APPLICATION_ERROR = "200", "201", "101", "207"
UNKNOWN_KEY = "204"


class HL7Error(Exception):
    """An inbound message DoseReg cannot accept; ``ack_code`` AR (reject) or AE (error), ``err`` ERR-3."""

    def __init__(self, reason: str, *, ack_code: str = REJECT, err: str = APPLICATION_ERROR):
        super().__init__(reason)
        self.ack_code = ack_code
        self.err = err


def escape(text: str) -> str:
    """HL7 v2 escape sequences for the delimiters (§2.7.1); the escape character first."""
    out = text.replace("\\", "\\E\\")
    for char, seq in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(char, seq)
    return out.replace("\r", " ").replace("\n", " ")


def unescape(text: str) -> str:
    out = text
    for char, seq in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(seq, char)
    return out.replace("\\E\\", "\\")


def hl7_timestamp(moment: dt.datetime | dt.date | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, dt.datetime):
        return moment.strftime("%Y%m%d%H%M%S") + (moment.strftime("%z") if moment.tzinfo else "")
    return moment.strftime("%Y%m%d")


# --- outbound ORU^R01 --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OruContent:
    control_id: str
    sent_at: dt.datetime
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    patient_id: str  # the pseudonym when pseudonymisation is on
    issuer: str
    accession_number: str
    study_instance_uid: str
    procedure: str  # OBR-4 text
    procedure_code: str = ""
    procedure_scheme: str = ""
    observed_at: dt.datetime | None = None
    corrected: bool = False
    lines: tuple[str, ...] = ()
    patient_name: str = ""  # empty with pseudonymisation
    birth_date: dt.date | None = None
    sex: str = ""


def _msh(msg: Message, *, sending: tuple[str, str], receiving: tuple[str, str], sent_at: dt.datetime,
         control_id: str, message_type: str) -> None:
    msg.msh.msh_3 = escape(sending[0])
    msg.msh.msh_4 = escape(sending[1])
    msg.msh.msh_5 = escape(receiving[0])
    msg.msh.msh_6 = escape(receiving[1])
    msg.msh.msh_7 = hl7_timestamp(sent_at)
    msg.msh.msh_9 = message_type
    msg.msh.msh_10 = escape(control_id)[:20]
    msg.msh.msh_11 = "P"
    msg.msh.msh_12 = VERSION
    msg.msh.msh_18 = "UNICODE UTF-8"


def build_oru(c: OruContent) -> str:
    """The ORU^R01 of one study's dose text, ER7 with CR segment terminators."""
    msg = Message("ORU_R01", version=VERSION)
    _msh(msg, sending=(c.sending_application, c.sending_facility),
         receiving=(c.receiving_application, c.receiving_facility), sent_at=c.sent_at, control_id=c.control_id,
         message_type="ORU^R01^ORU_R01")
    msg.msh.msh_15 = "AL"  # accept acknowledgment: always
    result = msg.add_group("ORU_R01_PATIENT_RESULT")
    patient = result.add_group("ORU_R01_PATIENT")
    patient.pid.pid_1 = "1"
    patient.pid.pid_3 = f"{escape(c.patient_id)}^^^{escape(c.issuer)}" if c.issuer else escape(c.patient_id)
    patient.pid.pid_5 = "^".join(escape(part) for part in c.patient_name.split("^"))  # DICOM PN: family^given
    if c.birth_date:
        patient.pid.pid_7 = hl7_timestamp(c.birth_date)
    if c.sex:
        patient.pid.pid_8 = escape(c.sex)
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    status = "C" if c.corrected else "F"
    order.obr.obr_1 = "1"
    order.obr.obr_3 = escape(c.accession_number)
    code = "^".join(escape(p) for p in (c.procedure_code, c.procedure, c.procedure_scheme)) \
        if c.procedure_code else f"^{escape(c.procedure)}"
    order.obr.obr_4 = code
    if c.observed_at:
        order.obr.obr_7 = hl7_timestamp(c.observed_at)
    order.obr.obr_18 = escape(c.accession_number)
    order.obr.obr_25 = status
    for number, line in enumerate(c.lines or ("",), start=1):
        obx = order.add_group("ORU_R01_OBSERVATION").obx
        obx.obx_1 = str(number)
        obx.obx_2 = "TX"
        obx.obx_3 = DOSE_TEXT_CODE
        obx.obx_4 = "1"
        obx.obx_5 = escape(line) or '""'
        obx.obx_11 = status
    return msg.to_er7()


# --- acknowledgements ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    code: str  # MSA-1
    control_id: str  # MSA-2: the control id of the message acknowledged
    text: str = ""

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def parse_ack(text: str) -> Ack:
    """The MSA of an acknowledgement; HL7Error when it is none."""
    segments = _segments(text)
    msa = segments.get("MSA")
    if msa is None:
        raise HL7Error("no MSA segment in the answer")
    err_text = ""
    if "ERR" in segments:
        err = segments["ERR"]
        err_text = unescape(_field(err, 8) or _field(err, 1))
    return Ack(code=_field(msa, 1), control_id=unescape(_field(msa, 2)),
               text=unescape(_field(msa, 3)) or err_text)


@dataclass(frozen=True)
class Header:
    """What an ACK needs from the message it answers (MSH)."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    message_type: str = ""
    trigger: str = ""


def build_ack(header: Header, code: str, text: str = "", *, err: str = "", control_id: str,
              sent_at: dt.datetime) -> str:
    """ACK^<trigger> answering ``header``: MSA-1 ``code`` with ``text``; an ERR segment when it is not AA."""
    msg = Message("ACK", version=VERSION)
    _msh(msg, sending=(header.receiving_application, header.receiving_facility),
         receiving=(header.sending_application, header.sending_facility), sent_at=sent_at, control_id=control_id,
         message_type=f"ACK^{escape(header.trigger)}^ACK" if header.trigger else "ACK")
    msg.msa.msa_1 = code
    msg.msa.msa_2 = escape(header.control_id)
    if text:
        msg.msa.msa_3 = escape(text)[:80]
    if code != ACCEPT:
        err_segment = msg.add_segment("ERR")
        err_segment.err_3 = f"{err or APPLICATION_ERROR}^^HL70357"
        err_segment.err_4 = "E"
        err_segment.err_8 = escape(text)[:250]
    return msg.to_er7()


# --- inbound ADT -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientIdent:
    patient_id: str
    issuer: str = ""


@dataclass(frozen=True)
class AdtMessage:
    header: Header
    patient: PatientIdent
    prior: PatientIdent | None = None  # MRG-1 (A40)
    name: str = ""
    birth_date: dt.date | None = None
    sex: str = ""


def _segments(text: str) -> dict[str, list[str]]:
    """The first segment of each name, split into fields (MSH: MSH-1 is the field separator itself)."""
    out: dict[str, list[str]] = {}
    for raw in text.replace("\n", "\r").split("\r"):
        raw = raw.strip("\x0b\x1c")
        if len(raw) < 3 or raw[:3] in out:
            continue
        parts = raw.split("|")
        if parts[0] == "MSH":
            parts = ["MSH", "|"] + parts[1:]
        out[parts[0]] = parts
    return out


def _field(segment: list[str], number: int) -> str:
    return segment[number] if len(segment) > number else ""


def _component(value: str, number: int) -> str:
    parts = value.split("~")[0].split("^")
    return parts[number - 1] if len(parts) >= number else ""


def read_header(text: str) -> Header:
    """MSH of any message, for the ACK; HL7Error when there is no MSH."""
    msh = _segments(text).get("MSH")
    if msh is None:
        raise HL7Error("not an HL7 v2 message (no MSH segment)")
    kind = _field(msh, 9)
    return Header(sending_application=unescape(_component(_field(msh, 3), 1)),
                  sending_facility=unescape(_component(_field(msh, 4), 1)),
                  receiving_application=unescape(_component(_field(msh, 5), 1)),
                  receiving_facility=unescape(_component(_field(msh, 6), 1)),
                  control_id=unescape(_field(msh, 10)), message_type=_component(kind, 1), trigger=_component(kind, 2))


def _ident(value: str) -> PatientIdent:
    """CX: ID^check digit^scheme^assigning authority (its namespace ID)."""
    authority = value.split("~")[0].split("^")
    issuer = authority[3].split("&")[0] if len(authority) > 3 else ""
    return PatientIdent(patient_id=unescape(_component(value, 1)).strip(), issuer=unescape(issuer).strip())


def _date(value: str) -> dt.date | None:
    digits = value[:8]
    try:
        return dt.datetime.strptime(digits, "%Y%m%d").date() if len(digits) == 8 else None
    except ValueError:
        return None


def parse_adt(text: str) -> AdtMessage:
    """An ADT^A40 or ADT^A08, checked by hl7apy's parser; HL7Error with the ACK code and reason otherwise."""
    header = read_header(text)
    if (header.message_type, header.trigger) not in SUPPORTED_INBOUND:
        unsupported = UNSUPPORTED_MESSAGE_TYPE if header.message_type != "ADT" else UNSUPPORTED_EVENT
        raise HL7Error(f"{header.message_type}^{header.trigger} is not accepted (only ADT^A40 and ADT^A08)",
                       err=unsupported)
    try:
        parse_message(text.replace("\n", "\r").strip("\x0b\x1c\r") + "\r", find_groups=False)
    except (HL7apyException, ValueError) as exc:
        raise HL7Error(f"message not parseable: {exc}"[:200]) from exc
    segments = _segments(text)
    pid = segments.get("PID")
    patient = _ident(_field(pid, 3)) if pid else PatientIdent("")
    if not patient.patient_id:
        raise HL7Error("PID-3 (patient identifier) is missing", ack_code=ERROR, err=REQUIRED_FIELD_MISSING)
    prior = None
    if header.trigger == "A40":
        mrg = segments.get("MRG")
        prior = _ident(_field(mrg, 1)) if mrg else None
        if prior is None or not prior.patient_id:
            raise HL7Error("MRG-1 (prior patient identifier) is missing", ack_code=ERROR, err=REQUIRED_FIELD_MISSING)
    name = "^".join(p for p in unescape(_field(pid, 5).split("~")[0]).split("^")[:3]).rstrip("^")
    sex = _field(pid, 8)[:1].upper()
    return AdtMessage(header=header, patient=patient, prior=prior, name=name, birth_date=_date(_field(pid, 7)),
                      sex=sex if sex in ("M", "F", "O") else "")
