"""Input validation for the pages and the API (one form per use; the API answers 400 with the form's errors)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from dosereg.core.display import column_label
from dosereg.core.quantities import MODALITY_CHOICES, QUANTITIES
from dosereg.registry.models import Dosimeter, Equipment, Room, StaffMember, StandardExam
from dosereg.web import widgets
from dosereg.web.params import MAX_ID
from dosereg.web.selectors import DOSE_FILTERS

_SORT_QUANTITIES = ("dlp_total_mgycm", "max_ctdivol_mgy", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s",
                    "agd_left_mgy", "agd_right_mgy", "activity_mbq", "effective_dose_msv")
SORT_FIELDS = [
    ("study_date", _("Date")), ("modality_type", _("Modality")),
    *[(name, QUANTITIES[name].label) for name in _SORT_QUANTITIES],
    ("accession_number", _("Accession number")), ("study_description", _("Description")),
]
SORT_CHOICES = [(k, v) for k, v in SORT_FIELDS] + [(f"-{k}", f"{v} ↓") for k, v in SORT_FIELDS]

# dose filter prefix -> the catalogue quantity its label and unit come from (AGD filters either breast)
DOSE_FILTER_QUANTITIES = {**DOSE_FILTERS, "agd": "agd_mgy"}


class StudyFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label=_("From"), widget=widgets.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=_("To"), widget=widgets.DateInput(attrs={"type": "date"}))
    modality = forms.MultipleChoiceField(required=False, choices=MODALITY_CHOICES, label=_("Modality"),
                                         widget=widgets.SelectMultiple)
    room = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID, label=_("Room"),
                              widget=widgets.NumberInput)
    unit = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID, label=_("Unit"),
                              widget=widgets.NumberInput)
    exam = forms.CharField(required=False, max_length=64, label=_("Standard examination"), widget=widgets.TextInput)
    protocol = forms.CharField(required=False, max_length=100, label=_("Protocol / description"),
                               widget=widgets.TextInput)
    accession_number = forms.CharField(required=False, max_length=64, label=_("Accession number"),
                                       widget=widgets.TextInput)
    demo = forms.ChoiceField(required=False, choices=[("", _("Include demo")), ("exclude", _("Exclude demo")),
                                                      ("only", _("Demo only"))], label=_("Demo data"),
                             widget=widgets.Select)
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label=_("Sort"), widget=widgets.Select)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for prefix in [*DOSE_FILTERS, "agd"]:
            for end in ("min", "max"):
                self.fields[f"{prefix}_{end}"] = forms.FloatField(
                    required=False, min_value=0, label=f"{column_label(DOSE_FILTER_QUANTITIES[prefix])} {end}",
                    widget=widgets.NumberInput(attrs={"step": "any", "class": "dose"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("'From' is after 'To'."))
        for prefix in [*DOSE_FILTERS, "agd"]:
            lo, hi = data.get(f"{prefix}_min"), data.get(f"{prefix}_max")
            if lo is not None and hi is not None and lo > hi:
                self.add_error(f"{prefix}_max", _("The maximum is below the minimum."))
        return data

    def with_choices(self) -> StudyFilterForm:
        """For the page: room, unit and exam as drop-downs (the API takes ids and codes)."""
        rooms = [("", _("All rooms"))] + [(r.pk, r.name) for r in Room.objects.order_by("name")]
        units = [("", _("All units"))] + [(u.pk, u.display_name) for u in Equipment.objects.order_by(
            "manufacturer", "model", "station_name")]
        exams = [("", _("All examinations"))] + [(e.code, e.name) for e in StandardExam.objects.order_by("name")]
        self.fields["room"].widget = widgets.Select(choices=rooms)
        self.fields["unit"].widget = widgets.Select(choices=units)
        self.fields["exam"].widget = widgets.Select(choices=exams)
        self.fields["modality"].widget = widgets.SelectMultiple(choices=MODALITY_CHOICES, attrs={"size": 5})
        return self


class PatientSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=128, label=_("Patient ID, name or accession number"))
    date = forms.DateField(required=False, label=_("Study date"), widget=forms.DateInput(attrs={"type": "date"}))


class UnitRoomForm(forms.Form):
    room = forms.ModelChoiceField(queryset=Room.objects.order_by("name"), required=False, label=_("Room"))
    new_room = forms.CharField(required=False, max_length=100, label=_("or a new room"))


class StaffMemberForm(forms.ModelForm):
    """A staff member and the user account they sign in with (their own doses then appear on /staff/)."""

    class Meta:
        model = StaffMember
        fields = ["name", "role", "user", "pregnancy_declared"]
        labels = {"user": _("User account"), "pregnancy_declared": _("Pregnancy declared (Art. 10)")}
        help_texts = {"user": _("The account this person signs in with; leave empty if they have none.")}


class DosimeterForm(forms.ModelForm):
    class Meta:
        model = Dosimeter
        fields = ["dosimeter_id", "position", "source", "room"]
        labels = {"dosimeter_id": _("Dosimeter ID"), "position": _("Wearing position"), "source": _("Source"),
                  "room": _("Room (electronic dosimeters kept in one room)")}


class RosterForm(forms.Form):
    file = forms.FileField(label=_("Roster (CSV)"), required=False)
    text = forms.CharField(label=_("or paste it here"), required=False, widget=forms.Textarea(attrs={"rows": 6}))

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload:
            try:
                data["roster"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError(_("The file is not UTF-8 text.")) from exc
        elif (data.get("text") or "").strip():
            data["roster"] = data["text"]
        else:
            raise forms.ValidationError(_("Choose a CSV file or paste the roster."))
        return data
