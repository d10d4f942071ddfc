"""Benchmark and validation of the skin-dose engine (dosereg.core.skin_dose) on the real RDSRs in ../shared/rdsr/rf/.

    .venv/bin/python bench/skin_dose.py
    .venv/bin/python bench/skin_dose.py --reference /tmp/pysd-venv/bin/python   # also run PySkinDose 25.1.1

Times the map (best of 3, parsing excluded) on the PySkinDose examples, on the 316-event report (which must come back
"geometry incomplete"), on its 316 events placed with a known convention (timing only: that unit's convention is not
known, so the figures mean nothing clinically) and on 300 synthetic events with 300 different beam geometries (the
worst case: no two events can share a pass).  The target is < 1 s for a 300-event procedure.

With ``--reference`` it runs PySkinDose (never a runtime dependency: a separate venv, e.g.
``python3 -m venv /tmp/pysd-venv && /tmp/pysd-venv/bin/pip install pyskindose==25.1.1``) on the same files with the
issue-16 settings (elliptical cylinder 20 x 10 cm, 150 cm, head-first supine, table 281.5 x 45 x 5 cm, pad 4 cm,
table/pad transmission 0.8, inherent filtration 3.1 mm Al) and prints both PSDs and their ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dicomrx.parse import parse_dose_object  # noqa: E402 - after the path set-up above
from dosereg.core.display import format_number  # noqa: E402
from dosereg.core.skin_dose import (  # noqa: E402
    Phantom,
    Setup,
    Unit,
    compute_skin_dose,
    skin_events_from_report,
)

RF = (REPO / ".." / "shared" / "rdsr" / "rf").resolve()
FILES = (
    "PySkinDose-siemens_axiom_artis.dcm",
    "PySkinDose-P1.dcm",
    "PySkinDose-philips_allura_clarity_u104.dcm",
    "RF-Pat-Orientation-Modifier-Missing.dcm",
)
REFERENCE_SETUP = Setup(phantom=Phantom(sizing="issue-16 reference run (PySkinDose default cylinder)"))

# Runs inside the PySkinDose venv; prints {"psd_mgy": ...} or {"error": ...}.
PYSKINDOSE_RUN = r'''
import contextlib, io, json, os, sys
out = {}
try:
    from pyskindose.main import main
    from pyskindose.settings import PyskindoseSettings
    dims = {"plane_length": 120, "plane_width": 40, "plane_resolution": "sparse", "cylinder_length": 150,
            "cylinder_radii_a": 20, "cylinder_radii_b": 10, "cylinder_resolution": "sparse", "table_length": 281.5,
            "table_width": 45, "table_thickness": 5, "pad_length": 281.5, "pad_width": 45, "pad_thickness": 4}
    settings = {"mode": "calculate_dose", "rdsr_filename": "", "estimate_k_tab": True, "k_tab_val": 0.8,
                "inherent_filtration": 3.1, "remove_invalid_rows": False, "silence_pydicom_warnings": True,
                "plot": {"interactivity": False, "dark_mode": False, "notebook_mode": False, "plot_dosemap": False,
                         "colorscale": "jet", "max_events_for_patient_inclusion": 0, "plot_event_index": 0},
                "phantom": {"model": "cylinder", "human_mesh": "hudfrid",
                            "patient_offset": {"d_lon": 0, "d_ver": 0, "d_lat": 0},
                            "patient_orientation": "head_first_supine", "dimension": dims}}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        res = main(file_path=sys.argv[1], settings=PyskindoseSettings(settings=settings, output_format="dict"))
    out["psd_mgy"] = float(res["psd"])
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"[:200]
print(json.dumps(out))
'''


def best_of(n: int, fn):
    times, result = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def reference_psd(python: str, path: Path) -> str:
    done = subprocess.run([python, "-c", PYSKINDOSE_RUN, str(path)], capture_output=True, text=True, timeout=600,
                          cwd="/tmp")
    lines = done.stdout.strip().splitlines()
    if not lines:
        return f"failed: {done.stderr.strip()[-200:]}"
    data = json.loads(lines[-1])
    return data.get("error") or data["psd_mgy"]


def synthetic(events, n: int = 300):
    """n events with n different geometries around the first event's (angles and table moved a little each time)."""
    rng = np.random.default_rng(16)
    base = events[0]
    return [
        replace(base, primary_angle_deg=float(rng.uniform(-40, 40)), secondary_angle_deg=float(rng.uniform(-25, 25)),
                table_lateral_mm=(base.table_lateral_mm or 0) + float(rng.uniform(-100, 100)),
                table_longitudinal_mm=(base.table_longitudinal_mm or 0) + float(rng.uniform(-50, 50)),
                ka_r_mgy=float(rng.uniform(1, 40)))
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="python of a venv with pyskindose==25.1.1 installed")
    args = parser.parse_args()
    print(f"{'file':46} {'events':>6} {'ms':>7}  {'PSD (mGy)':>10}  {'PySkinDose':>10}  {'ratio':>6}  note")
    siemens_events = None
    for name in FILES:
        report = parse_dose_object((RF / name).read_bytes())
        events = skin_events_from_report(report)
        unit = Unit(report.equipment.manufacturer, report.equipment.model)
        seconds, result = best_of(3, lambda e=events, u=unit: compute_skin_dose(e, unit=u, setup=REFERENCE_SETUP))
        if name.startswith("PySkinDose-siemens"):
            siemens_events = events
        ours = format_number(result.psd_mgy, 4) if result.geometry_complete else "no map"
        ref, ratio, ref_note = "", "", ""
        if args.reference:
            ref_value = reference_psd(args.reference, RF / name)
            if isinstance(ref_value, float):
                ref = format_number(ref_value, 4)
                ratio = f"{result.psd_mgy / ref_value:.3f}" if ref_value > 0 and result.psd_mgy else ""
            else:
                ref, ref_note = "refused", f" | PySkinDose: {ref_value}"
        note = "; ".join(result.reasons)[:120] + ref_note
        print(f"{name:46} {len(events):>6} {seconds * 1000:>7.1f}  {ours:>10}  {ref:>10}  {ratio:>6}  {note}")
        if name.startswith("RF-Pat"):
            seconds, result = best_of(3, lambda e=events: compute_skin_dose(
                e, unit=Unit("Philips", "Allura Clarity"), setup=REFERENCE_SETUP))
            print(f"{'  (same 316 events, timing only)':46} {len(events):>6} {seconds * 1000:>7.1f}  "
                  f"{'(n/a)':>10}")
    if siemens_events:
        many = synthetic(siemens_events)
        seconds, result = best_of(3, lambda: compute_skin_dose(many, unit=Unit("Siemens", "AXIOM-Artis"),
                                                               setup=REFERENCE_SETUP))
        print(f"{'synthetic: 300 distinct geometries':46} {len(many):>6} {seconds * 1000:>7.1f}  "
              f"{format_number(result.psd_mgy, 4):>10}")
        repeated = (siemens_events * 15)[:300]
        seconds, _ = best_of(3, lambda: compute_skin_dose(repeated, unit=Unit("Siemens", "AXIOM-Artis"),
                                                          setup=REFERENCE_SETUP))
        print(f"{'Siemens example x 15 (300 events)':46} {len(repeated):>6} {seconds * 1000:>7.1f}")


if __name__ == "__main__":
    main()
