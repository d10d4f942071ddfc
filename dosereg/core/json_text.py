"""JSON text of small values, made many times a report (an event's raw values, attributes and digest input).

``json.JSONEncoder.encode`` builds a new C encoder on every call, which was about a third of encoding one event's
values; :func:`text_encoder` builds it once.  The text is the one ``json.dumps`` writes with the same options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import Any


def text_encoder(*, separators: tuple[str, str] = (", ", ": "), allow_nan: bool = True) -> Callable[[Any], str]:
    """``json.JSONEncoder(separators=..., allow_nan=...).encode``, without its per-call set-up.  No check for
    circular references: the values encoded are trees the parser and the recording build, and a cycle would end
    in RecursionError rather than ValueError."""
    item_separator, key_separator = separators
    python = json.JSONEncoder(separators=separators, allow_nan=allow_nan)
    if c_make_encoder is None:  # a Python without the json accelerator
        return python.encode
    encode = c_make_encoder(None, python.default, encode_basestring_ascii, None, key_separator, item_separator,
                            False, False, allow_nan)
    join = "".join

    def text(value: Any) -> str:
        return join(encode(value, 0))

    return text
