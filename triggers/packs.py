"""Installing a default rule from a data migration: the rule and its first version, once; removed again on the way
back only while no alert refers to it.  Works on the migration's historical models (``apps``), never the live ones."""

from __future__ import annotations


def pack_rule_install(apps, rule: dict) -> None:
    TriggerRule = apps.get_model("triggers", "TriggerRule")
    TriggerRuleVersion = apps.get_model("triggers", "TriggerRuleVersion")
    row, created = TriggerRule.objects.get_or_create(key=rule["key"], defaults=rule)
    if created:
        TriggerRuleVersion.objects.create(rule=row, version=1, data={**rule, "active": True},
                                          comment="default rule pack")


def pack_rule_uninstall(apps, key: str) -> None:
    apps.get_model("triggers", "TriggerRule").objects.filter(key=key, alerts__isnull=True).delete()
