"""Query/retrieve of dose objects from a PACS (Study Root model, PS3.4 Annex C) for units that cannot push.

1. C-FIND STUDY: Study Date range, asking for Modalities in Study (kept when the PACS returns it, to filter by
   modality type);
2. C-FIND SERIES per study: Modality; SR series are candidates, image series too when header import is on;
3. C-FIND IMAGE per series asking for SOP Class UID: dose SOP classes (and the accepted image classes) are kept;
   a PACS that returns no SOP Class UID (DCMTK's dcmqrscp) falls back to the series modality;
4. SOP instances already held (any ReceivedObject with that SOP Instance UID) are dropped;
5. the rest is retrieved: C-MOVE to our own AE title (the listener receives them; the pull checks it with C-ECHO
   first and waits for the arrivals) or C-GET, received in-process through the same durable path
   (:class:`dicomrx.listener.StoreHandler`) and ingested.

Arrivals that ingest finds not to be dose objects are recorded as skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from dicomrx import ingest, listener, tasks
from dicomrx.management.commands.dicom_echo import echo
from dosereg.registry.models import ReceivedObject

log = logging.getLogger("dicomrx.pull")

# modality types (command convention) -> DICOM Modality values of image series and Modalities in Study
MODALITIES = {
    "CT": {"CT"},
    "fluoroscopy": {"XA", "RF"},
    "radiography": {"DX", "CR", "PX", "IO"},
    "mammography": {"MG"},
    "nuclear_medicine": {"NM", "PT"},
}
IMAGE_MODALITIES = set().union(*MODALITIES.values()) | {"OT"}  # OT: dose-info secondary captures
PENDING = (0xFF00, 0xFF01)


class PullError(Exception):
    """The pull cannot go on (PACS unreachable, association rejected, our listener not answering)."""


@dataclass
class Candidate:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str = ""
    modality: str = ""


@dataclass
class PullSummary:
    studies: int = 0
    series: int = 0
    candidates: int = 0
    already_held: int = 0
    requested: int = 0
    arrived: int = 0
    missing: list[str] = field(default_factory=list)
    states: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"studies": self.studies, "series": self.series, "candidates": self.candidates,
                "already_held": self.already_held, "requested": self.requested, "arrived": self.arrived,
                "missing": len(self.missing), "states": dict(self.states), "failures": self.failures}


class PacsPull:
    def __init__(self, *, host: str | None = None, port: int | None = None, called_ae: str | None = None,
                 retrieve: str | None = None, calling_ae: str | None = None, accept_images: bool | None = None,
                 arrival_timeout: float = 120.0, ingest_timeout: float = 300.0):
        self.host = host or settings.PACS_HOST
        self.port = port or settings.PACS_PORT
        self.called_ae = called_ae or settings.PACS_AE_TITLE
        self.retrieve = (retrieve or settings.PACS_RETRIEVE).lower()
        self.calling_ae = calling_ae or settings.DICOM_AE_TITLE
        self.accept_images = settings.DICOM_ACCEPT_IMAGES if accept_images is None else accept_images
        self.arrival_timeout = arrival_timeout
        self.ingest_timeout = ingest_timeout
        if not self.host:
            raise PullError("no PACS configured (set DOSEREG_PACS_HOST, DOSEREG_PACS_PORT, DOSEREG_PACS_AE_TITLE)")
        if self.retrieve not in ("move", "get"):
            raise PullError(f"retrieve must be 'move' or 'get', not {self.retrieve!r}")

    # -- associations
    def _associate(self, contexts: list, roles: list | None = None, handlers: list | None = None):
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.network_timeout = 30
        ae.dimse_timeout = 300
        for cx in contexts:
            ae.add_requested_context(*cx) if isinstance(cx, tuple) else ae.add_requested_context(cx)
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae, ext_neg=roles or [],
                             evt_handlers=handlers or [])
        if not assoc.is_established:
            why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not answered"
            raise PullError(f"association with {self.called_ae}@{self.host}:{self.port} {why}")
        return assoc

    def _find(self, assoc, query: Dataset) -> list[Dataset]:
        results = []
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            code = getattr(status, "Status", None)
            if code is None:
                raise PullError("C-FIND: the PACS stopped answering")
            if code in PENDING and identifier is not None:
                results.append(identifier)
            elif code not in PENDING and code != 0x0000:
                raise PullError(f"C-FIND failed with status 0x{code:04X}")
        return results

    # -- query
    def query(self, since: dt.date, until: dt.date | None = None, modality_types: list[str] | None = None,
              progress=None) -> tuple[list[Candidate], PullSummary]:
        summary = PullSummary()
        wanted = set().union(*(MODALITIES[m] for m in modality_types)) if modality_types else None
        assoc = self._associate([StudyRootQueryRetrieveInformationModelFind])
        try:
            q = Dataset()
            q.QueryRetrieveLevel = "STUDY"
            q.StudyDate = f"{since:%Y%m%d}-{until:%Y%m%d}" if until else f"{since:%Y%m%d}-"
            q.StudyInstanceUID = ""
            q.ModalitiesInStudy = ""
            studies = []
            for ident in self._find(assoc, q):
                uid = str(ident.get("StudyInstanceUID", "") or "")
                modalities = {str(m) for m in (ident.get("ModalitiesInStudy") or []) if m} \
                    if "ModalitiesInStudy" in ident else set()
                if isinstance(ident.get("ModalitiesInStudy"), str):
                    modalities = {ident.ModalitiesInStudy}
                if uid and (wanted is None or not modalities or modalities & wanted):
                    studies.append(uid)
            summary.studies = len(studies)
            candidates: list[Candidate] = []
            for study_uid in (progress(studies, len(studies), "query") if progress else studies):
                candidates += self._study_candidates(assoc, study_uid, wanted, summary)
        finally:
            assoc.release()
            connections.close_all()
        summary.candidates = len(candidates)
        held = set()
        uids = [c.sop_instance_uid for c in candidates]
        for i in range(0, len(uids), 500):
            held |= set(ReceivedObject.objects.filter(sop_instance_uid__in=uids[i:i + 500])
                        .values_list("sop_instance_uid", flat=True))
        summary.already_held = sum(1 for c in candidates if c.sop_instance_uid in held)
        return [c for c in candidates if c.sop_instance_uid not in held], summary

    def _study_candidates(self, assoc, study_uid: str, wanted: set | None, summary: PullSummary) -> list[Candidate]:
        q = Dataset()
        q.QueryRetrieveLevel = "SERIES"
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = ""
        q.Modality = ""
        out = []
        for series in self._find(assoc, q):
            modality = str(series.get("Modality", "") or "").upper()
            is_sr = modality in ("SR", "")
            if not is_sr and not (self.accept_images and modality in IMAGE_MODALITIES
                                  and (wanted is None or modality in wanted or modality == "OT")):
                continue
            summary.series += 1
            iq = Dataset()
            iq.QueryRetrieveLevel = "IMAGE"
            iq.StudyInstanceUID = study_uid
            iq.SeriesInstanceUID = str(series.SeriesInstanceUID)
            iq.SOPInstanceUID = ""
            iq.SOPClassUID = ""
            for image in self._find(assoc, iq):
                sop_uid = str(image.get("SOPInstanceUID", "") or "")
                sop_class = str(image.get("SOPClassUID", "") or "")
                if not sop_uid:
                    continue
                if sop_class:  # the PACS told us: keep dose SOP classes (and images when header import is on)
                    keep = sop_class in listener.DOSE_SOP_CLASSES or (self.accept_images and sop_class in listener.IMAGE_SOP_CLASSES)
                else:  # no SOP Class UID (dcmqrscp): fall back to the series modality
                    keep = True
                if keep:
                    out.append(Candidate(study_uid, str(series.SeriesInstanceUID), sop_uid, sop_class, modality))
        return out

    # -- retrieve
    def retrieve_candidates(self, candidates: list[Candidate], summary: PullSummary, progress=None) -> list[int]:
        """Retrieve; return the ids of the ReceivedObject rows that arrived."""
        if not candidates:
            return []
        summary.requested = len(candidates)
        if self.retrieve == "move":
            self._check_listener()
        wanted_uids = [c.sop_instance_uid for c in candidates]
        before = set(ReceivedObject.objects.filter(sop_instance_uid__in=wanted_uids).values_list("id", flat=True))
        stored_ids: list[int] = []
        if self.retrieve == "get":
            handler = listener.StoreHandler(source="query-retrieve", on_stored=stored_ids.append,
                                   accept_images=self.accept_images)
            classes = list(listener.DOSE_SOP_CLASSES) + (list(listener.IMAGE_SOP_CLASSES) if self.accept_images else [])
            contexts = [StudyRootQueryRetrieveInformationModelGet] + [
                (c, listener.UNCOMPRESSED_SYNTAXES if c in listener.DOSE_SOP_CLASSES else listener.IMAGE_SYNTAXES) for c in classes]
            roles = [build_role(c, scp_role=True) for c in classes]
            _config.STORE_RECV_CHUNKED_DATASET = True
            assoc = self._associate(contexts, roles, [(evt.EVT_C_STORE, handler)])
            model = StudyRootQueryRetrieveInformationModelGet
        else:
            assoc = self._associate([StudyRootQueryRetrieveInformationModelMove])
            model = StudyRootQueryRetrieveInformationModelMove
        try:
            for cand in (progress(candidates, len(candidates), "retrieve") if progress else candidates):
                q = Dataset()
                q.QueryRetrieveLevel = "IMAGE"
                q.StudyInstanceUID = cand.study_uid
                q.SeriesInstanceUID = cand.series_uid
                q.SOPInstanceUID = cand.sop_instance_uid
                if self.retrieve == "get":
                    responses = assoc.send_c_get(q, model)
                else:
                    responses = assoc.send_c_move(q, self.calling_ae, model)
                final = None
                for status, _identifier in responses:
                    code = getattr(status, "Status", None)
                    if code is not None and code not in PENDING:
                        final = code
                if final is None:
                    summary.failures.append(f"{cand.sop_instance_uid}: no answer")
                elif final != 0x0000:  # 0xB000: sub-operations failed; 0xA7xx, 0xC000...: refused
                    summary.failures.append(f"{cand.sop_instance_uid}: status 0x{final:04X}")
        finally:
            if assoc.is_established:
                assoc.release()
            connections.close_all()
        if self.retrieve == "move":
            arrived = self._wait_for_arrivals(wanted_uids, before)
        else:
            arrived = ReceivedObject.objects.filter(sop_instance_uid__in=wanted_uids).exclude(id__in=before)
            arrived = set(arrived.values_list("id", flat=True)) | set(stored_ids)
            self._ingest(sorted(arrived))
        arrived_uids = set(ReceivedObject.objects.filter(id__in=arrived).values_list("sop_instance_uid", flat=True))
        summary.arrived = len(arrived_uids)
        summary.missing = [u for u in wanted_uids if u not in arrived_uids]
        return sorted(arrived)

    def _check_listener(self) -> None:

        bind = settings.DICOM_BIND
        host = "127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind
        ok, message = echo(host, settings.DICOM_PORT, settings.DICOM_AE_TITLE, "DOSEREG_PULL", timeout=10)
        if not ok:
            raise PullError(f"our listener does not answer C-ECHO, C-MOVE arrivals would be lost: {message}")

    def _wait_for_arrivals(self, uids: list[str], before: set[int]) -> set[int]:
        deadline = time.monotonic() + self.arrival_timeout
        wanted = set(uids)
        while True:
            rows = ReceivedObject.objects.filter(sop_instance_uid__in=uids).exclude(id__in=before)
            found = dict(rows.values_list("id", "sop_instance_uid"))
            if wanted <= set(found.values()) or time.monotonic() > deadline:
                return set(found)
            time.sleep(0.5)

    def _ingest(self, ids: list[int]) -> None:
        """The arrivals through the batch path (a bad object is refused alone within its batch): as Celery tasks of
        INGEST_BATCH_SIZE objects, else here."""
        size = settings.INGEST_BATCH_SIZE
        batches = [ids[i:i + size] for i in range(0, len(ids), size)]
        if settings.CELERY_BROKER_URL:
            for batch in batches:
                tasks.ingest_objects.delay(batch)
            return
        for batch in batches:
            try:
                ingest.ingest_batch(batch)
            except Exception as exc:  # noqa: BLE001 - the database away: the batch stays 'received' for the retries
                log.error("ingest of %d pulled objects failed: %s", len(batch), type(exc).__name__)

    def settle(self, ids: list[int], summary: PullSummary) -> None:
        """Wait for ingest of the arrivals, mark non-dose arrivals as skipped, count the states."""
        deadline = time.monotonic() + self.ingest_timeout
        while ReceivedObject.objects.filter(id__in=ids, state=ReceivedObject.STATE_RECEIVED).exists() \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        # a PACS holds every SR of a study; an SR that is not a dose report was fetched on our guess, not sent
        ReceivedObject.objects.filter(id__in=ids, state=ReceivedObject.STATE_REJECTED,
                                      reason__startswith="not a dose object").update(
            state=ReceivedObject.STATE_SKIPPED)
        summary.states = Counter(ReceivedObject.objects.filter(id__in=ids).values_list("state", flat=True))

    def run(self, since: dt.date, until: dt.date | None = None, modality_types: list[str] | None = None,
            progress=None) -> PullSummary:
        candidates, summary = self.query(since, until, modality_types, progress)
        ids = self.retrieve_candidates(candidates, summary, progress)
        self.settle(ids, summary)
        log.info("PACS pull %s..%s: %s", since, until or "", summary.as_dict())
        return summary
