"""The rule files of one platform: its own and those of the resources running on it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import yamlio
from .facts import alerts_spec, platform_name, target
from .rules import file_name, rule_file, rule_groups

Obj = Mapping[str, Any]


def platform_rule_files(platform: Obj, members: Iterable[Obj] = ()) -> dict[str, dict[str, Any]]:
    """`{file name: rule file}` for the platform's managed Prometheus. `members` may hold any
    resources; those whose platformRef names this platform (same namespace) are included,
    and the DataSources that a CdcConnector on the platform captures from (a DataSource has
    no platformRef: its rules go to every platform that reads it). Resources whose
    `spec.alerts` does not validate are skipped (their reconciler says why)."""
    meta = platform["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]
    local = [m for m in members if m["metadata"].get("namespace", ns) == ns]
    on_platform = [m for m in local if m.get("kind") != "DataPlatform" and platform_name(m) == name]
    captured = {
        ((m.get("spec") or {}).get("sourceRef") or {}).get("name")
        for m in on_platform
        if m.get("kind") == "CdcConnector"
    }
    sources = [
        m for m in local if m.get("kind") == "DataSource" and m["metadata"]["name"] in captured
    ]
    bodies = [platform, *on_platform, *sources]
    files: dict[str, dict[str, Any]] = {}
    for body in bodies:
        alerts = alerts_spec(body)
        if alerts is None:
            continue
        t = target(body, platform)
        groups = rule_groups(t, alerts)
        if groups:
            files[file_name(t)] = rule_file(groups)
    return files


# A ConfigMap holds at most 1 MiB; keep the rule files well below it (metadata included).
CONFIGMAP_BUDGET = 900 * 1024


def file_size(rules: Mapping[str, Any]) -> int:
    """Bytes the file takes in the ConfigMap (as render_prometheus serialises it)."""
    return len(yamlio.dump(rules, sort_keys=False).encode())


def fit(
    files: Mapping[str, dict[str, Any]], budget: int = CONFIGMAP_BUDGET
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The files that fit into `budget` bytes, the platform's first, then by name; and the
    names left out. A platform with hundreds of resources outgrows one ConfigMap; the
    per-resource PrometheusRules have no such limit."""
    order = sorted(files, key=lambda n: (not n.startswith("dataplatform-"), n))
    kept: dict[str, dict[str, Any]] = {}
    dropped: list[str] = []
    used = 0
    for name in order:
        size = file_size(files[name]) + len(name)
        if used + size > budget:
            dropped.append(name)
            continue
        kept[name] = files[name]
        used += size
    return kept, dropped
