"""System checks for the DICOM configuration (run by every management command and at start)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Tags, register

DOSEREG_CHECKS = "dosereg"  # the tag of DoseReg's own checks: every management command runs them


@register(Tags.compatibility, DOSEREG_CHECKS, deploy=False)
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
    # An open allowlist is not a check warning: every command would print it (three times for 'serve').  The
    # listener says it once at start, knowing the admin page's entries too (dicomrx.listener.Listener.start).
    for entry in settings.ALLOWED_CALLING_AETS:
        name = entry.split("@", 1)[0]
        if entry != "*" and (not name or len(name) > 16 or not name.isascii()):
            problems.append(Error(f"allowed calling AE entry {entry!r} is not a valid AE title", id="dosereg.E004"))
    return problems


@register(Tags.security, DOSEREG_CHECKS, deploy=False)
def private_files(app_configs=None, **kwargs):
    """Health data on disk: the data directory, inbox and logs 0700, the database, WAL, log and secret 0600
    (settings set these at start; this reports what they could not, e.g. a volume owned by another user)."""
    problems = []
    for path in [*getattr(settings, "PRIVATE_DIRS", []), *getattr(settings, "PRIVATE_FILES", [])]:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # not created yet (no WAL before the first write)
        if mode & 0o077:
            wanted = "0700" if path.is_dir() else "0600"
            problems.append(Error(
                f"{path} is readable or writable by other users (mode {mode & 0o777:04o}); it holds health data",
                hint=f"chmod {wanted} {path} (and run DoseReg as the file's owner)", id="dosereg.E010"))
    return problems
