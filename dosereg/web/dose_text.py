"""The referrer's dose text (Euratom 2013/59 Art. 58(b)): what goes into the report, in the form the site chose
(SiteSettings.referrer_summary): the physical quantities, an effective dose estimate, or the position against the
DRL.  Referrers have no login; the RIS takes this text from the study page or the API."""

from __future__ import annotations

from django.utils.translation import gettext as _

from dosereg.registry.models import SiteSettings, Study
from dosereg.web.quantities import QUANTITIES, fmt

MODALITY_LABELS = {"CT": "CT", "fluoroscopy": "Fluoroscopy", "radiography": "Radiography",
                   "mammography": "Mammography", "nuclear_medicine": "Nuclear medicine"}


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def physical_text(study: Study) -> str:
    parts = []
    types = study.modality_types or ([study.modality_type] if study.modality_type else [])
    if "CT" in types or study.dlp_total_mgycm is not None:
        ct = []
        if study.dlp_total_mgycm is not None:
            ct.append(f"DLP {fmt(study.dlp_total_mgycm)} mGy·cm")
        if study.max_ctdivol_mgy is not None:
            ct.append(_("highest CTDIvol") + f" {fmt(study.max_ctdivol_mgy)} mGy")
        if ct:
            parts.append("CT: " + ", ".join(ct))
    if study.kap_total_gycm2 is not None or study.ka_r_total_mgy is not None:
        label = _("Fluoroscopy") if "fluoroscopy" in types else _("Radiography")
        pr = []
        if study.kap_total_gycm2 is not None:
            pr.append(f"KAP {fmt(study.kap_total_gycm2)} Gy·cm²")
        if study.ka_r_total_mgy is not None:
            pr.append(f"Ka,r {fmt(study.ka_r_total_mgy)} mGy")
        if study.fluoro_time_total_s is not None:
            pr.append(_("fluoroscopy time") + " " + _duration(study.fluoro_time_total_s))
        parts.append(f"{label}: " + ", ".join(pr))
    if study.agd_left_mgy is not None or study.agd_right_mgy is not None:
        mg = []
        if study.agd_left_mgy is not None:
            mg.append(_("AGD left") + f" {fmt(study.agd_left_mgy)} mGy")
        if study.agd_right_mgy is not None:
            mg.append(_("AGD right") + f" {fmt(study.agd_right_mgy)} mGy")
        parts.append(_("Mammography") + ": " + ", ".join(mg))
    if study.activity_mbq is not None:
        parts.append(_("Nuclear medicine") + ": " + _("administered activity") + f" {fmt(study.activity_mbq)} MBq")
    if not parts:
        return _("No dose values were reported for this study.")
    return "; ".join(parts) + "."


def effective_dose_text(study: Study) -> str:
    if study.effective_dose_msv is None:
        return physical_text(study) + " " + _("No effective dose estimate is available for this study.")
    method = study.effective_dose_method or _("method not recorded")
    return (_("Effective dose (estimate)") + f": {fmt(study.effective_dose_msv)} mSv ({_('method')}: {method}). "
            + _("An estimate for comparing procedures, not a personal risk figure."))


def _drl_position(study: Study):
    """The DRL app's verdict, if it provides one (imported lazily; the registry works without it)."""
    for module in ("drl.selectors", "drl.services"):
        try:
            mod = __import__(module, fromlist=["study_drl_position"])
        except ImportError:
            continue
        fn = getattr(mod, "study_drl_position", None)
        if fn is not None:
            try:
                return fn(study)
            except Exception:  # noqa: BLE001 - the dose text must always render; fall back to physical values
                return None
    return None


def drl_text(study: Study) -> str:
    position = _drl_position(study)
    if not position:
        return physical_text(study) + " " + _("No comparison with a diagnostic reference level is available.")
    if isinstance(position, dict):
        position = position.get("text") or position.get("summary") or ""
    return physical_text(study) + " " + str(position)


def study_dose_text(study: Study, *, site: SiteSettings | None = None) -> str:
    site = site or SiteSettings.load()
    kind = site.referrer_summary
    text = {"effective_dose": effective_dose_text, "drl": drl_text}.get(kind, physical_text)(study)
    if site.dose_text_template:
        values = {"summary": text, "physical": physical_text(study), "study_date": study.study_date or "",
                  "accession_number": study.accession_number}
        try:
            return site.dose_text_template.format_map(values)
        except (KeyError, ValueError, IndexError):
            return text  # a malformed template must not hide the dose text
    return text


__all__ = ["study_dose_text", "physical_text", "effective_dose_text", "drl_text", "QUANTITIES"]
