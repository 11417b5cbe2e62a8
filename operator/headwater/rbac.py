"""The operator's Kubernetes permissions: derived from what the code does, written once.

The Helm chart's ClusterRoles are generated from this module (`headwater rbac`, `make chart`)
and a unit test fails when the chart is stale, so the chart can't drift from the code:

* every child kind the informers cache and the apply layer writes (`kube/cache.py`
  CHILD_KINDS + OPTIONAL_CHILD_KINDS, and whatever the renderers produce): list/watch for the
  informers, get, create (server-side apply may create; retained objects are POSTed), patch
  (server-side apply) and delete (pruning);
* the Headwater CRs: list/watch (Kopf), patch (finalizers), patch of `status`, update of the
  `finalizers` subresource (owner references with blockOwnerDeletion need it where the
  OwnerReferencesPermissionEnforcement admission plugin runs);
* Events: create (`kube/events.py` posts new Events, it never updates them);
* what the operator hands out: Kubernetes refuses to let anyone create a Role granting more
  than they hold themselves (RBAC escalation prevention), so every rule of every Role the
  renderers produce is held by the operator too — rather that than the `escalate`/`bind`
  verbs, which would let it grant anything;
* Kopf: CRDs (get/list/watch, to notice the CRDs appear), namespaces (list/watch, only to
  resolve a namespace list or globs) and its peering objects (only when several replicas run).

Rules are split by where they must be bound: `namespaced` (bound per watched namespace, or
cluster-wide when the operator watches all namespaces or globs) and `cluster` (always
cluster-wide: cluster-scoped kinds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .api import KINDS
from .constants import GROUP
from .kube.cache import CHILD_KINDS, OPTIONAL_CHILD_KINDS
from .kube.resources import KNOWN

# Verbs on every kind the operator creates and prunes.
CHILD_VERBS: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "watch")
READ_VERBS: tuple[str, ...] = ("get", "list", "watch")
KOPF_PEERING_GROUP = "kopf.dev"
# Never granted, whatever a Role the operator renders asks for: a renderer that needs one of
# these must be redesigned (a test checks it).
FORBIDDEN_RESOURCES: frozenset[str] = frozenset(
    {
        "pods/exec",
        "pods/attach",
        "pods/portforward",
        "nodes",
        "nodes/proxy",
        "serviceaccounts/token",
    }
)
FORBIDDEN_VERBS: frozenset[str] = frozenset({"*", "escalate", "bind", "impersonate"})

# Specs the renderers are run with to learn which kinds and Role rules they produce:
# everything switched on, so every component's objects appear.
SAMPLE_SPECS: dict[str, dict[str, Any]] = {
    "DataPlatform": {
        "kafka": {"mode": "managed"},
        "connect": {"mode": "managed"},
        "flink": {"mode": "managed"},
        "spark": {"mode": "managed"},
        "objectStore": {"mode": "managed"},
        "monitoring": {"mode": "managed"},
    },
}


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule (resource rules only; the operator needs no non-resource URLs)."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


Grants = dict[tuple[str, str], set[str]]  # (apiGroup, resource) -> verbs


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _plural(api_version: str, kind: str) -> str:
    info = KNOWN.get((api_version, kind))
    if info is None:
        raise LookupError(f"{kind} ({api_version}) is not in kube/resources.KNOWN")
    return info.plural


def _add(grants: Grants, group: str, resources: Iterable[str], verbs: Iterable[str]) -> None:
    for resource in resources:
        grants.setdefault((group, resource), set()).update(verbs)


def rendered_objects() -> list[dict[str, Any]]:
    """What the offline renderers produce for the all-on samples."""
    from .constants import API_VERSION
    from .render.registry import render_offline

    out: list[dict[str, Any]] = []
    for kind, spec in SAMPLE_SPECS.items():
        doc = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
        out.extend(render_offline(doc))
    return out


def granted_by(objects: Iterable[Mapping[str, Any]]) -> Grants:
    """The union of the rules of the Roles among `objects` (what the operator hands out)."""
    grants: Grants = {}
    for obj in objects:
        if obj.get("kind") not in ("Role", "ClusterRole"):
            continue
        for rule in obj.get("rules") or []:
            for group in rule.get("apiGroups") or [""]:
                _add(grants, group, rule.get("resources") or [], rule.get("verbs") or [])
    return grants


def is_kubernetes_child(obj: Mapping[str, Any]) -> bool:
    """Whether an offline-rendered object is one the operator applies to the cluster. Offline
    renders also show data-plane payloads (e.g. a Connect connector) as pseudo-objects in the
    headwater.dev group; the operator never creates headwater.dev objects."""
    return not str(obj.get("apiVersion", "")).startswith(f"{GROUP}/")


def child_kinds(objects: Iterable[Mapping[str, Any]] = ()) -> list[tuple[str, str]]:
    kinds = dict.fromkeys([*CHILD_KINDS, *OPTIONAL_CHILD_KINDS])
    for obj in objects:
        if is_kubernetes_child(obj):
            kinds.setdefault((obj["apiVersion"], obj["kind"]))
    return list(kinds)


def namespaced_grants(objects: Iterable[Mapping[str, Any]] | None = None) -> Grants:
    """What the operator needs inside every namespace it manages."""
    objs = rendered_objects() if objects is None else list(objects)
    grants: Grants = {}
    for api_version, kind in child_kinds(objs):
        _add(grants, _group(api_version), [_plural(api_version, kind)], CHILD_VERBS)
    plurals = [info.plural for info in KINDS]
    _add(grants, GROUP, plurals, ("get", "list", "watch", "patch"))
    _add(grants, GROUP, [f"{p}/status" for p in plurals], ("get", "patch"))
    _add(grants, GROUP, [f"{p}/finalizers" for p in plurals], ("update",))
    _add(grants, "", ["events"], ("create",))
    for key, verbs in granted_by(objs).items():
        grants.setdefault(key, set()).update(verbs)
    return grants


def compact(grants: Grants) -> list[Rule]:
    """Rules with the resources of a group that share the same verbs merged, sorted."""
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), verbs in grants.items():
        merged.setdefault((group, tuple(sorted(verbs))), []).append(resource)
    return [
        Rule(group, tuple(sorted(resources)), verbs)
        for (group, verbs), resources in sorted(merged.items())
    ]


def expand(rules: Iterable[Mapping[str, Any]]) -> Grants:
    """The inverse of `compact` for rules read back from YAML (tests compare grants)."""
    grants: Grants = {}
    for rule in rules:
        for group in rule.get("apiGroups") or [""]:
            _add(grants, group, rule.get("resources") or [], rule.get("verbs") or [])
    return grants


def permission_sets() -> dict[str, list[Rule]]:
    """All rule sets the chart binds, by name (see charts/headwater/templates/rbac.yaml)."""
    return {
        # Bound in every watched namespace (RoleBinding), or cluster-wide.
        "namespaced": compact(namespaced_grants()),
        # Always cluster-wide: Kopf notices CRDs being (re)installed.
        "cluster": [Rule("apiextensions.k8s.io", ("customresourcedefinitions",), READ_VERBS)],
        # Cluster-wide, only when the operator watches a list of namespaces or globs: Kopf
        # lists namespaces to resolve them (and warns, then guesses, without it).
        "namespaceScan": [Rule("", ("namespaces",), READ_VERBS)],
        # Only with several replicas: Kopf's peering keep-alives (cluster-wide or per namespace).
        "peeringCluster": [
            Rule(KOPF_PEERING_GROUP, ("clusterkopfpeerings",), ("get", "list", "patch", "watch"))
        ],
        "peeringNamespaced": [
            Rule(KOPF_PEERING_GROUP, ("kopfpeerings",), ("get", "list", "patch", "watch"))
        ],
    }


HEADER = (
    "# Generated by `headwater rbac` from operator/headwater/rbac.py. Do not edit:\n"
    "# run `make chart`. The chart's ClusterRoles include these rule sets.\n"
)


def render_yaml() -> str:
    """The rule sets as the YAML file the chart reads (charts/headwater/files/rbac.yaml)."""
    doc = {name: [r.to_dict() for r in rules] for name, rules in permission_sets().items()}
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=1000)


def problems(rules: Iterable[Rule]) -> list[str]:
    """Rules that would make the operator more powerful than it may ever be."""
    out = []
    for rule in rules:
        for resource in rule.resources:
            if resource in FORBIDDEN_RESOURCES or resource == "*":
                out.append(f"{rule.api_group or 'core'}/{resource}")
        out.extend(f"verb {v} on {rule.resources}" for v in rule.verbs if v in FORBIDDEN_VERBS)
    return out
