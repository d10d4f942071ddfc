"""Before/after on a shared machine: ``bench/ingest.py --many`` of two checkouts, run alternately, paired by round.

    .venv/bin/python bench/ingest_ab.py OTHER [--many 200] [--kind K] [--batch B] [--rounds 6]

OTHER is another checkout of DoseReg (``git worktree add ../before <rev>``; it may share this one's ``.venv``).  Each
round runs this repository's ``bench/ingest.py --many N --json`` twice, as separate processes: once importing OTHER's
application (``--code OTHER``) and once this one's, in an order that alternates from round to round.  On the 2-core
machines here the speed of the whole machine drifts by a fifth or more within minutes, so two blocks of runs one
after the other compare the drift, not the code; a pair run back to back sees nearly the same machine.  Prints each
run, then per kind the medians of both and the median of the paired ratios (this / OTHER): wall time and CPU time
(this process, every thread, and its PostgreSQL backend) per object, queries per object.  DATABASE_URL as for
``bench/ingest.py``.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = (("total", "ms/object"), ("cpu", "cpu ms"), ("pg_cpu", "pg cpu ms"), ("post", "post ms"), ("queries", "queries/obj"))


def run_once(code: Path, args: argparse.Namespace) -> dict[str, dict]:
    """One ``bench/ingest.py --many`` process importing ``code``'s application: its JSON line per kind."""
    cmd = [sys.executable, str(REPO / "bench" / "ingest.py"), "--code", str(code), "--many", str(args.many),
           "--json"] + (["--kind", args.kind] if args.kind else []) + (["--batch", str(args.batch)] if args.batch else [])
    proc = subprocess.run(cmd, cwd=code, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"bench/ingest.py with the code of {code} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("JSON "):
            row = json.loads(line[5:])
            row["total"] /= row["n"]  # ms per object, as the other figures
            out[row["kind"]] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (before)")
    parser.add_argument("--many", type=int, default=200)
    parser.add_argument("--kind", default="")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    other = args.other.resolve()
    if not (other / "manage.py").exists():
        print(f"{other} is not a DoseReg checkout (no manage.py)")
        return 2
    sides = {"other": other, "this": REPO}
    runs: dict[str, dict[str, list[dict]]] = {"other": defaultdict(list), "this": defaultdict(list)}
    for r in range(args.rounds):
        order = ["other", "this"] if r % 2 == 0 else ["this", "other"]  # neither side always runs first
        for side in order:
            for kind, row in run_once(sides[side], args).items():
                runs[side][kind].append(row)
                print(f"round {r + 1} {side:5} {kind:24} " + " ".join(
                    f"{label} {row[key]:.2f}" for key, label in METRICS if key in row), flush=True)
    print(f"\nmedians of {args.rounds} rounds; ratio: median of the per-round ratios this / other "
          f"(other = {other}, this = {REPO})")
    print("| kind | figure | other | this | ratio |")
    print("|---|---|---|---|---|")
    for kind in runs["this"]:
        for key, label in METRICS:
            pairs = [(o[key], t[key]) for o, t in zip(runs["other"][kind], runs["this"][kind], strict=False)
                     if key in o and key in t]
            if not pairs:
                continue
            ratios = [t / o for o, t in pairs if o]
            print(f"| {kind} | {label} | {statistics.median(o for o, _ in pairs):.2f} | "
                  f"{statistics.median(t for _, t in pairs):.2f} | "
                  + (f"{statistics.median(ratios):.3f}" if ratios else "–") + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
