"""Every study of the real-file corpus (../shared/rdsr, imported through import_dose) renders its page, patient
sheet and dose text with readable numbers: no exponent notation, no more significant digits than the catalogue
allows (3 for DoseReg's values, 4 for values as the X-ray system reported them), every dose value with its unit."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.management import call_command

from dosereg.registry.models import Study
from dosereg.web.dose_text import study_dose_text

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]

EXPONENT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[eE][+-]\d+(?!\w)")  # 2.46e+03, 1E-05 (Python always signs it)
NUMBER = r"-?\d{1,3}(?:,\d{3})*(?:\.\d+)?"
CLOCK = r"\d+:\d\d(?::\d\d)? (?:min|h)"
VALUE_WITH_UNIT = re.compile(rf"^(?:—|{CLOCK}|({NUMBER}) (\S.*))$")
TAGS = re.compile(r"<[^>]+>")


def significant_digits(number: str) -> int:
    digits = number.lstrip("-").replace(",", "")
    whole, _, frac = digits.partition(".")
    if frac:
        return len((whole + frac).lstrip("0"))
    return len(whole.rstrip("0")) or 1  # 2,460 carries three


CHECKED: list[str] = []


def check_value(text: str, *, most: int, where: str) -> None:
    """``text`` is one shown value: an em dash, a clock time, or a number and its unit."""
    CHECKED.append(text)
    text = html.unescape(TAGS.sub("", text)).strip()
    match = VALUE_WITH_UNIT.match(text)
    assert match, f"{where}: {text!r} is not a value with its unit"
    if match.group(1):
        assert significant_digits(match.group(1)) <= most, f"{where}: {text!r} has too many digits"
        assert not re.fullmatch(NUMBER, match.group(2)), f"{where}: {text!r} has no unit"


def cells(page: str, section: str) -> list[str]:
    """The value cells of a page's section (the totals card, the sheet's tables)."""
    return re.findall(r'<td class="num(?: reported)?">(.*?)</td>', section, flags=re.S)


@pytest.fixture
def corpus_imported(corpus, db, settings, tmp_path):
    settings.INBOX_DIR = tmp_path / "inbox"  # stored objects go to a per-test inbox, never the data folder
    call_command("import_dose", str(corpus), stdout=io.StringIO(), stderr=io.StringIO())


def test_every_corpus_study_renders_readable_numbers(corpus_imported, client, make_user):
    client.force_login(make_user(None, is_superuser=True))
    studies = list(Study.objects.select_related("equipment").order_by("pk"))
    assert len(studies) > 20
    for study in studies:
        where = f"study {study.study_instance_uid}"
        text = study_dose_text(study)
        assert not EXPONENT.search(text), f"{where}: {text}"
        for line in text.splitlines()[1:]:
            if ": " in line and not line.startswith(("Effective dose estimate", "Position against")):
                check_value(line.split(": ", 1)[1], most=3, where=where)
        page = client.get(f"/studies/{study.pk}/").content.decode()
        totals = page.split("<h2>Totals</h2>", 1)[1].split("</section>", 1)[0]
        for value in cells(page, totals):
            check_value(value.split("<br>")[0], most=3, where=f"{where} page")
        dose_numbers = page.split('id="dose-text"', 1)[1].split("</section>", 1)[0]
        assert not EXPONENT.search(TAGS.sub("", dose_numbers)), where
        sheet = client.get(f"/patients/{study.patient_id}/sheet/", {"study": study.pk}).content.decode()
        assert not EXPONENT.search(TAGS.sub(" ", sheet.split("<article", 1)[1])), f"{where} sheet"
        for table in re.findall(r'<table class="sheet-values">.*?</table>', sheet, flags=re.S):
            for value in re.findall(r'<td class="num reported">(.*?)</td>', table, flags=re.S):
                check_value(value, most=4, where=f"{where} sheet, as reported")
            for value in re.findall(r'<td class="num">(.*?)</td>', table, flags=re.S):
                check_value(value, most=3, where=f"{where} sheet, standard unit")
    assert len(CHECKED) > 5 * len(studies)  # the checks saw the values, not empty sections
    assert any(" Gy·m²" in v or " Gy·cm²" in v for v in CHECKED) and any(" mGy·cm" in v for v in CHECKED)
