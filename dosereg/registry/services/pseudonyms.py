"""Keyed pseudonyms for patient identifiers (HMAC-SHA-256 with DOSEREG_PSEUDONYM_KEY).

Changing the key breaks the linkage of old and new studies of the same patient: the same ID gives another pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def pseudonym_enabled() -> bool:
    return bool(settings.PSEUDONYM_KEY)


def patient_pseudonym(patient_id: str, issuer: str = "") -> str:
    message = f"{issuer}\x1f{patient_id}".encode()
    return hmac.new(settings.PSEUDONYM_KEY.encode(), message, hashlib.sha256).hexdigest()
