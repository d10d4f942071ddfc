"""The JSON columns' texts made with the event rows: what json.dumps writes for clean values, the cleaned value's
text for values a database refuses (NaN, infinities, NUL characters)."""

from __future__ import annotations

import json
import math

from dosereg.registry.services.recording.rows import items_json_with_text, json_with_text


def test_clean_values_keep_their_object_and_get_json_dumps_text():
    value = {"kvp": ["70", "kV"], "angles": [1.5, -2.0], "note": "é", "none": None}
    kept, text = json_with_text(value)
    assert kept is value and text == json.dumps(value)


def test_non_finite_numbers_and_nul_characters_are_cleaned_before_the_text_is_made():
    kept, text = json_with_text({"a": math.nan, "b": [math.inf], "c": "x\x00y"})
    assert kept == {"a": None, "b": [None], "c": "xy"}
    assert text == json.dumps(kept) and "NaN" not in text and "Infinity" not in text


def test_repeated_items_give_the_text_of_the_whole_list():
    shared = {"concept": ["DCM", "113738", "Dose Area Product"], "value": "1.5"}
    items = [shared, {"value": 2}, shared]
    memo = {}
    kept, text = items_json_with_text(items, memo)
    assert kept is items and text == json.dumps(items)
    assert items_json_with_text([shared], memo)[1] == json.dumps([shared])
    assert items_json_with_text([{"v": math.nan}], memo) == ([{"v": None}], json.dumps([{"v": None}]))
