"""Fitting text to the registry's columns: NUL removed (PostgreSQL refuses it), cut to the field's ``max_length``
read from the model (never a hand-written slice that drifts the day a column changes), each cut remembered so the
study can be flagged ``text_truncated``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from dosereg.core.sanity import TEXT_TRUNCATED, Finding, fit_text


@cache
def max_length(model, field_name: str) -> int | None:
    return model._meta.get_field(field_name).max_length


@dataclass
class TextFitter:
    """``fit(Model, "field", value)`` -> the value as the column can hold it; ``findings`` lists what was cut."""

    cut: dict[str, tuple[int, int]] = field(default_factory=dict)  # "model.field" -> (length sent, length kept)

    def __call__(self, model, field_name: str, value) -> str:
        limit = max_length(model, field_name)
        if type(value) is str and value.isascii() and "\x00" not in value and (limit is None or len(value) <= limit):
            return value  # the common case, as fit_text would return it, without its work (called 60 times an object)
        text, was_cut = fit_text(value, limit if limit is not None else 1 << 30)
        if was_cut:
            self.cut[f"{model._meta.model_name}.{field_name}"] = (len(str(value)), limit)
        return text

    def findings(self) -> list[Finding]:
        return [Finding(TEXT_TRUNCATED, "", f"{name} was {sent} characters; the first {kept} are kept",
                        {"field": name})
                for name, (sent, kept) in sorted(self.cut.items())]


def fit_field(model, field_name: str, value) -> str:
    """``value`` as ``model.field_name`` can hold it (NUL removed, cut to ``max_length``), for callers that need no
    record of what was cut (log-like rows: refusals, reasons, notes)."""
    limit = max_length(model, field_name)
    return fit_text(value, limit if limit is not None else 1 << 30)[0]
