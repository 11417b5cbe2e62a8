"""Alert rules per resource: the catalogue (what is watched, with which defaults), rendering to
Prometheus rule groups, PrometheusRule and ServiceMonitor objects. Pure, like render/: the
service in reconcile/alerting.py looks things up and applies what these functions return."""

from __future__ import annotations

from .catalogue import CATALOGUE, RuleDef, Target, rules_for_kind
from .facts import KINDS, alerts_spec, target
from .files import platform_rule_files
from .monitors import service_monitors
from .rules import file_name, not_applicable, prometheus_rule, rule_file, rule_groups

__all__ = [
    "CATALOGUE",
    "KINDS",
    "RuleDef",
    "Target",
    "alerts_spec",
    "file_name",
    "not_applicable",
    "platform_rule_files",
    "prometheus_rule",
    "rule_file",
    "rule_groups",
    "rules_for_kind",
    "service_monitors",
    "target",
]
