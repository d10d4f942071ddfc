"""Forms of the triggers pages: rule editing (validated by the service's rules) and the alert lifecycle steps."""

from __future__ import annotations

from django import forms

from dosereg.core.quantities import QUANTITIES, RULE_QUANTITIES, input_units
from triggers.models import QUANTITY_CHOICES, SEVERITY_CHOICES, Alert, TriggerRule
from triggers.services import rule_validate

RULE_FORM_FIELDS = ["name", "modality_type", "room", "equipment", "standard_exam", "protocol_pattern",
                    "protocol_exclude_pattern", "body_region", "ctdi_phantom", "procedure_kind", "age_min_years",
                    "age_max_years", "quantity", "plane_mode", "threshold", "unit", "step", "scope", "window_days",
                    "window_basis", "min_procedures", "severity", "source", "verify", "note", "active"]


class TriggerRuleForm(forms.ModelForm):
    comment = forms.CharField(required=False, max_length=255, help_text="why this change (kept with the version)")

    class Meta:
        model = TriggerRule
        fields = RULE_FORM_FIELDS
        widgets = {"source": forms.Textarea(attrs={"rows": 3}), "note": forms.Textarea(attrs={"rows": 3}),
                   "window_basis": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the service decides: unknown quantities and units get a clear message instead of "not a valid choice"
        self.fields["quantity"] = forms.CharField(
            max_length=32, help_text="one of: " + ", ".join(RULE_QUANTITIES),
            widget=forms.Select(choices=[("", "---------"), *QUANTITY_CHOICES]))
        self.fields["unit"] = forms.CharField(
            max_length=12, help_text="; ".join(f"{QUANTITIES[name].label}: {', '.join(input_units(name))}"
                                               for name in RULE_QUANTITIES))
        self.fields["scope"].required = True

    def _post_clean(self):
        pass  # the service validates and saves (versioned); no model-level duplicate messages

    def clean(self):
        data = super().clean()
        for field, message in rule_validate({k: v for k, v in data.items() if k != "comment"}).items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
            elif field not in self.fields:
                self.add_error(None, message)
        return data


class AcknowledgeForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", "— choose a reason —")] + Alert.REASONS)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class FollowUpForm(forms.Form):
    follow_up_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}),
                                     help_text="e.g. 10-14 days and about 1 month after a large dose")
    check = forms.CharField(max_length=255, label="Check to be done",
                            help_text="e.g. skin inspection of the irradiated area, by phone or in clinic")


class CloseForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", "— keep the acknowledgement reason —")] + Alert.REASONS, required=False)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class AlertFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "open"), ("all", "all")] + Alert.STATES)
    severity = forms.ChoiceField(required=False, choices=[("", "any")] + SEVERITY_CHOICES)
    rule = forms.ModelChoiceField(required=False, queryset=TriggerRule.objects.all())
    include_demo = forms.BooleanField(required=False, initial=True)
