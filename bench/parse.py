"""Parser benchmark: ms per object to parse each object kind, with references measured in the same run.

usage: python bench/parse.py [CORPUS] [--repeat N] [--profile KIND]

Per kind (one corpus file each): the parser (bytes in memory -> DoseReport, median of N runs in a warm process;
"cold" empties the decoding caches kept across objects before each run, as for the first object of a new scanner), a
naive pydicom walk of the same bytes (``dcmread`` and every element's value: what any DICOM consumer pays) and DCMTK
``dcmdump`` of the file (whole process).  The ratio column is parse / naive walk in CPU time.  ``--profile KIND`` prints a
cProfile of that kind instead.  No Django, no database: the parser is pure.  Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402

from dicomrx.parse import _tree, parse_dose_object  # noqa: E402

KINDS = {  # kind -> corpus file (the same kinds as bench/ingest.py --many)
    "small CT (3 events)": "ct/CT-RDSR-GEPixelMed.dcm",
    "CT Flash-QA (9 events)": "ct/CT-RDSR-Siemens_Flash-QA-DS.dcm",
    "DX header": "dx/DX-Im-Carestream_DRX.dcm",
    "MG header": "mg/MG-Im-GE_Seno_1_ForPresentation.dcm",
    "NM RRDSR": "nm/NM-RRDSR-Siemens.dcm",
    "RF 316 events": "rf/RF-Pat-Orientation-Modifier-Missing.dcm",
}


def _median_ms(work, repeat: int) -> tuple[float, float]:
    """(wall ms, CPU ms) medians: on a shared machine the CPU time is the steadier figure."""
    work()  # warm: first-use imports and caches are not the per-object cost
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        work()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def _naive_walk(data: bytes) -> None:
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    for elem in ds.iterall():
        _ = elem.value


def _dcmdump_ms(path: Path, repeat: int) -> float | None:
    exe = shutil.which("dcmdump")
    if exe is None:
        return None
    return _median_ms(lambda: subprocess.run([exe, str(path)], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, check=False), max(3, repeat // 4))[0]


def _profile(data: bytes, repeat: int) -> None:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeat):
        parse_dose_object(data)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(REPO / ".." / "shared" / "rdsr"))
    parser.add_argument("--repeat", type=int, default=21, metavar="N")
    parser.add_argument("--profile", metavar="KIND", help="a kind, or a part of its name, e.g. 'flash'")
    args = parser.parse_args()
    corpus = Path(args.corpus).resolve()
    if not corpus.is_dir():
        print(f"corpus {corpus} is absent")
        return 1
    if args.profile:
        kind = next((k for k in KINDS if args.profile.lower() in k.lower()), None)
        if kind is None:
            print(f"--profile {args.profile!r}: no such kind (one of: {', '.join(KINDS)})")
            return 2
        _profile((corpus / KINDS[kind]).read_bytes(), args.repeat)
        return 0
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; median of {args.repeat} runs")
    print(f"{'kind':24} {'bytes':>8} {'events':>6} {'parse ms':>9} {'cpu ms':>7} {'cold cpu':>8} "
          f"{'naive pydicom ms':>16} {'cpu ms':>7} {'parse/naive':>11} {'dcmdump ms':>10}")
    for kind, rel in KINDS.items():
        path = corpus / rel
        if not path.exists():
            continue
        data = path.read_bytes()
        events = len(parse_dose_object(data).events)
        parse_ms, parse_cpu = _median_ms(lambda data=data: parse_dose_object(data), args.repeat)
        cold_cpu = _median_ms(lambda data=data: (_tree._CACHES.clear(), parse_dose_object(data)), args.repeat)[1]
        naive_ms, naive_cpu = _median_ms(lambda data=data: _naive_walk(data), max(3, args.repeat // 4))
        dump = _dcmdump_ms(path, args.repeat)
        dump_text = f"{dump:10.1f}" if dump is not None else f"{'-':>10}"
        print(f"{kind:24} {len(data):8} {events:6} {parse_ms:9.2f} {parse_cpu:7.2f} {cold_cpu:8.2f} {naive_ms:16.2f} "
              f"{naive_cpu:7.2f} {parse_cpu / naive_cpu:11.3f} {dump_text}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
