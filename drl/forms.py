"""Forms of the drl pages."""

from __future__ import annotations

import datetime as dt

from django import forms

from dosereg.registry.models import StandardExam
from drl.models import MappingRule
from drl.services import MappingError, last_calendar_year, mapping_rule_compile


class ComparisonRunForm(forms.Form):
    period_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    include_demo = forms.BooleanField(required=False, label="Include demo studies")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        start, end = last_calendar_year()
        self.fields["period_start"].initial = start
        self.fields["period_end"].initial = end

    def clean(self):
        data = super().clean()
        if data.get("period_start") and data.get("period_end") and data["period_end"] < data["period_start"]:
            raise forms.ValidationError("The period ends before it starts.")
        return data


class MapNameForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    modality_type = forms.CharField(max_length=20, required=False)
    exam = forms.ModelChoiceField(queryset=StandardExam.objects.all(), label="Standard examination")


class MappingRuleForm(forms.ModelForm):
    class Meta:
        model = MappingRule
        fields = ["priority", "field", "match", "pattern", "modality_type", "equipment", "standard_exam"]

    def clean(self):
        data = super().clean()
        if data.get("pattern") and data.get("match"):
            try:
                mapping_rule_compile(MappingRule(pattern=data["pattern"], match=data["match"],
                                                 field=data.get("field") or "", standard_exam_id=0))
            except MappingError as exc:
                self.add_error("pattern", str(exc))
        return data


class DrlSetImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row: standard_exam, indication, patient_group, age_min_years, "
                                     "age_max_years, weight_min_kg, weight_max_kg, quantity, value, unit, per, "
                                     "view, thickness_min_mm, thickness_max_mm (per acquisition; lower limit "
                                     "inclusive, upper exclusive), verify, note")
    name = forms.CharField(max_length=200)
    issuing_body = forms.CharField(max_length=200)
    country = forms.CharField(max_length=60, required=False)
    year = forms.IntegerField(min_value=1950, max_value=2200, initial=lambda: dt.date.today().year)
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="citation of the publication")
    verify = forms.BooleanField(required=False, label="Values still to be verified against the publication")
