"""Template context for the navigation bar."""

from __future__ import annotations


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    counts = {}
    try:
        from triggers.selectors import alert_inbox_count  # the alert inbox badge, once triggers provides it
    except ImportError:
        alert_inbox_count = None
    if alert_inbox_count is not None:
        try:
            counts["open_alerts"] = alert_inbox_count(user)
        except Exception:  # noqa: BLE001 - a badge must never break a page
            counts["open_alerts"] = None
    return {"nav_counts": counts}
