"""HL7 v2: the ORU^R01 to a RIS (hl7apy's MLLP server answering ACK or NAK) and ADT^A40/A08 to DoseReg's listener."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import threading
import time

import pydicom
import pytest
from django.utils import timezone
from hl7apy.core import Message
from hl7apy.mllp import AbstractHandler, MLLPServer
from hl7apy.parser import parse_message

from dosereg.interop import hl7, inbound, mllp, push
from dosereg.interop.fhir import summary_text
from dosereg.interop.models import Delivery
from dosereg.interop.push import deliveries_retry_due, interop_after_studies_recorded
from dosereg.registry.models import AuditLog, Patient, Study
from dosereg.registry.services.patients import patient_merge_undo
from dosereg.registry.services.pseudonyms import patient_pseudonym
from tests.conftest import REPO, free_port
from tests.interop.test_fhir_resources import import_corpus
from tests.listener.conftest import embedded_env, new_data_dir
from triggers.models import Alert
from triggers.services import check_study, rule_save

pytestmark = [pytest.mark.corpus, pytest.mark.network]


# --- a RIS: hl7apy's MLLP server, recording each ORU and answering NAK to the first ones it is told to ---------------
class RIS:
    def __init__(self, naks: int = 0):
        self.received: list[str] = []
        self.naks = naks
        self.port = free_port()
        ris = self

        class Handler(AbstractHandler):
            def reply(self):
                msg = parse_message(self.incoming_message, find_groups=False)
                ris.received.append(self.incoming_message)
                code = "AE" if len(ris.received) <= ris.naks else "AA"
                ack = Message("ACK", version="2.5.1")
                ack.msh.msh_9 = "ACK^R01^ACK"
                ack.msa.msa_1 = code
                ack.msa.msa_2 = msg.msh.msh_10.to_er7()
                if code == "AE":
                    ack.msa.msa_3 = "order not found"
                return ack.to_mllp()

        self.server = MLLPServer("127.0.0.1", self.port, {"ORU^R01^ORU_R01": (Handler,)})
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ris(settings):
    peer = RIS(naks=1)
    settings.HL7_RIS_HOST, settings.HL7_RIS_PORT = "127.0.0.1", peer.port
    settings.FHIR_BASE_URL = ""
    yield peer
    peer.stop()


def _obx_lines(text: str) -> list[str]:
    return [hl7.unescape(seg.split("|")[5]) for seg in text.split("\r") if seg.startswith("OBX|")]


@pytest.mark.django_db
def test_oru_to_the_ris_retried_after_a_nak_and_sent_once(corpus, settings, tasks_in_process):
    import_corpus(corpus, "ct/CT-ESR-GE_Optima.dcm")
    study = Study.objects.get()
    peer = RIS(naks=1)
    settings.HL7_RIS_HOST, settings.HL7_RIS_PORT, settings.FHIR_BASE_URL = "127.0.0.1", peer.port, ""
    try:
        (pk,) = interop_after_studies_recorded([study.pk])
        delivery = Delivery.objects.get(pk=pk)
        assert delivery.state == "pending" and delivery.attempts == 1  # the RIS said AE
        assert "order not found" in delivery.last_error and delivery.next_attempt_at > timezone.now()
        assert deliveries_retry_due() == 0  # not due yet
        assert deliveries_retry_due(now=timezone.now() + dt.timedelta(hours=1)) == 1
        delivery.refresh_from_db()
        assert delivery.state == "sent" and delivery.attempts == 2 and "MSA|AA" in delivery.response
        assert len(peer.received) == 2 and peer.received[0] == peer.received[1]
        # the same content again: nothing new is sent
        assert interop_after_studies_recorded([study.pk]) == []
        oru = peer.received[-1]
        parsed = parse_message(oru, find_groups=False)
        assert parsed.msh.msh_9.to_er7() == "ORU^R01^ORU_R01"
        segments = {s[:3]: s.split("|") for s in oru.split("\r") if s}
        assert segments["OBR"][3] == hl7.escape(study.accession_number)
        assert segments["PID"][3].split("^")[0] == study.patient.patient_id
        assert _obx_lines(oru) == summary_text(study).splitlines()
        assert segments["OBX"][3] == hl7.DOSE_TEXT_CODE and segments["OBR"][25] == "F"
        # a corrected value changes the text: sent again, result status C (corrected)
        Study.objects.filter(pk=study.pk).update(dlp_total_mgycm=(study.dlp_total_mgycm or 0) + 100.0)
        study.refresh_from_db()
        assert len(interop_after_studies_recorded([study.pk])) == 1
        corrected = peer.received[-1]
        assert len(peer.received) == 3 and corrected.split("\r")[2].split("|")[25] == "C"
        assert _obx_lines(corrected) == summary_text(study).splitlines() != _obx_lines(oru)
    finally:
        peer.stop()


@pytest.mark.django_db
def test_oru_with_pseudonymisation_carries_the_pseudonym_and_the_accession(corpus, settings, ris,
                                                                           tasks_in_process):
    settings.PSEUDONYM_KEY = "hl7-key"
    import_corpus(corpus, "rf/Dual-RDSR-RF.dcm")
    study = Study.objects.get()
    ris.naks = 0
    interop_after_studies_recorded([study.pk])
    (oru,) = ris.received
    pid = next(s for s in oru.split("\r") if s.startswith("PID|")).split("|")
    assert pid[3] == study.patient.patient_id and len(pid[3]) == 64  # the pseudonym, no issuer
    assert pid[5] == "" and (len(pid) < 8 or pid[7] == "")  # no name, no birth date
    obr = next(s for s in oru.split("\r") if s.startswith("OBR|")).split("|")
    assert obr[3] == hl7.escape(study.accession_number)


def test_a_ris_that_does_not_answer_leaves_the_delivery_pending(db, corpus, settings, tasks_in_process,
                                                               monkeypatch):
    import_corpus(corpus, "nm/NM-NmIm-Siemens.dcm")
    study = Study.objects.get()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    settings.HL7_RIS_HOST, settings.HL7_RIS_PORT, settings.FHIR_BASE_URL = "127.0.0.1", silent.getsockname()[1], ""
    settings.INTEROP_MAX_ATTEMPTS = 2
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    monkeypatch.setattr(push, "MLLP_TIMEOUT_S", 0.5)
    try:
        (pk,) = interop_after_studies_recorded([study.pk])
        delivery = Delivery.objects.get(pk=pk)
        assert delivery.state == "pending" and "timed out" in delivery.last_error.lower()
        settings.HL7_RIS_PORT = closed.getsockname()[1]  # nobody listening there now
        Delivery.objects.filter(pk=pk).update(destination=f"127.0.0.1:{closed.getsockname()[1]}")
        deliveries_retry_due(now=timezone.now() + dt.timedelta(hours=2))
        delivery.refresh_from_db()
        assert delivery.state == "failed" and delivery.attempts == 2  # DOSEREG_INTEROP_MAX_ATTEMPTS reached
    finally:
        silent.close()
        closed.close()


# --- inbound ------------------------------------------------------------------------------------------------------
def _adt(trigger: str, pid: str, *, mrg: str = "", name: str = "", birth: str = "", sex: str = "",
         control: str = "MSG1") -> str:
    segments = [f"MSH|^~\\&|MPI|HOSP|DOSEREG|HOSP|20260101120000||ADT^{trigger}^ADT_A39|{control}|P|2.5.1",
                f"EVN|{trigger}|20260101120000", f"PID|1||{pid}||{name}||{birth}|{sex}"]
    if mrg:
        segments.append(f"MRG|{mrg}")
    return "\r".join(segments) + "\r"


@pytest.fixture
def mllp_listener(transactional_db):
    listener = inbound.mllp_listener("127.0.0.1", 0).start()
    yield listener
    listener.stop()



def test_each_mpi_connection_gives_back_its_database_session(corpus, mllp_listener):
    """hl7_listen serves each MLLP connection in a thread of its own; the thread's database session ends with the
    connection (they had stayed open, one more for every connection the MPI opened, until the process ended)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("database sessions are counted on PostgreSQL")
    a, _ = _two_patients(corpus)

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("select count(*) from pg_stat_activity where datname = current_database()")
            return cursor.fetchone()[0]

    before = sessions()
    for n in range(3):  # a new connection each time, as an MPI that reconnects for every message
        ack = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port,
                                              _adt("A08", a.patient.patient_id, name="DOE^JANE", control=f"S{n}")))
        assert ack.code == hl7.ACCEPT
    deadline = time.time() + 10
    while sessions() > before and time.time() < deadline:
        time.sleep(0.1)
    assert sessions() == before

def _two_patients(corpus) -> tuple[Study, Study]:
    import_corpus(corpus, "ct/CT-ESR-GE_Optima.dcm", "rf/Dual-RDSR-RF.dcm")
    a, b = Study.objects.order_by("pk")
    assert a.patient_id != b.patient_id
    return a, b


def test_adt_a40_joins_the_two_histories_and_can_be_undone(corpus, mllp_listener):
    survivor, merged = _two_patients(corpus)
    old_patient = merged.patient
    answer = mllp.send_message("127.0.0.1", mllp_listener.port,
                               _adt("A40", survivor.patient.patient_id, mrg=old_patient.patient_id))
    ack = hl7.parse_ack(answer)
    assert ack.code == "AA" and ack.control_id == "MSG1", ack
    assert set(Study.objects.filter(patient=survivor.patient).values_list("pk", flat=True)) == {survivor.pk,
                                                                                                  merged.pk}
    assert "merged" in Patient.objects.get(pk=old_patient.pk).flags
    entry = AuditLog.objects.get(action="patient_merge")
    assert entry.detail["studies"] == [merged.pk] and entry.detail["source"] == "hl7 ADT^A40"
    # the administrator undoes it
    patient_merge_undo(audit_id=entry.pk)
    assert Study.objects.get(pk=merged.pk).patient_id == old_patient.pk
    # a merge of a patient DoseReg never saw is acknowledged, nothing changes
    again = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port,
                                            _adt("A40", "NEW-1", mrg="NEVER-SEEN", control="MSG2")))
    assert again.code == "AA" and "nothing to merge" in again.text


def test_adt_a40_to_a_new_surviving_id_and_a08_update(corpus, mllp_listener):
    survivor, _ = _two_patients(corpus)
    old = survivor.patient
    ack = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port,
                                          _adt("A40", "MPI-77^^^HOSP", mrg=old.patient_id)))
    assert ack.code == "AA"
    new = Patient.objects.get(patient_id="MPI-77", issuer="HOSP")
    assert Study.objects.get(pk=survivor.pk).patient_id == new.pk
    ack = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port,
                                          _adt("A08", "MPI-77^^^HOSP", name="Doe^Jane", birth="19700102", sex="F")))
    assert ack.code == "AA" and "updated" in ack.text
    new.refresh_from_db()
    assert (new.name, new.birth_date, new.sex) == ("Doe^Jane", dt.date(1970, 1, 2), "F")


def test_pseudonymised_site_hashes_inbound_ids(corpus, mllp_listener, settings):
    settings.PSEUDONYM_KEY = "adt-key"
    survivor, merged = _two_patients(corpus)
    # the MPI sends the hospital's IDs: the corpus files' Patient IDs, hashed here with the same key
    ids = {pydicom.dcmread(corpus / f, stop_before_pixels=True).StudyInstanceUID:
           str(pydicom.dcmread(corpus / f, stop_before_pixels=True).PatientID)
           for f in ("ct/CT-ESR-GE_Optima.dcm", "rf/Dual-RDSR-RF.dcm")}
    assert survivor.patient.patient_id == patient_pseudonym(ids[survivor.study_instance_uid], survivor.patient.issuer)
    ack = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port,
                                          _adt("A40", ids[survivor.study_instance_uid],
                                               mrg=ids[merged.study_instance_uid])))
    assert ack.code == "AA", ack
    assert Study.objects.get(pk=merged.pk).patient_id == survivor.patient_id
    ack = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port,
                                          _adt("A08", ids[survivor.study_instance_uid], name="Doe^Jane",
                                               birth="19700102", sex="F")))
    patient = Patient.objects.get(pk=survivor.patient_id)
    assert ack.code == "AA" and patient.name == "" and patient.birth_date is None  # never stored


@pytest.mark.parametrize(("message", "code", "reason"), [
    ("MSH|^~\\&|MPI|HOSP|DOSEREG|HOSP|20260101||ORM^O01|X1|P|2.5.1\rPID|1||A\r", "AR", "not accepted"),
    ("MSH|^~\\&|MPI|HOSP|DOSEREG|HOSP|20260101||ADT^A01|X2|P|2.5.1\rPID|1||A\r", "AR", "not accepted"),
    ("MSH|^~\\&|MPI|HOSP|DOSEREG|HOSP|20260101||ADT^A40|X3|P|2.5.1\rPID|1||A\r", "AE", "MRG-1"),
    ("MSH|^~\\&|MPI|HOSP|DOSEREG|HOSP|20260101||ADT^A08|X4|P|2.5.1\rPID|1||\r", "AE", "PID-3"),
    ("this is not HL7", "AR", "no MSH"),
])
def test_bad_messages_get_a_reject_or_error_ack(mllp_listener, message, code, reason):
    ack = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port, message))
    assert ack.code == code and reason in ack.text
    # the listener is still there
    assert hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port, message)).code == code


def test_hl7_listen_command_answers_over_mllp(tmp_path, migrated_template):
    data = new_data_dir(migrated_template, tmp_path / "hl7")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "manage.py", "hl7_listen"], cwd=REPO,
                            env=embedded_env(data, DOSEREG_HL7_LISTEN_PORT=str(port),
                                             DOSEREG_HL7_LISTEN_BIND="127.0.0.1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        answer = None
        while answer is None and time.time() < deadline:
            try:
                answer = mllp.send_message("127.0.0.1", port, _adt("A40", "A", mrg="B"), timeout=5)
            except mllp.MLLPError:
                time.sleep(0.3)
        assert answer is not None and hl7.parse_ack(answer).code == "AA"
    finally:
        proc.terminate()
        proc.wait(10)


def test_adt_a40_reevaluates_the_cumulative_window(corpus, mllp_listener, tmp_path, tasks_in_process):
    """Two procedures 2 days apart recorded under two IDs: no window alert; once merged, the window holds both."""
    rule_save(rule=None, user=None, data=dict(
        key="test-kap-window", name="test window", modality_type="fluoroscopy", quantity="kap_total_gycm2",
        plane_mode="sum", threshold=0.3, unit="Gy·cm²", scope="patient_window", window_days=7,
        severity="notification", source="test"))
    other = pydicom.dcmread(corpus / "rf" / "RF-RDSR-Siemens-Zee_adjusted.dcm")
    other.PatientID = f"{other.PatientID}-OTHER"
    other.save_as(tmp_path / "other.dcm", enforce_file_format=True)
    import_corpus(corpus, "rf/RF-RDSR-Siemens-Zee.dcm")
    import_corpus(tmp_path.parent, f"{tmp_path.name}/other.dcm")
    first, second = Study.objects.order_by("study_date")
    assert first.patient_id != second.patient_id
    for study in (first, second):
        check_study(study.pk)
    assert not Alert.objects.filter(rule__key="test-kap-window").exists()

    ack = hl7.parse_ack(mllp.send_message("127.0.0.1", mllp_listener.port,
                                          _adt("A40", second.patient.patient_id, mrg=first.patient.patient_id)))
    assert ack.code == "AA"
    alert = Alert.objects.get(rule__key="test-kap-window")
    assert alert.study_id == second.pk and alert.patient_id == second.patient_id
    assert [p["study_id"] for p in alert.details["procedures"]] == [first.pk, second.pk]
