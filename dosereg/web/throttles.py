"""API throttles whose rates are read from settings.API_THROTTLE_RATES at each request (DRF's own classes read
them once at import, so a changed setting would not apply)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class UserThrottle(UserRateThrottle):
    def get_rate(self):
        return settings.API_THROTTLE_RATES[self.scope]


class AnonThrottle(AnonRateThrottle):
    def get_rate(self):
        return settings.API_THROTTLE_RATES[self.scope]
