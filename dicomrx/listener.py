"""The DICOM listener: Storage SCP and Verification SCP (pynetdicom), durable receive, ingest afterwards.

Per C-STORE the handler (PS3.4 B.2.3 statuses):

1. reads only the top level of the received object (SOP class and instance, Study UID, modality and, for an SR, the
   root concept) from the temporary file pynetdicom streamed it to (bounded memory: the object is never held whole
   in memory while it arrives), never the content tree;
2. answers 0xA900 when the SOP class in the object is not the one in the request, 0xC000 when the top level cannot
   be decoded or the SOP instance does not match, each with an Error Comment;
3. keeps the encoded object in the inbox (the streamed file itself, linked into place) and commits a
   ReceivedObject row (:func:`dicomrx.storage.store_received_file`); for images only the header is kept (the bytes
   up to Pixel Data, written to a new file the same way); the objects of all associations arriving at the same
   time are made durable together (``StoreTogether``: one flush to disk, syncfs on Linux, then one INSERT of
   their rows; an object alone: fsync of the file and of its directory, then its INSERT); 0xA700 when that fails
   (disk full, database down) so the sender retries;
4. only then answers 0x0000 and wakes the ingest (a Celery task with a broker, else the ingest child process).

An SR that turns out not to be a dose report is acknowledged and recorded as rejected by ingest: a PACS that
forwards every SR would otherwise retry it forever.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone
from pydicom import uid as tsuid
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pynetdicom import AE, _config, evt
from pynetdicom.sop_class import Verification

from dicomrx import diskspace, dispatch, reactor
from dicomrx.models import AllowedCallingAE, ListenerStatus, RefusedObject
from dicomrx.parse import _raw
from dicomrx.qr import QRHandlers
from dicomrx.storage import StorageError, StoreTogether, TopLevel, store_received_file, store_received_object

log = logging.getLogger("dicomrx.listener")

# --- SOP classes (PS3.4 Annex B.5) ------------------------------------------------------------------------------
DOSE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.68": "Radiopharmaceutical Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.76": "Enhanced X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.73": "Patient Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR (older CT dose reports, private summaries)",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR (older CT dose reports)",
}
IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.2": "Digital Mammography X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "Digital Mammography X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.3": "Digital Intra-Oral X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "Digital Intra-Oral X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.13.1.3": "Breast Tomosynthesis Image Storage",
    "1.2.840.10008.5.1.4.1.1.13.1.4": "Breast Projection X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.13.1.5": "Breast Projection X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.12.1": "X-Ray Angiographic Image Storage",
    "1.2.840.10008.5.1.4.1.1.12.1.1": "Enhanced XA Image Storage",
    "1.2.840.10008.5.1.4.1.1.12.2": "X-Ray Radiofluoroscopic Image Storage",
    "1.2.840.10008.5.1.4.1.1.12.2.1": "Enhanced XRF Image Storage",
    "1.2.840.10008.5.1.4.1.1.20": "Nuclear Medicine Image Storage",
    "1.2.840.10008.5.1.4.1.1.128": "Positron Emission Tomography Image Storage",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
}

# --- transfer syntaxes (PS3.5 Annex A) ----------------------------------------------------------------------------
UNCOMPRESSED_SYNTAXES = [
    tsuid.ExplicitVRLittleEndian, tsuid.ImplicitVRLittleEndian, tsuid.DeflatedExplicitVRLittleEndian,
    tsuid.ExplicitVRBigEndian,
]
IMAGE_SYNTAXES = UNCOMPRESSED_SYNTAXES + [
    tsuid.JPEGBaseline8Bit, tsuid.JPEGExtended12Bit, tsuid.JPEGLossless, tsuid.JPEGLosslessSV1,
    tsuid.JPEGLSLossless, tsuid.JPEGLSNearLossless, tsuid.JPEG2000Lossless, tsuid.JPEG2000,
    tsuid.RLELossless, tsuid.HTJ2KLossless, tsuid.HTJ2KLosslessRPCL, tsuid.HTJ2K,
]

# DIMSE statuses of the Storage Service Class (PS3.4 Table B.2-1) and Verification
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
SOP_CLASS_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000

MAX_PDU_SIZE = 1 << 20
RECEIVING_WINDOW = 2.0  # seconds after a C-STORE during which the embedded ingest gathers batches (dicomrx.dispatch)
_CONCEPT_NAME = 0x0040A043
_PIXEL_DATA_TAGS = 0x7FE00008  # Float Pixel Data, Double Float Pixel Data, Pixel Data: the header ends before these


def accepted_sop_classes(accept_images: bool | None = None) -> dict[str, str]:
    classes = dict(DOSE_SOP_CLASSES)
    if settings.DICOM_ACCEPT_IMAGES if accept_images is None else accept_images:
        classes.update(IMAGE_SOP_CLASSES)
    return classes


def syntaxes_for(sop_class: str) -> list[str]:
    return list(UNCOMPRESSED_SYNTAXES) if sop_class in DOSE_SOP_CLASSES else list(IMAGE_SYNTAXES)


# --- the top level ---------------------------------------------------------------------------------------------
class TopLevelError(Exception):
    """The top level of a received object cannot be decoded."""


@dataclass(frozen=True)
class ReceivedFile:
    """What is kept of a received object and what was decoded of it."""
    top: TopLevel
    data: bytes | None  # None: keep the received file as it is (``path``), without reading it into memory
    root_concept: tuple[str, str] | None = None
    header_only: bool = False
    path: Path | None = None


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        value = "\\".join(str(v) for v in value)
    return str(value).strip().rstrip("\x00").strip()


def read_received_file(path: Path, *, header_only: bool) -> ReceivedFile:
    """Decode the top level of a Part 10 file and return the bytes to keep.

    SR objects are kept whole and read up to the root Concept Name Code Sequence (0040,A043): the content tree
    that follows is not touched.  Images (``header_only``) are read and kept up to Pixel Data.
    """
    stop_at = _PIXEL_DATA_TAGS if header_only else _CONCEPT_NAME + 1
    try:
        with open(path, "rb") as fp:
            ds = read_partial(fp, stop_when=lambda tag, vr, length: tag >= stop_at)
            offset = fp.tell()
            syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
            top = TopLevel(sop_instance_uid=_text(ds, "SOPInstanceUID"), sop_class_uid=_text(ds, "SOPClassUID"),
                           study_instance_uid=_text(ds, "StudyInstanceUID"), modality=_text(ds, "Modality"))
            root = None
            if not header_only and "ConceptNameCodeSequence" in ds and ds.ConceptNameCodeSequence:
                item = ds.ConceptNameCodeSequence[0]
                root = (_text(item, "CodingSchemeDesignator"), _text(item, "CodeValue"))
            size = os.fstat(fp.fileno()).st_size
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on garbled bytes; all mean "undecodable"
        raise TopLevelError(f"top level not decodable (truncated or garbled encoding): {str(exc)[:80]}") from exc
    if not top.sop_instance_uid:
        raise TopLevelError("no SOP Instance UID at the top level")
    if not top.sop_class_uid:
        raise TopLevelError("no SOP Class UID at the top level")
    if not header_only:
        _check_structure(path, syntax)
    if not header_only or offset >= size:
        return ReceivedFile(top=top, data=None, path=Path(path), root_concept=root)
    if syntax == tsuid.DeflatedExplicitVRLittleEndian:
        return ReceivedFile(top=top, data=_reencode_header(ds), header_only=True)
    with open(path, "rb") as fp:
        return ReceivedFile(top=top, data=fp.read(offset), header_only=True)


_RAW_SYNTAXES = frozenset({tsuid.ImplicitVRLittleEndian, tsuid.ExplicitVRLittleEndian, ""})


def _check_structure(path, syntax: str) -> None:
    """A dose SR whose data set cannot be walked beyond its top level (garbage after valid UIDs, a truncated value,
    a broken sequence) is refused 0xC000 now, not acknowledged and then rejected at ingest.  Element headers and
    sequence delimiters only, no values decoded: well under a millisecond for a usual report, ~50 ms for 316
    events.  Deflated and big-endian objects are checked when the parser re-encodes them."""
    if syntax not in _RAW_SYNTAXES:
        return
    try:
        with open(path, "rb") as fp:
            _raw.scan_top_level(fp.read())
    except (_raw.RawError, struct.error) as exc:
        raise TopLevelError(f"the data set cannot be read beyond its top level: {exc}") from exc


def _reencode_header(ds: Dataset) -> bytes:
    """A deflated image's header, inflated and written as Explicit VR Little Endian (the pixels are dropped)."""
    ds.file_meta.TransferSyntaxUID = tsuid.ExplicitVRLittleEndian
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _status(code: int, comment: str = "") -> Dataset | int:
    if not comment:
        return code
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]  # LO
    return ds


# --- allowlist --------------------------------------------------------------------------------------------------
def _parse_entry(entry: str) -> tuple[str, str]:
    name, _, host = entry.partition("@")
    return name.strip(), host.strip()


def effective_allowlist() -> list[tuple[str, str]]:
    """(AE title, host or '') entries from DOSEREG_ALLOWED_CALLING_AETS and the active AllowedCallingAE rows.

    '*' in the setting adds nothing: an empty result means any caller is accepted."""

    entries = [_parse_entry(e) for e in settings.ALLOWED_CALLING_AETS if e.strip() != "*"]
    entries += list(AllowedCallingAE.objects.filter(active=True).values_list("ae_title", "host"))
    return entries


_resolved: dict[str, tuple[float, set[str]]] = {}


def _host_addresses(host: str) -> set[str]:
    now = time.monotonic()
    cached = _resolved.get(host)
    if cached and now - cached[0] < 60:
        return cached[1]
    try:
        addresses = {host} | set(socket.gethostbyname_ex(host)[2])
    except OSError:
        addresses = {host}
    _resolved[host] = (now, addresses)
    return addresses


def caller_allowed(calling_ae: str, peer_address: str, entries: list[tuple[str, str]]) -> bool:
    if not entries:
        return True
    calling_ae = calling_ae.strip()
    for name, host in entries:
        if name.strip() == calling_ae and (not host or peer_address in _host_addresses(host)):
            return True
    return False


# --- the listener -----------------------------------------------------------------------------------------------
@dataclass
class Counters:
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    rejected_associations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def _record_refusal(**fields) -> None:
    try:
        RefusedObject.objects.create(**fields)
    except Exception as exc:  # noqa: BLE001 - the refusal is answered and logged even if it cannot be recorded
        log.warning("cannot record the refusal (%s): %s", type(exc).__name__, fields.get("reason"))


def _keep_connection_usable() -> None:
    """An association's thread keeps its database connection from object to object: opening one per object (what
    close_old_connections does with CONN_MAX_AGE 0) cost as much CPU as storing the object.  A connection that saw
    an error and no longer answers is dropped; it is closed for good when the association ends."""
    conn = connections["default"]
    if conn.connection is not None and conn.errors_occurred:
        if conn.is_usable():
            conn.errors_occurred = False
        else:
            conn.close()


class StoreHandler:
    """The C-STORE handler, shared by the listener and the C-GET of ``pacs_pull``."""
    def __init__(self, *, source: str, on_stored, counters: Counters | None = None, accept_images: bool | None = None,
                 together: StoreTogether | None = None):
        self.source = source
        self.together = together  # the listener's associations made durable together (one barrier, one INSERT)
        self.on_stored = on_stored
        self.counters = counters or Counters()
        self.accept_images = settings.DICOM_ACCEPT_IMAGES if accept_images is None else accept_images
        self.last_store_at = float("-inf")  # time.monotonic() of the last C-STORE request

    def __call__(self, event) -> Dataset | int:
        self.last_store_at = time.monotonic()
        _keep_connection_usable()
        own_tmp: Path | None = None
        try:
            try:
                path = event.dataset_path
            except AttributeError:
                path = None
            if path is None:  # chunked receive off (a caller changed pynetdicom's config): spill to a file
                with tempfile.NamedTemporaryFile(suffix=".dcm", delete=False) as tmp:
                    tmp.write(event.encoded_dataset())
                path = own_tmp = Path(tmp.name)
            return self._store(event, path)
        finally:
            if own_tmp is not None:  # moved into the inbox by then, or refused
                own_tmp.unlink(missing_ok=True)

    def _store(self, event, path: Path) -> Dataset | int:
        req = event.request
        calling_ae = event.assoc.requestor.ae_title.strip() if event.assoc.is_acceptor else \
            event.assoc.acceptor.ae_title.strip()
        peer = event.assoc.requestor.address if event.assoc.is_acceptor else event.assoc.acceptor.address
        rq_class, rq_instance = str(req.AffectedSOPClassUID), str(req.AffectedSOPInstanceUID)
        refusal = dict(kind="c-store", calling_ae=calling_ae[:16], peer_address=str(peer)[:64],
                       sop_class_uid=rq_class[:64], sop_instance_uid=rq_instance[:128])
        try:
            received = read_received_file(path, header_only=rq_class in IMAGE_SOP_CLASSES)
        except TopLevelError as exc:
            log.warning("C-STORE from %s refused 0xC000: %s (SOP instance %s)", calling_ae, exc, rq_instance)
            self.counters.add("refused")
            _record_refusal(status=CANNOT_UNDERSTAND, reason=str(exc), **refusal)
            return _status(CANNOT_UNDERSTAND, str(exc))
        top = received.top
        if top.sop_class_uid != rq_class:
            reason = f"SOP Class UID in the data set {top.sop_class_uid} is not the requested {rq_class}"
            log.warning("C-STORE from %s refused 0xA900: %s", calling_ae, reason)
            self.counters.add("refused")
            _record_refusal(status=SOP_CLASS_MISMATCH, reason=reason, **refusal)
            return _status(SOP_CLASS_MISMATCH, "SOP Class UID does not match the request")
        if top.sop_instance_uid != rq_instance:
            reason = f"SOP Instance UID in the data set {top.sop_instance_uid} is not the requested {rq_instance}"
            log.warning("C-STORE from %s refused 0xC000: %s", calling_ae, reason)
            self.counters.add("refused")
            _record_refusal(status=CANNOT_UNDERSTAND, reason=reason, **refusal)
            return _status(CANNOT_UNDERSTAND, "SOP Instance UID does not match the request")
        try:
            diskspace.ensure_room(path)  # below DOSEREG_DICOM_MIN_FREE_MB: 0xA700 for this object, nothing aborted
            if received.data is None:
                row, created = store_received_file(received.path, top, source=self.source, calling_ae=calling_ae,
                                                   peer_address=str(peer), together=self.together)
            else:
                row, created = store_received_object(received.data, top, source=self.source, calling_ae=calling_ae,
                                                     peer_address=str(peer), together=self.together)
        except (StorageError, DatabaseError) as exc:  # disk full, database down or locked: the sender retries
            log.error("C-STORE from %s answered 0xA700: %s (SOP instance %s)", calling_ae,
                      exc if isinstance(exc, StorageError) else type(exc).__name__, rq_instance)
            self.counters.add("refused")
            _record_refusal(status=OUT_OF_RESOURCES, reason=str(exc) if isinstance(exc, StorageError)
                            else "database unavailable", **refusal)
            connections.close_all()  # a broken connection must not serve the next object
            return _status(OUT_OF_RESOURCES, str(exc))
        self.counters.add("stored" if created else "duplicates")
        log.info("stored %s %s from %s (%s%s)", DOSE_SOP_CLASSES.get(rq_class) or IMAGE_SOP_CLASSES.get(rq_class),
                 rq_instance, calling_ae, "new" if created else "identical bytes again",
                 f", root concept {received.root_concept[1]} ({received.root_concept[0]})"
                 if received.root_concept else "")
        if created and self.on_stored is not None:
            self.on_stored(row.pk)
        return SUCCESS


class Listener:
    """The Storage + Verification SCP with its ingest dispatcher and heartbeat."""
    def __init__(self, *, bind: str | None = None, port: int | None = None, ae_title: str | None = None,
                 ingest: bool = True, heartbeat_interval: float = 10.0):

        self.bind = settings.DICOM_BIND if bind is None else bind
        self.port = settings.DICOM_PORT if port is None else port
        self.ae_title = ae_title or settings.DICOM_AE_TITLE
        self.counters = Counters()
        self.dispatcher = dispatch.make_dispatcher(receiving=self._receiving, receiving_window=RECEIVING_WINDOW) \
            if ingest else None
        self.heartbeat_interval = heartbeat_interval
        self.server = None
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._last_refusal_logged: dict[tuple[str, str], float] = {}
        self.store_handler = StoreHandler(source="c-store", counters=self.counters,
                                          on_stored=self.dispatcher.notify if self.dispatcher else None,
                                          together=StoreTogether())
        self.qr = QRHandlers(DOSE_SOP_CLASSES, UNCOMPRESSED_SYNTAXES)  # query/retrieve of the stored dose SRs

    def _receiving(self) -> bool:
        """Objects are arriving: an association is open and a C-STORE came in within the last RECEIVING_WINDOW
        seconds (an association a PACS keeps open without sending does not hold the ingest back)."""
        return bool(self.server is not None and time.monotonic() - self.store_handler.last_store_at < RECEIVING_WINDOW
                    and self.server.active_associations)

    # -- pynetdicom set-up
    def make_ae(self) -> AE:
        _config.STORE_RECV_CHUNKED_DATASET = True  # stream each object to a temporary file: bounded memory
        ae = AE(ae_title=self.ae_title)
        ae.require_called_aet = True  # another called AE title: A-ASSOCIATE-RJ, "called AE title not recognised"
        ae.maximum_associations = settings.DICOM_MAX_ASSOCIATIONS
        # 1 MiB PDUs: far fewer Python-level PDU round trips than the default 16 kB, and still bounded memory
        ae.maximum_pdu_size = MAX_PDU_SIZE
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 60
        ae.add_supported_context(Verification)
        for sop_class in accepted_sop_classes():
            ae.add_supported_context(sop_class, syntaxes_for(sop_class))
        self.qr.add_contexts(ae)
        return ae

    def ssl_context(self) -> ssl.SSLContext | None:
        if not (settings.DICOM_TLS_CERT and settings.DICOM_TLS_KEY):
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY)
        if settings.DICOM_TLS_CA:
            ctx.load_verify_locations(settings.DICOM_TLS_CA)
            ctx.verify_mode = ssl.CERT_REQUIRED  # callers must present a certificate signed by this CA
        return ctx

    # -- event handlers
    def on_requested(self, event) -> None:
        """Apply the calling-AE allowlist before negotiation: A-ASSOCIATE-RJ permanent, 'calling AE not recognised'."""
        assoc = event.assoc
        calling_ae = assoc.requestor.primitive.calling_ae_title.strip()
        peer = str(assoc.requestor.address)
        try:
            close_old_connections()
            entries = effective_allowlist()
        except Exception as exc:  # noqa: BLE001 - database down: refuse transiently, the sender retries later
            log.error("allowlist unavailable (%s): association from %s@%s rejected (transient)",
                      type(exc).__name__, calling_ae, peer)
            connections.close_all()
            assoc.acse.send_reject(0x02, 0x01, 0x01)
            assoc.kill()
            return
        if caller_allowed(calling_ae, peer, entries):
            return
        self.counters.add("rejected_associations")
        log.warning("association from %s@%s rejected: calling AE title not recognised", calling_ae, peer)
        key, now = (calling_ae, peer), time.monotonic()
        if now - self._last_refusal_logged.get(key, -1e9) > 60:  # a retrying sender adds one row a minute at most
            self._last_refusal_logged[key] = now
            _record_refusal(kind="association", calling_ae=calling_ae[:16], peer_address=peer[:64],
                            reason="calling AE title not recognised (A-ASSOCIATE-RJ permanent, diagnostic 3)")
        connections.close_all()
        assoc.acse.send_reject(0x01, 0x01, 0x03)
        assoc.kill()

    def on_echo(self, event) -> int:
        return SUCCESS

    def on_connection_open(self, event) -> None:
        """No Nagle delay on the small C-STORE responses (else about 40 ms per object on loopback)."""
        try:
            event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (AttributeError, OSError):
            pass
        if hasattr(self.dispatcher, "connection_opened"):  # the ingest child gathers batches while senders are on
            self.dispatcher.connection_opened()

    def on_connection_close(self, event) -> None:
        if hasattr(self.dispatcher, "connection_closed"):
            self.dispatcher.connection_closed()

    @staticmethod
    def on_association_end(event) -> None:
        connections.close_all()  # this association's thread ends: give its database connection back

    def handlers(self) -> list:
        return [(evt.EVT_CONN_OPEN, self.on_connection_open), (evt.EVT_CONN_CLOSE, self.on_connection_close),
                (evt.EVT_REQUESTED, self.on_requested), (evt.EVT_C_STORE, self.store_handler),
                (evt.EVT_C_ECHO, self.on_echo), (evt.EVT_RELEASED, self.on_association_end),
                (evt.EVT_ABORTED, self.on_association_end)] + self.qr.handlers()

    # -- life cycle
    def start(self) -> None:
        tmp_dir = settings.DATA_DIR / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(tmp_dir)  # the streamed objects land on the inbox's file system, not in a tmpfs
        for stale in tmp_dir.glob("tmp*.dcm"):
            stale.unlink(missing_ok=True)  # left by a killed listener; never acknowledged
        entries = effective_allowlist()
        if not entries:
            log.warning("no calling-AE allowlist (DOSEREG_ALLOWED_CALLING_AETS unset or '*' and no entries on the "
                        "admin page): any calling AE title may store objects")
        ctx = self.ssl_context()
        self.ae = self.make_ae()
        self.server = reactor.serve(self.ae, (self.bind, self.port), ssl_context=ctx, evt_handlers=self.handlers())
        self.port = self.server.server_address[1]
        log.info("DICOM listener %s on %s:%s%s, up to %s associations, images %s", self.ae_title, self.bind,
                 self.port, " (TLS)" if ctx else "", settings.DICOM_MAX_ASSOCIATIONS,
                 "accepted" if settings.DICOM_ACCEPT_IMAGES else "not accepted")
        if self.dispatcher:
            self.dispatcher.start()
        self._beat()
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="dicom-heartbeat", daemon=True)
        self._heartbeat.start()

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.shutdown()
        if self.dispatcher:
            self.dispatcher.stop()
        try:
            self._beat(stopped=True)
        finally:
            connections.close_all()
        together = self.store_handler.together
        log.info("DICOM listener %s stopped (%d objects made durable in %d flushes)", self.ae_title, together.objects,
                 together.groups)

    @property
    def status_name(self) -> str:
        return f"{self.ae_title}@{socket.gethostname()}:{self.port}"[:120]

    def _beat(self, stopped: bool = False) -> None:

        now = timezone.now()
        try:
            close_old_connections()
            entries = effective_allowlist()
            ListenerStatus.objects.update_or_create(name=self.status_name, defaults=dict(
                hostname=socket.gethostname()[:100], pid=os.getpid(), ae_title=self.ae_title,
                bind=self.bind[:100], port=self.port, tls=bool(settings.DICOM_TLS_CERT), started_at=self.started_at,
                heartbeat_at=now, stopped_at=now if stopped else None, stored_count=self.counters.stored,
                refused_count=self.counters.refused + self.counters.rejected_associations,
                active_associations=len(self.server.active_associations) if self.server else 0,
                ingest_backlog=self.dispatcher.backlog() if self.dispatcher else 0,
                allowlist=", ".join(f"{a}@{h}" if h else a for a, h in entries) or "any calling AE"))
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat shows on the status page; never stop receiving
            log.warning("heartbeat not written: %s", type(exc).__name__)
            connections.close_all()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            self._beat()
