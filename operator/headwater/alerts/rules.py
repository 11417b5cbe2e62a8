"""Catalogue + a resource's `spec.alerts` -> Prometheus rule groups, rule files and
PrometheusRule objects. Pure: the same input always gives byte-identical output, so the apply
layer sees "unchanged" at steady state and promtool sees exactly what Prometheus loads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..api.common import AlertsSpec
from ..constants import (
    APPLY_GROUP_ALERTS,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_OWNER_KIND,
    LABEL_OWNER_NAME,
    LABEL_PART_OF,
    MANAGED_BY,
    MONITORING_API_VERSION,
)
from ..render.common import Owner, stable_hash
from .catalogue import RuleDef, Target, fill, rules_for_kind

Obj = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    """Effective settings of one rule for one resource (catalogue defaults + overrides)."""

    enabled: bool
    threshold: float | None
    for_: str
    severity: str


def effective(rule: RuleDef, alerts: AlertsSpec) -> Settings:
    """The rule's defaults with the resource's `spec.alerts.rules[<alert>]` applied."""
    override = alerts.rules.get(rule.alert)
    threshold = rule.threshold
    if override is not None and override.threshold is not None:
        threshold = override.threshold
    enabled = alerts.enabled and (override is None or override.enabled)
    if rule.opt_in and threshold is None:
        enabled = False
    return Settings(
        enabled=enabled,
        threshold=threshold,
        for_=(override.for_ if override and override.for_ else None) or rule.for_,
        severity=(override.severity if override and override.severity else None) or rule.severity,
    )


def not_applicable(kind: str, alerts: AlertsSpec) -> list[str]:
    """Overrides naming rules that do not exist for this kind (the CRD only knows the union)."""
    known = {r.alert for r in rules_for_kind(kind)}
    return sorted(name for name in alerts.rules if name not in known)


def _text(template: str, t: Target, settings: Settings) -> str:
    return fill(template, t).replace("{for}", settings.for_)


def alert_rule(rule: RuleDef, t: Target, alerts: AlertsSpec) -> Obj | None:
    """One Prometheus alerting rule for the resource, or None (disabled / not applicable)."""
    settings = effective(rule, alerts)
    if not settings.enabled:
        return None
    expr = rule.expr(t, settings.threshold)
    if expr is None:
        return None
    labels: dict[str, str] = dict(sorted(alerts.labels.items()))
    labels.update(
        {
            "severity": settings.severity,
            "namespace": t.namespace,
            "kind": t.kind,
            "name": t.name,
        }
    )
    if t.platform:
        labels["platform"] = t.platform
    annotations = {
        "summary": _text(rule.summary, t, settings),
        "description": _text(rule.description, t, settings),
        "runbook": _text(rule.runbook, t, settings),
    }
    out: Obj = {"alert": rule.alert, "expr": expr}
    if settings.for_ not in ("0", "0s", "0m"):
        out["for"] = settings.for_
    out["labels"] = labels
    out["annotations"] = annotations
    return out


def group_name(t: Target) -> str:
    return f"headwater.{t.kind.lower()}.{t.namespace}.{t.name}"


def rule_groups(t: Target, alerts: AlertsSpec) -> list[Obj]:
    """The resource's rule groups: one group with every enabled, applicable rule (none when
    nothing is left, so an empty group never reaches Prometheus)."""
    rules = [r for r in (alert_rule(d, t, alerts) for d in rules_for_kind(t.kind)) if r]
    return [{"name": group_name(t), "rules": rules}] if rules else []


def file_name(t: Target) -> str:
    """Key of the resource's file in the platform's rules ConfigMap (`<kind>-<name>.yaml`)."""
    return f"{t.kind.lower()}-{t.name}.yaml"


def rule_file(groups: Iterable[Obj]) -> Obj:
    """A Prometheus rule file (what `promtool check rules` and `rule_files:` read)."""
    return {"groups": list(groups)}


def object_name(owner: Owner, suffix: str = "alerts") -> str:
    """`<name>-<kind>-<suffix>`, shortened with a hash when over the 253-character limit."""
    name = f"{owner.name}-{owner.kind.lower()}-{suffix}"
    if len(name) <= 253:
        return name
    return f"{name[:236]}-{stable_hash(name)}"


def metadata(owner: Owner, name: str, extra_labels: Mapping[str, str]) -> Obj:
    """Metadata of an object the alerts service owns (own apply group, owner reference)."""
    labels = {
        **dict(extra_labels),
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: "headwater",
        LABEL_COMPONENT: APPLY_GROUP_ALERTS,
        LABEL_OWNER_KIND: owner.kind.lower(),
        LABEL_OWNER_NAME: owner.name,
    }
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }


def prometheus_rule(
    owner: Owner, groups: list[Obj], extra_labels: Mapping[str, str] | None = None
) -> Obj:
    """The PrometheusRule carrying a resource's groups, owned by that resource."""
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": metadata(owner, object_name(owner), extra_labels or {}),
        "spec": {"groups": groups},
    }
