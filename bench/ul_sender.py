"""A synchronous DICOM Upper Layer sender for the benchmarks: one association, the stored files sent as they are.

Why not pynetdicom: its chunked send (``STORE_SEND_CHUNKED_DATASET``) with TCP_NODELAY intermittently left an
association with both peers waiting (the receiver for data, pynetdicom for the C-STORE response) until the network
timeout, against DCMTK ``storescp --fork`` (association ended after 3-102 objects in most rounds) and once against
``dicom_listen`` (issue #14, 2026-12-07).  Without TCP_NODELAY it did not hang, but Nagle's algorithm then made
every C-STORE wait for the peer's delayed ACK (4x slower against plain ``storescp``), and DCMTK's ``storescu``
parses every file before sending it.  This sender reads nothing but the file meta group (for the SOP class, the
transfer syntax and where the data set starts), writes each request's PDUs with one ``sendall`` and blocks for the
response: no thread, no queue, no race.

PS3.8 §9.3 (PDU structure) and Annex E (message fragmentation); PS3.7 §9.3.1 (C-STORE-RQ command elements).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # DICOM Application Context Name, PS3.7 Annex A.2.1
IMPLICIT_VR_LE = "1.2.840.10008.1.2"  # command sets are always Implicit VR Little Endian (PS3.7 §6.3.1)
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1436.9.1"  # bench only
MAX_RECEIVE_PDU = 65536
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


class AssociationError(Exception):
    """The peer rejected, aborted or answered out of protocol."""


@dataclass(frozen=True)
class StoredFile:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    data_set: bytes


def _uid(value: bytes) -> str:
    return value.rstrip(b"\x00 ").decode("ascii")


def read_part10(path: Path) -> StoredFile:
    """The file meta group's UIDs and the data set's bytes of a DICOM Part 10 file (explicit VR little endian meta
    group after the 128-byte preamble and ``DICM``, PS3.10 §7.1)."""
    data = path.read_bytes()
    if data[128:132] != b"DICM":
        raise ValueError(f"{path}: not a DICOM Part 10 file")
    pos, meta = 132, {}
    while pos + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            (length,), value_at = struct.unpack_from("<I", data, pos + 8), pos + 12
        else:
            (length,), value_at = struct.unpack_from("<H", data, pos + 6), pos + 8
        meta[element] = data[value_at:value_at + length]
        pos = value_at + length
    return StoredFile(_uid(meta[0x0002]), _uid(meta[0x0003]), _uid(meta[0x0010]), data[pos:])


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBI", kind, 0, len(body)) + body


def _ae(title: str) -> bytes:
    return title.encode("ascii").ljust(16)[:16]


def associate_rq(called: str, calling: str, contexts: list[tuple[str, str]]) -> bytes:
    """A-ASSOCIATE-RQ proposing one presentation context (ids 1, 3, 5, ...) per (abstract, transfer syntax)."""
    items = _item(0x10, APPLICATION_CONTEXT.encode())
    for k, (abstract, transfer) in enumerate(contexts):
        items += _item(0x20, bytes([2 * k + 1, 0, 0, 0]) + _item(0x30, abstract.encode())
                       + _item(0x40, transfer.encode()))
    user = _item(0x51, struct.pack(">I", MAX_RECEIVE_PDU)) + _item(0x52, IMPLEMENTATION_CLASS_UID.encode())
    items += _item(0x50, user)
    return _pdu(0x01, struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32) + items)


def _element(tag: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00"  # UI values are padded with NULL to an even length
    return struct.pack("<HHI", 0x0000, tag, len(value)) + value


def c_store_rq(message_id: int, f: StoredFile) -> bytes:
    """The C-STORE-RQ command set (PS3.7 §9.3.1.1), Implicit VR Little Endian, with its group length."""
    body = (_element(0x0002, f.sop_class_uid.encode()) + _element(0x0100, struct.pack("<H", 0x0001))
            + _element(0x0110, struct.pack("<H", message_id)) + _element(0x0700, struct.pack("<H", 0))
            + _element(0x0800, struct.pack("<H", 0x0000)) + _element(0x1000, f.sop_instance_uid.encode()))
    return _element(0x0000, struct.pack("<I", len(body))) + body


def p_data(context_id: int, payload: bytes, *, command: bool, max_pdu: int) -> list[bytes]:
    """The P-DATA-TF PDUs carrying one message part, fragmented to the peer's maximum PDU length (PS3.8 Annex E);
    the control header's bit 0 marks a command, bit 1 the last fragment."""
    size = max_pdu - 6 if max_pdu else len(payload) or 1
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    out = []
    for n, piece in enumerate(pieces):
        control = (1 if command else 0) | (2 if n == len(pieces) - 1 else 0)
        pdv = struct.pack(">IBB", len(piece) + 2, context_id, control) + piece
        out.append(_pdu(0x04, pdv))
    return out


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise AssociationError("the peer closed the connection")
        buf += chunk
    return bytes(buf)


def recv_pdu(sock: socket.socket) -> tuple[int, bytes]:
    kind, _, length = struct.unpack(">BBI", _recv_exact(sock, 6))
    return kind, _recv_exact(sock, length)


def _accepted(body: bytes) -> tuple[dict[int, int], int]:
    """From an A-ASSOCIATE-AC: context id -> result (0 accepted), and the peer's maximum PDU length."""
    results, max_pdu, pos = {}, 0, 68
    while pos + 4 <= len(body):
        kind, length = body[pos], struct.unpack_from(">H", body, pos + 2)[0]
        item = body[pos + 4:pos + 4 + length]
        if kind == 0x21:
            results[item[0]] = item[2]
        elif kind == 0x50:
            sub = 0
            while sub + 4 <= len(item):
                sub_kind, sub_length = item[sub], struct.unpack_from(">H", item, sub + 2)[0]
                if sub_kind == 0x51:
                    max_pdu = struct.unpack_from(">I", item, sub + 4)[0]
                sub += 4 + sub_length
        pos += 4 + length
    return results, max_pdu


def _status(command: bytes) -> int:
    """(0000,0900) Status of a response command set."""
    pos = 0
    while pos + 8 <= len(command):
        _, tag, length = struct.unpack_from("<HHI", command, pos)
        if tag == 0x0900:
            return struct.unpack_from("<H", command, pos + 8)[0]
        pos += 8 + length
    raise AssociationError("a response without a Status")


def _response(sock: socket.socket) -> int:
    command = b""
    while True:
        kind, body = recv_pdu(sock)
        if kind != 0x04:
            raise AssociationError(f"PDU type 0x{kind:02X} while waiting for a C-STORE response")
        pos = 0
        while pos < len(body):
            length, _, control = struct.unpack_from(">IBB", body, pos)
            command += body[pos + 6:pos + 4 + length]
            pos += 4 + length
            if control & 0x03 == 0x03:  # the response's last command fragment (C-STORE-RSP has no data set)
                return _status(command)


def send_files(port: int, called: str, paths: list[Path], *, calling: str = "BENCHSCU",
               host: str = "127.0.0.1", timeout: float = 120) -> tuple[int, int, dict[str, int]]:
    """Send ``paths`` over one association: (Success, other answers, reasons counted)."""
    files = [read_part10(p) for p in paths]
    contexts = sorted({(f.sop_class_uid, f.transfer_syntax_uid) for f in files})
    context_of = {c: 2 * k + 1 for k, c in enumerate(contexts)}
    why: dict[str, int] = {}
    ok = failed = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(associate_rq(called, calling, contexts))
        kind, body = recv_pdu(sock)
        if kind != 0x02:
            return 0, len(files), {f"association not accepted (PDU type 0x{kind:02X})": len(files)}
        results, max_pdu = _accepted(body)
        for i, f in enumerate(files, start=1):
            context_id = context_of[(f.sop_class_uid, f.transfer_syntax_uid)]
            if results.get(context_id) != 0:
                failed += 1
                why["presentation context rejected"] = why.get("presentation context rejected", 0) + 1
                continue
            pdus = p_data(context_id, c_store_rq((i - 1) % 0xFFFF + 1, f), command=True, max_pdu=max_pdu)
            pdus += p_data(context_id, f.data_set, command=False, max_pdu=max_pdu)
            try:
                sock.sendall(b"".join(pdus))
                status = _response(sock)
            except (OSError, AssociationError) as exc:
                why[f"association ended after {i - 1} of {len(files)} objects ({exc})"] = len(files) - i + 1
                return ok, failed + len(files) - i + 1, why
            if status == 0:
                ok += 1
            else:
                failed += 1
                why[f"0x{status:04X}"] = why.get(f"0x{status:04X}", 0) + 1
        sock.sendall(_pdu(0x05, bytes(4)))  # A-RELEASE-RQ
        try:
            recv_pdu(sock)  # A-RELEASE-RP
        except (OSError, AssociationError):
            pass  # every object was answered; how the peer closes does not change the count
    return ok, failed, why
