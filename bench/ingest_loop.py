"""Ingest loop for instruction counts: N fresh-UID copies of one corpus object through the real batch path.

usage: python bench/ingest_loop.py N [--kind DX|MG] [--batch B]

Run it under ``valgrind --tool=callgrind`` twice (N1, N2 objects; the same warm-up both times) and take
(count(N2) - count(N1)) / (N2 - N1): the instructions one object costs in a batch end to end (durable store, batch
ingest, post-commit steps), without start-up, migration and warm-up.  Copies differ from the original only by their
SOP Instance and Study Instance UIDs, substituted in the bytes at the same length (no re-encoding).  SQLite in
DOSEREG_DATA_DIR (give it an already migrated folder: a migration under callgrind takes minutes); PostgreSQL when
DATABASE_URL is set (that database must be migrated).  Prints the outcomes' statuses; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dosereg.settings")
os.environ.pop("CELERY_BROKER_URL", None)

import django  # noqa: E402

django.setup()

SOURCES = {"DX": "dx/DX-Im-Carestream_DRX.dcm", "MG": "mg/MG-Im-GE_Seno_1_ForPresentation.dcm"}


def fresh_copies(data: bytes, n: int, start: int, into: Path) -> list[Path]:
    """``n`` copies of ``data`` with new SOP Instance and Study Instance UIDs of the same length."""
    from dicomrx.parse import identity_elements

    found = identity_elements(data)
    sop, study = found[0x00080018].encode(), found[0x0020000D].encode()
    out = []
    for i in range(start, start + n):
        new_sop = sop[:-7] + b"%07d" % i
        new_study = study[:-7] + b"%07d" % (i + 5_000_000)
        target = into / f"copy-{i}.dcm"
        target.write_bytes(data.replace(sop, new_sop).replace(study, new_study))
        out.append(target)
    return out


def main() -> int:
    import logging

    from django.conf import settings

    from dicomrx import ingest

    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("--kind", default="DX", choices=sorted(SOURCES))
    parser.add_argument("--batch", type=int, default=settings.INGEST_BATCH_SIZE)
    args = parser.parse_args()
    data = (REPO.parent / "shared" / "rdsr" / SOURCES[args.kind]).read_bytes()
    work = Path(tempfile.mkdtemp(prefix="ingest-loop-"))
    warm = fresh_copies(data, args.batch, 0, work)  # unit and patient exist, code paths and caches loaded
    files = fresh_copies(data, args.n, args.batch, work)
    statuses: dict[str, int] = {}
    for _, outcome in ingest.import_files(warm, batch_size=args.batch):
        statuses[f"warm {outcome.status}"] = statuses.get(f"warm {outcome.status}", 0) + 1
    for _, outcome in ingest.import_files(files, batch_size=args.batch):
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    print(statuses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
