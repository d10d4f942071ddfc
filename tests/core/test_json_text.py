"""The JSON text encoder made once: the very text ``json.dumps`` writes with the same options, the same refusals."""

from __future__ import annotations

import json
import math

import pytest

from dosereg.core.json_text import text_encoder

VALUES = [
    {"kvp": ["119.87", "kV"], "ka_r_mgy": ["0.0111891", "Gy"]},
    [("kap_gycm2", 0.715, "Gy.m2"), ("kvp", 119.87, "kV"), ("table_height_position_mm", None, "mm")],
    {"filters": [{"material": "Copper or Copper compound", "thickness_min_mm": 0.1, "type": ["DCM", "113650", "x"]}]},
    {"text": "Kardiologisk 7,5 b/s \u00e9\u4e2d \"quoted\" back\\slash \x01", "n": 3, "yes": True, "none": None},
    "plain text", 1.5e-300, -0.0, 10**20, [], {},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_text_is_json_dumps_with_the_same_options(value) -> None:
    assert text_encoder()(value) == json.dumps(value)
    assert text_encoder(allow_nan=False)(value) == json.dumps(value, allow_nan=False)
    assert text_encoder(separators=(",", ":"))(value) == json.dumps(value, separators=(",", ":"))


def test_the_encoder_is_used_again_and_again() -> None:
    encode = text_encoder(separators=(",", ":"))
    assert [encode(v) for v in VALUES * 3] == [json.dumps(v, separators=(",", ":")) for v in VALUES * 3]


def test_non_finite_numbers_are_written_or_refused_as_json_dumps_does() -> None:
    value = {"a": [math.nan, math.inf, -math.inf]}
    assert text_encoder()(value) == json.dumps(value)
    with pytest.raises(ValueError):
        text_encoder(allow_nan=False)(value)
    assert text_encoder(allow_nan=False)({"after": "a refusal"}) == '{"after": "a refusal"}'


def test_a_value_json_cannot_hold_is_refused_with_json_dumps_error() -> None:
    with pytest.raises(TypeError) as ours:
        text_encoder()({"when": object})
    with pytest.raises(TypeError) as theirs:
        json.dumps({"when": object})
    assert str(ours.value) == str(theirs.value)
