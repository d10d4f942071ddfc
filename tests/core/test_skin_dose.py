"""The skin-dose engine and its map pictures: analytic cases worked by hand, the incomplete-geometry refusal,
and the PySkinDose examples from the real-file corpus."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import replace

import numpy as np
import pytest

from dicomrx.parse import parse_dose_object
from dosereg.core.skin_dose import (
    Patient,
    Phantom,
    Setup,
    SkinDoseResult,
    SkinEvent,
    Unit,
    compute_skin_dose,
    size_phantom,
    skin_dose_for_report,
)
from dosereg.core.skin_map import SkinMapUnavailable, render_png, render_svg

SIEMENS = Unit("Siemens", "AXIOM-Artis")  # no table offsets, all directions + (dosereg.core.skin.vendors)

# One PA beam: source 75 cm below the isocentre, RP at 60 cm; the table top 19 cm below the isocentre and a 4 cm pad,
# so the skin on the pad is exactly 60 cm from the source.  Field 24 x 24 cm at the 120 cm receptor -> 12 cm at the
# skin.  80 kV, 0.3 mm Cu.  The phantom's 150 cm run from +75 to -75 cm along the table (lateral position 750 mm).
PA = SkinEvent(
    ka_r_mgy=1000.0, kap_gycm2=14.4, kvp=80.0, filter_cu_mm=0.3, primary_angle_deg=0.0, secondary_angle_deg=0.0,
    table_longitudinal_mm=0.0, table_lateral_mm=750.0, table_height_mm=190.0, source_to_isocenter_mm=750.0,
    source_to_detector_mm=1200.0, field_height_mm=240.0, field_width_mm=240.0, orientation="HFS",
)
PLANE = Setup(phantom=Phantom(shape="plane", plane_width_cm=40.0, length_cm=150.0, sizing="test"))
CYLINDER = Setup(phantom=Phantom(sizing="test"))


def test_one_perpendicular_beam_on_a_flat_phantom_gives_the_hand_calculation():
    result = compute_skin_dose([PA], unit=SIEMENS, setup=PLANE)
    # by hand: inverse square (60/60)² = 1; table+pad 0.8; f(80 kV, 0.3 mm Cu) = 1.031; backscatter at a 12 cm side
    # between the 10 cm (1.4386) and 20 cm (1.5499) values of the fit at HVL 6.47 mm Al (tabulated 1.550 at 20 cm)
    bsf = 1.4386 + 0.2 * (1.5499 - 1.4386)
    assert result.geometry_complete
    assert result.psd_mgy == pytest.approx(1000.0 * 1.0 * 0.8 * 1.031 * bsf, rel=2e-3)
    assert result.psd_mgy_by_plane == {"single": pytest.approx(result.psd_mgy)}
    assert result.peak_v_cm == pytest.approx(75.0, abs=1.0)  # the isocentre is 75 cm from the head end
    hit = result.dose_map_mgy > 0
    assert hit.sum() == pytest.approx(12 * 12, rel=0.2)  # a 12 cm x 12 cm field on 1 cm cells


def test_inverse_square_from_the_reference_point_to_the_skin():
    lower = replace(PA, table_height_mm=290.0)  # skin 10 cm further from the isocentre, 50 cm from the source
    near = compute_skin_dose([lower], unit=SIEMENS, setup=PLANE).psd_mgy
    far = compute_skin_dose([PA], unit=SIEMENS, setup=PLANE).psd_mgy
    # (60/50)² times the ratio of backscatter at the smaller field (10 cm vs 12 cm at the skin)
    bsf_ratio = 1.4386 / (1.4386 + 0.2 * (1.5499 - 1.4386))
    assert near / far == pytest.approx((60 / 50) ** 2 * bsf_ratio, rel=3e-3)


def test_no_table_correction_for_a_beam_from_above():
    from_above = replace(PA, primary_angle_deg=180.0)  # source 75 cm above the isocentre
    below = compute_skin_dose([PA], unit=SIEMENS, setup=CYLINDER)
    above = compute_skin_dose([from_above], unit=SIEMENS, setup=CYLINDER)
    assert below.peak_region == "posterior (back)"
    assert above.peak_region == "anterior"
    # back: 60 cm from the source, through table and pad (0.8), 12 cm field; front (20 cm cylinder on the pad, top at
    # 5 cm above the isocentre): 70 cm from the source, no table, 14 cm field
    bsf12, bsf14 = 1.4386 + 0.2 * 0.1113, 1.4386 + 0.4 * 0.1113
    assert above.psd_mgy / below.psd_mgy == pytest.approx((60 / 70) ** 2 / 0.8 * bsf14 / bsf12, rel=5e-3)


def test_two_events_at_opposite_angles_do_not_add_at_one_spot():
    back = PA
    front = replace(PA, primary_angle_deg=180.0)
    one = compute_skin_dose([back], unit=SIEMENS, setup=CYLINDER)
    other = compute_skin_dose([front], unit=SIEMENS, setup=CYLINDER)
    both = compute_skin_dose([back, front], unit=SIEMENS, setup=CYLINDER)
    assert not np.any((one.dose_map_mgy > 0) & (other.dose_map_mgy > 0))
    assert both.psd_mgy == pytest.approx(max(one.psd_mgy, other.psd_mgy))
    assert both.psd_mgy < one.psd_mgy + other.psd_mgy * 0.5


def test_the_same_beam_twice_adds():
    once = compute_skin_dose([PA], unit=SIEMENS, setup=CYLINDER).psd_mgy
    twice = compute_skin_dose([PA, replace(PA, ka_r_mgy=500.0)], unit=SIEMENS, setup=CYLINDER).psd_mgy
    assert twice == pytest.approx(1.5 * once)


def test_biplane_events_land_on_different_skin_areas():
    frontal = replace(PA, plane="A")
    lateral = replace(PA, plane="B", primary_angle_deg=90.0)  # LAO 90: source at the patient's right
    a = compute_skin_dose([frontal], unit=SIEMENS, setup=CYLINDER)
    b = compute_skin_dose([lateral], unit=SIEMENS, setup=CYLINDER)
    both = compute_skin_dose([frontal, lateral], unit=SIEMENS, setup=CYLINDER)
    assert set(both.psd_mgy_by_plane) == {"A", "B"}
    assert both.psd_mgy_by_plane["A"] == pytest.approx(a.psd_mgy)
    assert both.psd_mgy_by_plane["B"] == pytest.approx(b.psd_mgy)
    assert not np.any((a.dose_map_mgy > 0) & (b.dose_map_mgy > 0))
    assert b.peak_region == "right side"
    assert b.peak_u_cm < 0  # the patient's right is left of the posterior midline on the map


def test_unknown_unit_gives_no_map_and_says_why():
    result = compute_skin_dose([PA], unit=Unit("", "Allura Xper"), setup=CYLINDER)
    assert not result.geometry_complete
    assert result.psd_mgy is None and result.dose_map_mgy is None
    assert "no table position convention known for manufacturer not reported / Allura Xper" in result.reasons[0]
    assert result.ka_r_total_mgy == 1000.0
    assert "Ka,r" in result.method


def test_missing_angles_and_field_size_give_no_map():
    bare = replace(PA, primary_angle_deg=None, field_height_mm=None, field_width_mm=None, kap_gycm2=None)
    result = compute_skin_dose([PA, bare], unit=SIEMENS, setup=CYLINDER)
    assert not result.geometry_complete and result.dose_map_mgy is None
    assert "positioner angles missing in 1 of 2 events" in result.reasons
    assert "field size missing in 1 of 2 events" in result.reasons


def test_missing_orientation_is_assumed_only_when_allowed():
    unstated = replace(PA, orientation=None)
    assumed = compute_skin_dose([unstated], unit=SIEMENS, setup=CYLINDER)
    assert assumed.geometry_complete and "HFS assumed" in assumed.method
    refused = compute_skin_dose([unstated], unit=SIEMENS, setup=replace(CYLINDER, orientation_if_missing=None))
    assert "patient orientation missing in 1 of 1 events" in refused.reasons


def test_phantom_sized_from_height_and_weight():
    assert size_phantom(None).semi_axis_lateral_cm == 20.0
    heavy = size_phantom(Patient(height_m=1.76, weight_kg=146.0))
    assert heavy.semi_axis_lateral_cm == pytest.approx(20.0 * 2**0.5, abs=0.1)
    assert heavy.semi_axis_vertical_cm == pytest.approx(heavy.semi_axis_lateral_cm / 2, abs=0.1)
    assert "height 1.76 m" in heavy.sizing


def test_result_survives_a_round_trip_through_json():
    result = compute_skin_dose([PA], unit=SIEMENS, setup=CYLINDER)
    again = SkinDoseResult.from_dict(result.as_dict(include_map=True))
    assert again.psd_mgy == result.psd_mgy
    assert np.allclose(again.dose_map_mgy, result.dose_map_mgy, atol=1e-3)
    assert render_svg(again)


def test_png_and_svg_are_valid_pictures():
    result = compute_skin_dose([PA, replace(PA, primary_angle_deg=30.0)], unit=SIEMENS, setup=CYLINDER)
    png = render_png(result)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", png[8:16])
    width, height = struct.unpack(">II", png[16:24])
    assert kind == b"IHDR" and length == 13
    n_v, n_u = result.dose_map_mgy.shape
    assert width > n_u * 4 and height > n_v * 4
    assert zlib.crc32(png[12:29]) == struct.unpack(">I", png[29:33])[0]
    root = ET.fromstring(render_svg(result))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any(t.startswith("PSD ") for t in texts)
    assert any("Gy" in t for t in texts)


def test_no_picture_without_a_map():
    result = compute_skin_dose([PA], unit=Unit("ACME", "X"), setup=CYLINDER)
    with pytest.raises(SkinMapUnavailable) as err:
        render_png(result)
    assert "no table position convention" in str(err.value)


# --- real objects ----------------------------------------------------------------------------------------------------
REFERENCE = Setup(phantom=Phantom(sizing="issue 16 reference run"))
# PySkinDose 25.1.1 with the issue-16 settings (bench/skin_dose.py --reference), PSD in mGy
PYSKINDOSE_PSD = {"PySkinDose-siemens_axiom_artis.dcm": 1.302, "PySkinDose-P1.dcm": 0.1400}


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(PYSKINDOSE_PSD))
def test_agrees_with_pyskindose_within_20_percent(corpus, name):
    report = parse_dose_object((corpus / "rf" / name).read_bytes())
    result = skin_dose_for_report(report, REFERENCE)
    assert result.geometry_complete
    assert result.psd_mgy == pytest.approx(PYSKINDOSE_PSD[name], rel=0.2)


@pytest.mark.corpus
def test_u104_beams_miss_the_phantom_with_the_default_offsets(corpus):
    report = parse_dose_object((corpus / "rf" / "PySkinDose-philips_allura_clarity_u104.dcm").read_bytes())
    result = skin_dose_for_report(report, REFERENCE)
    assert not result.geometry_complete
    assert "miss the phantom" in result.reasons[0]


@pytest.mark.corpus
def test_316_event_report_without_manufacturer_gets_no_map(corpus):
    report = parse_dose_object((corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm").read_bytes())
    result = skin_dose_for_report(report)
    assert not result.geometry_complete and result.dose_map_mgy is None
    assert result.ka_r_total_mgy == pytest.approx(7689.0, rel=1e-3)
