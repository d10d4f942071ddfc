"""System checks for the DICOM configuration (run by every management command and at start)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility, deploy=False)
def dicom_configuration(app_configs=None, **kwargs):
    problems = []
    aet = settings.DICOM_AE_TITLE
    if not (1 <= len(aet) <= 16) or not aet.isascii() or "\\" in aet:
        problems.append(Error(f"AE title {aet!r} must be 1 to 16 ASCII characters", id="dosereg.E001"))
    if not 1 <= settings.DICOM_PORT <= 65535:
        problems.append(Error(f"DICOM port {settings.DICOM_PORT} is out of range", id="dosereg.E002"))
    inbox = settings.INBOX_DIR
    if not os.access(inbox, os.W_OK):
        problems.append(Error(f"the DICOM inbox {inbox} is not writable", id="dosereg.E003"))
    if not settings.ALLOWED_CALLING_AETS or "*" in settings.ALLOWED_CALLING_AETS:
        problems.append(Warning(
            "DOSEREG_ALLOWED_CALLING_AETS is unset or '*': any calling AE title may store objects "
            "unless an administrator adds allowed calling AEs on the admin page",
            hint="set it to a comma-separated list of AET or AET@host entries", id="dosereg.W001"))
    for entry in settings.ALLOWED_CALLING_AETS:
        name = entry.split("@", 1)[0]
        if entry != "*" and (not name or len(name) > 16 or not name.isascii()):
            problems.append(Error(f"allowed calling AE entry {entry!r} is not a valid AE title", id="dosereg.E004"))
    return problems
