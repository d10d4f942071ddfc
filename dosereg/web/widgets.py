"""Form widgets rendered in Python for the study list's filter form.

Django renders every widget, and every option of a select, through its template engine (one include per option);
with the rows (dosereg_web.study_list_rows) that was most of the study list's server time.  bench/web.py at
1,000,000 studies: study lists 29-70 ms before these changes, 21-25 ms after.  These widgets produce the same HTML
elements (name, id, attributes, value, selected options) with format_html, escaped exactly like the templates.
"""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

_SELECTED = mark_safe(" selected")


class _PythonRenderedChoices:
    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            final["multiple"] = True
        chosen = {str(v) for v in self.format_value(value)}
        keys_labels = [("" if key is None else str(key), label) for key, label in self.choices]
        options = format_html_join("", '<option value="{}"{}>{}</option>', (
            (key, _SELECTED if key in chosen else "", label) for key, label in keys_labels))
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(final), options)


class Select(_PythonRenderedChoices, forms.Select):
    pass


class SelectMultiple(_PythonRenderedChoices, forms.SelectMultiple):
    pass


class _PythonRenderedInput:
    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        value = self.format_value(value)
        if value is not None:
            final["value"] = value
        return format_html('<input type="{}" name="{}"{}>', self.input_type, name, flatatt(final))


class NumberInput(_PythonRenderedInput, forms.NumberInput):
    pass


class DateInput(_PythonRenderedInput, forms.DateInput):
    pass


class TextInput(_PythonRenderedInput, forms.TextInput):
    pass
