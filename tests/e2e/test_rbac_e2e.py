"""The chart's RBAC on a real API server: the operator, authenticated as the chart's
ServiceAccount (a bound token, not impersonation), reconciles a platform; what it does not
need is denied.

Every operator of the e2e suite runs this way (conftest `operator_kubeconfig`: a glob install,
cluster-wide bindings); these tests cover the namespaced install (RoleBindings only) and the
denials, which the rest of the suite can't show.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hwtest.kubectl import Kubectl, condition, is_ready, wait_for
from hwtest.operator import OperatorProcess
from hwtest.session import SESSION_PREFIX, ChartServiceAccount


def can_i(kubectl: Kubectl, user: str, verb: str, resource: str, *args: str) -> bool:
    """`kubectl auth can-i`; `resource` may name a subresource as `pods/exec`."""
    res, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    proc = kubectl.run("auth", "can-i", verb, res, *extra, *args, f"--as={user}", check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stderr
    return answer == "yes"


@pytest.fixture
def own_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace outside the session operator's `<prefix>-*` glob: only the operator under
    test may reconcile in it."""
    name = f"{SESSION_PREFIX}rb{secrets.token_hex(3)}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespaced_sa(
    chart_serviceaccount: Callable[..., ChartServiceAccount], own_namespace: str
) -> ChartServiceAccount:
    """The chart installed for exactly one namespace: RoleBindings there, nothing else."""
    tag = secrets.token_hex(3)
    return chart_serviceaccount(
        f"{SESSION_PREFIX}-rb{tag}",
        f"{SESSION_PREFIX}rbsys{tag}",
        "--set",
        f"watchNamespaces={{{own_namespace}}}",
    )


def test_forbidden_outside_its_needs(
    kubectl: Kubectl, crds: None, namespaced_sa: ChartServiceAccount, own_namespace: str
) -> None:
    user, ns = namespaced_sa.user, own_namespace
    # What it needs, in the namespace it manages.
    for verb, resource in [
        ("patch", "dataplatforms.headwater.dev/status"),
        ("update", "dataplatforms.headwater.dev/finalizers"),
        ("watch", "cdcconnectors.headwater.dev"),
        ("patch", "statefulsets.apps"),
        ("delete", "deployments.apps"),
        ("list", "secrets"),
        ("create", "events"),
        ("create", "roles.rbac.authorization.k8s.io"),
    ]:
        assert can_i(kubectl, user, verb, resource, "-n", ns), f"{verb} {resource}"
    assert can_i(kubectl, user, "list", "customresourcedefinitions.apiextensions.k8s.io")
    # What it never needs.
    for args in [
        ("delete", "nodes"),
        ("get", "nodes"),
        ("create", "pods/exec", "-n", ns),
        ("create", "pods/portforward", "-n", ns),
        ("get", "pods/log", "-n", ns),
        ("create", "serviceaccounts/token", "-n", ns),
        ("create", "dataplatforms.headwater.dev", "-n", ns),
        ("delete", "dataplatforms.headwater.dev", "-n", ns),
        ("update", "dataplatforms.headwater.dev", "-n", ns),
        ("escalate", "roles.rbac.authorization.k8s.io", "-n", ns),
        ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("impersonate", "serviceaccounts", "-n", ns),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("delete", "namespaces"),
        ("create", "clusterkopfpeerings.kopf.dev"),
    ]:
        assert not can_i(kubectl, user, *args), args
    # Namespaced install: nothing in namespaces it does not manage.
    for other in ("kube-system", "default", namespaced_sa.namespace):
        assert not can_i(kubectl, user, "list", "secrets", "-n", other), other
        assert not can_i(kubectl, user, "patch", "deployments.apps", "-n", other), other
        assert not can_i(kubectl, user, "list", "dataplatforms.headwater.dev", "-n", other), other
    # The denial is real, not only what can-i predicts: the API server refuses a request made
    # with the ServiceAccount's own token.
    sa_kubectl = Kubectl(namespaced_sa.write_kubeconfig(Path(kubectl.kubeconfig).parent / "x"))
    try:
        proc = sa_kubectl.run("get", "secrets", "-n", "kube-system", check=False)
        # The shape the conftest guard looks for in the operator's log.
        assert proc.returncode != 0 and "Forbidden" in proc.stderr, proc.stderr
        assert f'User "{user}" cannot list resource "secrets"' in proc.stderr, proc.stderr
        proc = sa_kubectl.run("get", "secrets", "-n", ns, check=False)
        assert proc.returncode == 0, proc.stderr
    finally:
        Path(sa_kubectl.kubeconfig).unlink()


def test_operator_as_serviceaccount_reconciles_its_namespace(
    kubectl: Kubectl,
    crds: None,
    namespaced_sa: ChartServiceAccount,
    own_namespace: str,
    tmp_path: Path,
) -> None:
    """The operator, started with the ServiceAccount's token and only the RoleBindings of a
    namespaced install, takes a full platform (every child kind, the Spark Role it must be
    allowed to grant, Secrets, Events, status) to Ready, and never hits a 403."""
    from test_platform_e2e import expected_children, platform

    kubeconfig = namespaced_sa.write_kubeconfig(tmp_path / "sa.kubeconfig")
    op = OperatorProcess(kubeconfig, tmp_path / "logs", namespaces=[own_namespace])
    op.start()
    try:
        body = platform("rbac", own_namespace)
        kubectl.apply(body)
        ready: dict[str, Any] = wait_for(
            lambda: (p := kubectl.get("dataplatform", "rbac", own_namespace)) and is_ready(p) and p,
            180,
            what="DataPlatform Ready as the ServiceAccount",
        )
        assert condition(ready, "Stalled")["status"] == "False"  # type: ignore[index]
        owned = kubectl.items(
            "statefulsets,deployments,services,configmaps,secrets,serviceaccounts,roles,"
            "rolebindings,poddisruptionbudgets,persistentvolumeclaims",
            own_namespace,
            "headwater.dev/owner-name=rbac",
        )
        assert {(o["kind"], o["metadata"]["name"]) for o in owned} == expected_children(body)
        events = kubectl.json(
            "get", "events", "-n", own_namespace, "--field-selector", "involvedObject.name=rbac"
        )
        assert any(e["reason"] == "Ready" for e in events["items"]), "no Event posted"
        # Deleting prunes through owner references; the operator itself needs no more.
        kubectl.run("delete", "dataplatform", "rbac", "-n", own_namespace, "--timeout=60s")
    finally:
        op.stop()
    logs = op.logs()
    assert "controller started" in logs
    denied = [line for line in logs.splitlines() if "Forbidden" in line and " cannot " in line]
    assert not denied, "\n".join(denied[:20])
    assert "Not enough permissions" not in logs, "Kopf lacked a permission"
