"""The rule files of one platform: its own and those of the resources running on it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .facts import alerts_spec, platform_name, target
from .rules import file_name, rule_file, rule_groups

Obj = Mapping[str, Any]


def platform_rule_files(platform: Obj, members: Iterable[Obj] = ()) -> dict[str, dict[str, Any]]:
    """`{file name: rule file}` for the platform's managed Prometheus. `members` may hold any
    resources; those whose platformRef names this platform (same namespace) are included.
    Resources whose `spec.alerts` does not validate are skipped (their reconciler says why)."""
    meta = platform["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]
    bodies = [platform] + [
        m
        for m in members
        if m.get("kind") != "DataPlatform"
        and m["metadata"].get("namespace", ns) == ns
        and platform_name(m) == name
    ]
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
