"""Forms of the incident pages: they validate input; the services apply it (and refuse what the rules forbid)."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.utils import timezone

from dosereg.registry.models import Equipment, Room, Study
from triggers.incidents.models import CATEGORY_CHOICES, KIND_CHOICES, IncidentAction

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TRI_STATE = [("", "Not recorded"), ("true", "Yes"), ("false", "No")]


def _tri(value):
    return {"true": True, "false": False}.get(value)


class IncidentForm(forms.Form):
    """The facts of an incident.  Studies are named by Study Instance UID or accession number, one per line."""

    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="unintended")
    category = forms.ChoiceField(choices=[("", "— choose —"), *CATEGORY_CHOICES],
                                 error_messages={"required": "Choose a category."})
    incident_date = forms.DateField(widget=DATE, label="Date of the exposure",
                                    error_messages={"required": "Give the date of the exposure.",
                                                    "invalid": "Give the date as YYYY-MM-DD."})
    discovered_date = forms.DateField(widget=DATE, required=False, label="Date discovered")
    room = forms.ModelChoiceField(queryset=Room.objects.all(), required=False)
    equipment = forms.ModelChoiceField(queryset=Equipment.objects.all(), required=False, label="Unit")
    title = forms.CharField(max_length=200, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False,
                                  label="What happened")
    study_refs = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                 label="Linked studies (Study Instance UID or accession number, one per line)")

    def __init__(self, *args, user=None, with_studies: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if not with_studies:
            del self.fields["study_refs"]

    def clean(self):
        data = super().clean()
        inc, disc = data.get("incident_date"), data.get("discovered_date")
        if inc and inc > timezone.now().date():
            self.add_error("incident_date", "The exposure date cannot be in the future.")
        if inc and disc and disc < inc:
            self.add_error("discovered_date", "The discovery date cannot be before the exposure date.")
        if "study_refs" in self.fields:
            data["studies"] = self._studies(data.get("study_refs") or "")
        return data

    def _studies(self, text: str) -> list[Study]:
        refs = [r.strip() for r in text.replace(",", "\n").splitlines() if r.strip()]
        linked = set((self.initial.get("study_refs") or "").split())
        if any(r not in linked for r in refs) and not (self.user and self.user.has_perm("triggers.report_exposure")):
            # linking a study reports its exposure: the same permission as the page from a study and the API
            self.add_error("study_refs", "Linking a study reports its exposure; your role may not do that.")
            return []
        studies = []
        may_see = self.user is not None and self.user.has_perm("registry.view_study")
        for ref in refs:
            study = Study.objects.filter(Q(study_instance_uid=ref) | Q(accession_number=ref)).order_by("id").first()
            if study is None or not may_see:  # the same message: do not reveal which studies exist
                self.add_error("study_refs", f"Study {ref} was not found or you may not see it.")
                continue
            if study not in studies:
                studies.append(study)
        return studies

    def service_data(self) -> dict:
        return {k: self.cleaned_data.get(k) for k in ("kind", "category", "incident_date", "discovered_date", "room",
                                                        "equipment", "title", "description")}


class AnalysisForm(forms.Form):
    drl_comparison = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                     label="Comparison with the DRL")
    trigger_level_comparison = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                               label="Comparison with the trigger levels")
    skin_dose_note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                     label="Skin dose (Ka,r is a surrogate, not a skin-dose estimate)")
    effective_dose_estimate_msv = forms.FloatField(required=False, min_value=0,
                                                   label="Effective dose estimate (mSv, for comparison only)")
    effective_dose_method = forms.CharField(max_length=200, required=False, label="Effective dose method")
    root_cause = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    analysis_notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Notes")
    patient_informed = forms.TypedChoiceField(choices=TRI_STATE, coerce=_tri, required=False, empty_value=None)
    patient_informed_date = forms.DateField(widget=DATE, required=False)
    referrer_informed = forms.TypedChoiceField(choices=TRI_STATE, coerce=_tri, required=False, empty_value=None)
    referrer_informed_date = forms.DateField(widget=DATE, required=False)

    def clean(self):
        data = super().clean()
        if data.get("effective_dose_estimate_msv") is not None and not (data.get("effective_dose_method") or ""):
            self.add_error("effective_dose_method", "Label the effective dose estimate with its method.")
        return data


class ActionForm(forms.Form):
    kind = forms.ChoiceField(choices=IncidentAction.KIND_CHOICES)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    owner = forms.CharField(max_length=150)
    due_date = forms.DateField(widget=DATE, error_messages={"required": "Give a due date."})

    def clean_due_date(self):
        value = self.cleaned_data["due_date"]
        if value < timezone.now().date():
            raise forms.ValidationError("The due date cannot be in the past.")
        return value


class TransitionForm(forms.Form):
    to_state = forms.CharField(max_length=20)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class NotificationForm(forms.Form):
    notified_date = forms.DateField(widget=DATE, required=False, label="Notified on")
    notified_authority = forms.CharField(max_length=200, required=False, label="Competent authority")
    notification_reference = forms.CharField(max_length=120, required=False, label="Reference")
    notification_notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Notes")


class SignificanceForm(forms.Form):
    significant = forms.BooleanField(required=False, label="Significant event (QA committee decision)")
    reason = forms.CharField(max_length=500, required=False)


class CommentForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Comment")
