"""Template context for the navigation bar."""

from __future__ import annotations

from triggers.selectors import alert_inbox_count


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_counts": {"open_alerts": alert_inbox_count(user)}}
