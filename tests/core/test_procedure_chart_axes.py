"""The chart's axis top: a round number at or above the largest value, for any float a report can carry (the
robustness test found a sub-normal KAP that left no round number to choose)."""

from __future__ import annotations

import math
import sys

import pytest

from dosereg.core.procedure_chart import _nice_max


@pytest.mark.parametrize(("value", "top"), [(0.73, 1.0), (1.0, 1.0), (1.2, 2.0), (2.4, 2.5), (37.0, 50.0),
                                            (9100.0, 10000.0), (0.0, 1.0), (-3.0, 1.0), (math.nan, 1.0),
                                            (math.inf, 1.0)])
def test_the_axis_top_is_the_next_round_number(value, top):
    assert _nice_max(value) == pytest.approx(top)


@pytest.mark.parametrize("value", [5e-324, sys.float_info.min / 3, sys.float_info.max, sys.float_info.max / 1.5])
def test_values_off_the_float_grid_still_get_a_finite_top_at_or_above_them(value):
    top = _nice_max(value)
    assert math.isfinite(top) and top >= value > 0
