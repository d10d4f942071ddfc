"""API endpoints of the triggers app (mounted under /api/v1/): alerts/ and rules/."""

from rest_framework.routers import SimpleRouter

from triggers.api import AlertViewSet, TriggerRuleViewSet

router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="alert")
router.register("rules", TriggerRuleViewSet, basename="triggerrule")
urlpatterns = router.urls
