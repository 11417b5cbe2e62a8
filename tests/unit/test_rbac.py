"""The operator's RBAC rules (operator/headwater/rbac.py): complete for what the code does,
nothing more, and the chart's copy current."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from headwater import rbac
from headwater.api import KINDS
from headwater.kube.cache import CHILD_KINDS, OPTIONAL_CHILD_KINDS
from headwater.render.registry import render_offline
from hwtest import ROOT, example_docs

CHART_RULES = ROOT / "charts" / "headwater" / "files" / "rbac.yaml"


def covers(grants: rbac.Grants, group: str, resource: str, verbs: set[str]) -> bool:
    return verbs <= grants.get((group, resource), set())


def test_chart_rules_are_current() -> None:
    assert CHART_RULES.read_text() == rbac.render_yaml(), (
        "charts/headwater/files/rbac.yaml is stale: run `make chart`"
    )


@pytest.mark.parametrize("api_version,kind", [*CHILD_KINDS, *OPTIONAL_CHILD_KINDS])
def test_every_child_kind_can_be_cached_applied_and_pruned(api_version: str, kind: str) -> None:
    grants = rbac.namespaced_grants()
    group = api_version.rpartition("/")[0]
    plural = rbac._plural(api_version, kind)
    assert covers(grants, group, plural, {"list", "watch", "get", "create", "patch", "delete"})


def test_custom_resources_status_finalizers_and_events() -> None:
    grants = rbac.namespaced_grants()
    for info in KINDS:
        assert covers(grants, "headwater.dev", info.plural, {"list", "watch", "patch"})
        assert covers(grants, "headwater.dev", f"{info.plural}/status", {"patch"})
        assert covers(grants, "headwater.dev", f"{info.plural}/finalizers", {"update"})
        # The operator never creates or deletes users' resources.
        assert not {"create", "delete", "deletecollection", "update"} & grants.get(
            ("headwater.dev", info.plural), set()
        )
    assert grants[("", "events")] == {"create"}


def _rendered_examples() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for doc in example_docs():
        if str(doc.get("apiVersion", "")).startswith("headwater.dev/"):
            placed = {**doc, "metadata": {**doc["metadata"], "namespace": "ns"}}
            out.extend(render_offline(placed))
    return out


def test_operator_holds_every_permission_it_hands_out() -> None:
    """Kubernetes refuses a Role that grants more than its creator holds (escalation check):
    every Role any example renders must be covered, or the apply fails with 403 in a cluster."""
    objects = _rendered_examples()
    assert any(o["kind"] == "Role" for o in objects), "examples render no Role: test is vacuous"
    grants = rbac.namespaced_grants()
    for (group, resource), verbs in rbac.granted_by(objects).items():
        assert covers(grants, group, resource, verbs), (group, resource, verbs)


def test_every_rendered_kind_is_writable() -> None:
    grants = rbac.namespaced_grants()
    for obj in filter(rbac.is_kubernetes_child, _rendered_examples()):
        group = obj["apiVersion"].rpartition("/")[0]
        plural = rbac._plural(obj["apiVersion"], obj["kind"])
        assert covers(grants, group, plural, set(rbac.CHILD_VERBS)), obj["kind"]


def test_nothing_beyond_the_operators_needs() -> None:
    sets = rbac.permission_sets()
    for name, rules in sets.items():
        assert rbac.problems(rules) == [], name
    flat = {(r.api_group, res) for rules in sets.values() for r in rules for res in r.resources}
    for denied in [
        ("", "nodes"),
        ("", "pods/exec"),
        ("", "pods/portforward"),
        ("", "serviceaccounts/token"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("apiextensions.k8s.io", "customresourcedefinitions/status"),
    ]:
        assert denied not in flat, denied
    # Cluster-scoped sets are read-only but for Kopf's own peering object.
    for name in ("cluster", "namespaceScan"):
        assert all(set(r.verbs) <= set(rbac.READ_VERBS) for r in sets[name]), name


def test_problems_flags_dangerous_rules() -> None:
    bad = [
        rbac.Rule("", ("pods/exec",), ("create",)),
        rbac.Rule("rbac.authorization.k8s.io", ("roles",), ("escalate",)),
        rbac.Rule("apps", ("*",), ("get",)),
    ]
    assert len(rbac.problems(bad)) == 3


def test_compact_and_expand_round_trip() -> None:
    grants = rbac.namespaced_grants()
    rules = [r.to_dict() for r in rbac.compact(grants)]
    assert rbac.expand(yaml.safe_load(yaml.safe_dump(rules))) == grants
