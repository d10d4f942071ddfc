"""Client-side helpers for the listener tests: corpus files by transfer syntax, raw C-STOREs, fresh-UID copies."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid
from pynetdicom import AE, _config

# storescu proposes compressed syntaxes only when asked: the option per transfer syntax of the file
STORESCU_PROPOSAL = {
    "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.57": "-xs", "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.80": "-xt", "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.1.99": "-xd",
}


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(corpus.rglob("*.dcm"))


def transfer_syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta.TransferSyntaxUID)


def dcmtk_reads(path: Path) -> bool:
    return subprocess.run(["dcmdump", "-q", str(path)], capture_output=True).returncode == 0


def push_files(port: int, files: list[Path], calling: str = "TESTSCU") -> list[tuple[Path, int]]:
    """Send each file (its own transfer syntax proposed) over one association; (file, status) pairs."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 60
    needed: dict[str, set[str]] = {}
    for f in files:
        meta = pydicom.dcmread(f, stop_before_pixels=True, force=True)
        needed.setdefault(str(meta.SOPClassUID), set()).add(str(meta.file_meta.TransferSyntaxUID))
    for sop_class, syntaxes in needed.items():
        for ts in syntaxes:
            ae.add_requested_context(sop_class, [ts])
    assoc = ae.associate("127.0.0.1", port, ae_title="DOSEREG")
    assert assoc.is_established
    out = []
    try:
        for f in files:
            status = assoc.send_c_store(f)
            out.append((f, getattr(status, "Status", None)))
    finally:
        assoc.release()
    return out


def send_raw(port: int, file_bytes_by_name: dict[str, bytes], tmp: Path, calling: str = "TESTSCU") -> dict:
    """C-STORE files as they are on disk (file meta gives the request's SOP class/instance, the data set is sent
    unparsed): how a garbled object or a mismatching one reaches the listener.  name -> status Dataset."""
    paths = {}
    for name, data in file_bytes_by_name.items():
        p = tmp / f"{name}.dcm"
        p.write_bytes(data)
        paths[name] = p
    old = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        ae = AE(ae_title=calling)
        ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 30
        for p in paths.values():
            meta = pydicom.filereader.read_file_meta_info(p)
            ae.add_requested_context(str(meta.MediaStorageSOPClassUID), [str(meta.TransferSyntaxUID)])
        assoc = ae.associate("127.0.0.1", port, ae_title="DOSEREG")
        assert assoc.is_established
        try:
            return {name: assoc.send_c_store(p) for name, p in paths.items()}
        finally:
            assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = old


def part10(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def with_meta(meta_class: str, meta_instance: str, dataset_bytes: bytes,
              syntax: str = "1.2.840.10008.1.2.1") -> bytes:
    """A Part 10 file whose file meta says (class, instance) around arbitrary data-set bytes."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import write_file_meta_info

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = meta_class
    meta.MediaStorageSOPInstanceUID = meta_instance
    meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta)
    return buf.getvalue() + dataset_bytes


def dataset_bytes(ds: pydicom.Dataset) -> bytes:
    """The encoded data set alone (Explicit VR Little Endian)."""
    full = part10(ds)
    buf = io.BytesIO(full)
    pydicom.filereader.read_preamble(buf, False)
    pydicom.filereader._read_file_meta_info(buf)
    return full[buf.tell():]


def fresh_copy(src: Path, dst: Path) -> str:
    """Copy a corpus file with new SOP Instance and Study UIDs (and the file meta to match); the new SOP UID."""
    ds = pydicom.dcmread(src)
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.StudyInstanceUID = generate_uid()
    ds.save_as(dst, enforce_file_format=True)
    return uid


def have(program: str) -> bool:
    return shutil.which(program) is not None
