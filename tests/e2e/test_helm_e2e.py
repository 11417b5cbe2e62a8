"""The Helm chart on the real control plane, and what GitOps tools see of Headwater.

Helm is v3 built from source with the cluster's Kubernetes version stamped in
(`hack/services.sh helm install`). Each test installs under its own release name into its
own namespace; the CRDs are the ones the session installed (identical to the chart's), so
nothing shared changes. Operator pods on kwok become Ready but run nothing, so an installed
chart never competes with the session's operator.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import headwater
from hwtest import ROOT, require
from hwtest import services as svc
from hwtest.kubectl import Kubectl, condition, is_ready, wait_for
from hwtest.operator import OperatorProcess
from hwtest.session import AS_SERVICEACCOUNT, SESSION_PREFIX, ChartServiceAccount

CHART = ROOT / "charts" / "headwater"
DOCS = ROOT / "docs" / "gitops.md"


@pytest.fixture(scope="module")
def helm(kubeconfig: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    path = ""
    with contextlib.suppress(svc.ServiceUnavailable):
        path = svc.env("helm").get("HELM", "")
    require(bool(path) and Path(path).exists(), "helm (hack/services.sh helm install)")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [path, "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, timeout=300
        )
        if check:
            assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run


@pytest.fixture
def release(helm: Callable[..., Any], namespace: str, kubectl: Kubectl) -> Any:
    """A release name unique to the test; uninstalled afterwards whatever happened."""
    name = f"hw{secrets.token_hex(3)}"
    # The chart's pods meet the "restricted" Pod Security Standard: enforce it, so a
    # regression shows as a pod the API server refuses to create.
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    yield name
    helm("uninstall", name, "-n", namespace, "--wait", "--timeout", "60s", check=False)


def test_kubernetes_version_is_injected(
    helm: Callable[..., Any], kubectl: Kubectl, tmp_path: Path
) -> None:
    """Offline rendering (`helm template`, `helm lint`) assumes the cluster's Kubernetes minor,
    stamped into the binary at build time, not the 1.20 a plain `go install` reports."""
    server = kubectl.json("version")["serverVersion"]
    probe = tmp_path / "kv"
    (probe / "templates").mkdir(parents=True)
    (probe / "Chart.yaml").write_text("apiVersion: v2\nname: kv\nversion: 0.1.0\n")
    (probe / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kv}\n"
        "data: {kube: {{ .Capabilities.KubeVersion.Version | quote }}}\n"
    )
    offline = yaml.safe_load(helm("template", str(probe)).stdout)["data"]["kube"]
    assert offline.split(".")[:2] == server["gitVersion"].split(".")[:2], (offline, server)
    assert helm("version", "--short").stdout.startswith("v3.")


def test_lint_strict_and_server_side_dry_run(
    helm: Callable[..., Any], kubectl: Kubectl, crds: None, namespace: str
) -> None:
    """`helm template` output is accepted by the API server (schema, admission) for the
    default values and the variants users pick."""
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART)).stdout
    # Kopf's peering CRDs (chart crds/) must exist for the multi-replica variant's object.
    kubectl.run("apply", "--server-side", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    variants: list[list[str]] = [
        [],
        ["--set", f"watchNamespaces={{{namespace}}}"],
        ["--set", "watchNamespaces={team-*,shop}"],
        ["--set", "replicas=3"],
        ["--set", "replicas=2", "--set", f"watchNamespaces={{{namespace}}}"],
        ["--set", "networkPolicy.egress[0].ports[0].port=443"],
        ["--set", "operator.logLevel=debug", "--set", "image.digest=sha256:" + "0" * 64],
    ]
    for values in variants:
        rendered = helm("template", "dry", str(CHART), "-n", namespace, *values).stdout
        proc = kubectl.run(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered, check=False
        )
        assert proc.returncode == 0, f"{values}: {proc.stderr}"
        kinds = {line.split("/")[0] for line in proc.stdout.splitlines()}
        assert "deployment.apps" in kinds and "clusterrole.rbac.authorization.k8s.io" in kinds


def test_optional_monitoring_objects_pass_server_side_dry_run(
    helm: Callable[..., Any], kubectl: Kubectl, crds: None, namespace: str
) -> None:
    """The ServiceMonitor, PrometheusRule and dashboards ConfigMap the chart renders only on
    request, against the monitoring.coreos.com API (the test's minimal CRDs unless the
    cluster serves the real ones)."""
    from test_alerts_e2e import install_crds, remove_crds

    ours = install_crds(kubectl)
    try:
        rendered = helm(
            "template", "dry", str(CHART), "-n", namespace,
            "--set", "metrics.serviceMonitor.enabled=true",
            "--set", "metrics.serviceMonitor.labels.release=prometheus",
            "--set", "metrics.prometheusRule.enabled=true",
            "--set", "metrics.prometheusRule.alertLabels.team=data",
            "--set", "grafana.dashboards.enabled=true",
        ).stdout  # fmt: skip
        proc = kubectl.run(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered, check=False
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        if ours:
            remove_crds(kubectl)
    accepted = {line.split(" ")[0] for line in proc.stdout.splitlines()}
    assert {
        "servicemonitor.monitoring.coreos.com/dry-headwater",
        "prometheusrule.monitoring.coreos.com/dry-headwater",
        "configmap/dry-headwater-dashboards",
    } <= accepted, proc.stdout


def test_install_manifests_pass_server_side_dry_run(kubectl: Kubectl, crds: None) -> None:
    """`kubectl apply -k manifests/install`, what docs/install.md tells users to run, is
    accepted by the API server. A server-side dry run creates nothing, so the namespace the
    manifests put everything in must exist for their namespaced objects to be checked; it is
    created for the run (and removed) when the cluster has none."""
    install = ROOT / "manifests" / "install"
    docs = [d for d in yaml.safe_load_all(kubectl.run("kustomize", str(install)).stdout) if d]
    ns = next(d for d in docs if d["kind"] == "Namespace")["metadata"]["name"]
    assert {d["metadata"].get("namespace", ns) for d in docs} == {ns}, "one namespace"
    created = kubectl.get("namespace", ns) is None
    if created:
        kubectl.run("create", "namespace", ns)
    try:
        proc = kubectl.run("apply", "-k", str(install), "--dry-run=server", check=False)
    finally:
        if created:
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(docs), proc.stdout
    assert all(line.endswith("(server dry run)") for line in lines), proc.stdout
    kinds = {line.split("/")[0] for line in lines}
    assert {"customresourcedefinition.apiextensions.k8s.io", "deployment.apps"} <= kinds


def _deployment(kubectl: Kubectl, name: str, namespace: str) -> dict[str, Any]:
    dep = kubectl.get("deployment", name, namespace)
    assert dep is not None, f"no Deployment {name}"
    return dep


def _rolled_out(dep: dict[str, Any]) -> bool:
    status = dep.get("status") or {}
    want = dep["spec"]["replicas"]
    return (
        status.get("observedGeneration") == dep["metadata"]["generation"]
        and status.get("updatedReplicas") == want
        and status.get("readyReplicas") == want
        and status.get("replicas") == want
    )


def test_install_upgrade_uninstall(
    helm: Callable[..., Any], kubectl: Kubectl, crds: None, namespace: str, release: str
) -> None:
    crd_uids = {
        c["metadata"]["name"]: c["metadata"]["uid"]
        for c in kubectl.items("crd", selector="app.kubernetes.io/part-of=headwater")
    }
    # A user's resource that must survive the uninstall (nobody reconciles it here).
    zone = {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "LakeZone",
        "metadata": {"name": "keep-me", "namespace": namespace},
        "spec": {"platformRef": {"name": "p"}, "tier": "bronze", "bucket": "keep-me-bronze"},
    }

    # --- install: everything created, the operator Deployment Ready on kwok nodes ---
    started = time.monotonic()
    helm("install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "180s")
    install_s = time.monotonic() - started
    name = f"{release}-headwater"
    dep = _deployment(kubectl, name, namespace)
    assert _rolled_out(dep), dep["status"]
    pods = kubectl.items("pods", namespace, f"app.kubernetes.io/instance={release}")
    assert len(pods) == 1 and condition(pods[0], "Ready")["status"] == "True"  # type: ignore[index]
    # Scheduled onto a Ready node: a kwok node here, a kind worker with Docker.
    node = kubectl.get("node", pods[0]["spec"]["nodeName"])
    assert node is not None and condition(node, "Ready")["status"] == "True"  # type: ignore[index]
    assert (
        pods[0]["spec"]["containers"][0]["image"] == f"headwater/operator:{headwater.__version__}"
    )
    for kind, obj in [
        ("serviceaccount", name),
        ("service", f"{name}-metrics"),
        ("networkpolicy", name),
        ("clusterrole", name),
        ("clusterrole", f"{name}-cluster"),
        ("clusterrolebinding", name),
        ("clusterrolebinding", f"{name}-cluster"),
    ]:
        assert kubectl.get(kind, obj, namespace) is not None, f"{kind}/{obj} missing"
    endpoints = kubectl.items(
        "endpointslices", namespace, f"kubernetes.io/service-name={name}-metrics"
    )
    assert endpoints and endpoints[0]["endpoints"][0]["conditions"]["ready"] is True
    status = json.loads(helm("status", release, "-n", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    kubectl.apply(zone)
    zone_uid = kubectl.get("lakezone", "keep-me", namespace)["metadata"]["uid"]  # type: ignore[index]

    # --- upgrade with changed values: the Deployment rolls to a new ReplicaSet ---
    old_rs = {
        r["metadata"]["name"]
        for r in kubectl.items("replicasets", namespace, f"app.kubernetes.io/instance={release}")
    }
    helm(
        "upgrade", release, str(CHART), "-n", namespace, "--reuse-values",
        "--set", "operator.workers=4", "--set", "podAnnotations.rolled=yes",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    dep = wait_for(
        lambda: (d := _deployment(kubectl, name, namespace)) and _rolled_out(d) and d,
        120,
        what="upgraded Deployment rolled out",
    )
    assert dep["metadata"]["generation"] == 2
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["HEADWATER_WORKERS"] == "4"
    rs = kubectl.items("replicasets", namespace, f"app.kubernetes.io/instance={release}")
    new_rs = {r["metadata"]["name"] for r in rs} - old_rs
    assert len(new_rs) == 1, rs
    assert {
        r["metadata"]["name"]: r["status"].get("replicas", 0)
        for r in rs
        if r["metadata"]["name"] in old_rs
    } == dict.fromkeys(old_rs, 0)
    pods = wait_for(
        lambda: (
            [
                p
                for p in kubectl.items("pods", namespace, f"app.kubernetes.io/instance={release}")
                if not p["metadata"].get("deletionTimestamp")
            ]
            if len(kubectl.items("pods", namespace, f"app.kubernetes.io/instance={release}")) == 1
            else None
        ),
        120,
        what="old operator pod gone",
    )
    assert pods[0]["metadata"]["annotations"]["rolled"] == "yes"
    history = json.loads(helm("history", release, "-n", namespace, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]

    # --- uninstall: the operator goes, CRDs and users' resources stay ---
    helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s")
    wait_for(
        lambda: kubectl.get("deployment", name, namespace) is None, 60, what="Deployment deleted"
    )
    for kind, obj in [("clusterrole", name), ("clusterrolebinding", f"{name}-cluster")]:
        assert kubectl.get(kind, obj) is None, f"{kind}/{obj} left behind"
    after = {
        c["metadata"]["name"]: c["metadata"]["uid"]
        for c in kubectl.items("crd", selector="app.kubernetes.io/part-of=headwater")
    }
    assert after == crd_uids, "helm uninstall touched the CRDs"
    kept = kubectl.get("lakezone", "keep-me", namespace)
    assert kept is not None and kept["metadata"]["uid"] == zone_uid, "a CR was deleted"
    print(f"helm install --wait took {install_s:.1f}s")


def test_multi_replica_install_with_peering(
    helm: Callable[..., Any], kubectl: Kubectl, crds: None, namespace: str, release: str
) -> None:
    """Two replicas: the peering object Kopf needs exists, a PDB protects the pair."""
    kubectl.run("apply", "--server-side", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    helm(
        "install", release, str(CHART), "-n", namespace, "--set", "replicas=2",
        "--set", f"watchNamespaces={{{namespace}}}", "--wait", "--timeout", "180s",
    )  # fmt: skip
    name = f"{release}-headwater"
    assert _rolled_out(_deployment(kubectl, name, namespace))
    assert kubectl.get("kopfpeering", name, namespace) is not None
    pdb = kubectl.get("poddisruptionbudget", name, namespace)
    assert pdb is not None
    wait_for(
        lambda: (
            (p := kubectl.get("poddisruptionbudget", name, namespace))
            and (p.get("status") or {}).get("disruptionsAllowed") == 1
        ),
        60,
        what="PDB allows one disruption",
    )
    assert kubectl.get("rolebinding", name, namespace) is not None
    assert kubectl.get("clusterrolebinding", name) is None, "namespaced install bound cluster-wide"


# --- GitOps: what Argo CD and Flux see ------------------------------------------------------


def _platform(name: str, namespace: str) -> dict[str, Any]:
    from test_platform_e2e import platform

    return platform(name, namespace)


def test_client_side_apply_sees_no_drift_and_no_operator_metadata(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    """`kubectl apply` (client-side: the last-applied annotation, as Argo CD does) of a CR:
    the operator adds no annotation, label or finalizer of its own, only status; applying the
    same file again changes nothing and `kubectl diff` finds no drift."""
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(_platform("gitops", namespace)))
    kubectl.run("apply", "-f", str(path))
    applied = kubectl.get("dataplatform", "gitops", namespace)
    assert applied is not None
    ready = wait_for(
        lambda: (p := kubectl.get("dataplatform", "gitops", namespace)) and is_ready(p) and p,
        120,
        what="DataPlatform Ready",
    )
    meta = ready["metadata"]
    assert set(meta.get("annotations") or {}) == {
        "kubectl.kubernetes.io/last-applied-configuration"
    }
    assert meta.get("annotations") == applied["metadata"].get("annotations")
    assert meta.get("labels") == applied["metadata"].get("labels")
    assert meta.get("finalizers") in (None, []), "DataPlatform needs no finalizer"
    assert meta["generation"] == 1, "the operator wrote to spec or metadata"
    managers = kubectl.json(
        "get", "dataplatform", "gitops", "-n", namespace, "--show-managed-fields"
    )["metadata"]["managedFields"]
    headwater_fields = [m for m in managers if m["manager"] == "headwater"]
    assert headwater_fields and all(m.get("subresource") == "status" for m in headwater_fields)
    # Same file again: nothing to do, and no drift for a GitOps diff.
    out = kubectl.run("apply", "-f", str(path)).stdout
    assert "unchanged" in out, out
    diff = kubectl.run("diff", "-f", str(path), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    rv = kubectl.get("dataplatform", "gitops", namespace)["metadata"]["resourceVersion"]  # type: ignore[index]
    time.sleep(10)
    assert kubectl.get("dataplatform", "gitops", namespace)["metadata"]["resourceVersion"] == rv  # type: ignore[index]


def kstatus(obj: dict[str, Any]) -> str:
    """The kstatus rules for a custom resource (sigs.k8s.io/cli-utils/pkg/kstatus/status,
    GenericConditions), which Flux's `wait: true` and health checks apply."""
    meta, status = obj["metadata"], obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    if status.get("observedGeneration", meta.get("generation")) != meta.get("generation"):
        return "InProgress"
    if (c := condition(obj, "Reconciling")) and c["status"] == "True":
        return "InProgress"
    if (c := condition(obj, "Stalled")) and c["status"] == "True":
        return "Failed"
    if (c := condition(obj, "Ready")) and c["status"] == "False":
        return "InProgress"
    return "Current"


def argocd_health(lua_source: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Run the documented Argo CD health check on `obj` in Lua 5.1, the dialect of Argo CD's
    gopher-lua; like Argo CD, the script sees the resource as the global `obj`."""
    try:
        from lupa import lua51
    except ImportError:
        require(False, "lupa (pip install -e .[test])")
        raise
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(lua_source)
    return str(result["status"]), str(result["message"] or "")


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def test_docs_pin_the_current_version() -> None:
    """The Git tags and image tags the install and GitOps guides tell users to pin are this
    version's (no cluster needed: it fails at the version bump that forgets the docs)."""
    pins = {
        "docs/gitops.md": r"targetRevision: (v[0-9][^\s]*)|ref: \{tag: (v[0-9][^\s}]*)\}",
        "docs/install.md": r"headwater/operator:([0-9][^\s]*)|newTag: ([0-9][^\s]*)",
    }
    for doc, pattern in pins.items():
        found = [a or b for a, b in re.findall(pattern, (ROOT / doc).read_text())]
        assert found, f"{doc}: no version pins found (update this test with the docs)"
        want = f"v{headwater.__version__}" if "gitops" in doc else headwater.__version__
        assert set(found) == {want}, (doc, found)


def _lua_from_docs() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)
    for block in blocks:
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                custom = yaml.safe_load(doc["data"]["resource.customizations"])
                return str(custom["headwater.dev/*"]["health.lua"])
    raise AssertionError("docs/gitops.md has no argocd-cm ConfigMap with the health check")


# One resource of every kind that can never become Ready here: each waits for something that
# does not exist (a Secret, the platform it belongs to), which the operator reports as
# Ready=False and keeps retrying -- not a spec error, so not Stalled.
CANNOT_BECOME_READY: dict[str, dict[str, Any]] = {
    "DataPlatform": {
        **{c: {"mode": "disabled"} for c in ("kafka", "connect", "flink", "spark", "monitoring")},
        "objectStore": {
            "mode": "external",
            "external": {
                "endpoint": "http://127.0.0.1:1",
                "credentialsSecretRef": {"name": "no-such-secret"},
            },
        },
    },
    "DataSource": {
        "type": "postgres",
        "host": "127.0.0.1",
        "port": 1,
        "database": "shop",
        "credentialsSecretRef": {"name": "no-such-secret"},
    },
    "CdcConnector": {
        "platformRef": {"name": "no-such-platform"},
        "sourceRef": {"name": "no-such-source"},
        "tables": ["public.orders"],
    },
    "StreamJob": {
        "platformRef": {"name": "no-such-platform"},
        "engine": "flink",
        "flink": {"sql": ["SELECT 1"], "upgradeMode": "stateless"},
    },
    "LakeZone": {
        "platformRef": {"name": "no-such-platform"},
        "tier": "bronze",
        "bucket": "health-bronze",
    },
}


@pytest.mark.parametrize("kind", sorted(CANNOT_BECOME_READY))
def test_health_of_a_resource_that_cannot_become_ready(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, kind: str
) -> None:
    """Every kind, live, in the state "acted on, not Ready, still trying": Argo CD's check
    (as documented) says Progressing with the operator's reason, kstatus says InProgress."""
    lua = _lua_from_docs()
    kubectl.apply(
        {
            "apiVersion": "headwater.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": "waiting", "namespace": namespace},
            "spec": CANNOT_BECOME_READY[kind],
        }
    )

    def acted_on() -> dict[str, Any] | None:
        obj = kubectl.get(kind.lower(), "waiting", namespace)
        observed = (obj or {}).get("status", {}).get("observedGeneration")
        if obj and observed == obj["metadata"]["generation"] and condition(obj, "Ready"):
            return obj
        return None

    obj = wait_for(acted_on, 60, what=f"{kind} status for the current generation")
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "False", obj["status"]
    stalled = condition(obj, "Stalled")
    assert stalled is None or stalled["status"] == "False", obj["status"]
    health, message = argocd_health(lua, obj)
    assert (health, kstatus(obj)) == ("Progressing", "InProgress"), obj["status"]
    assert message.startswith(f"{ready['reason']}: "), message
    # Still so after more attempts: the state is stable, not a moment before Ready.
    time.sleep(5)
    again = kubectl.get(kind.lower(), "waiting", namespace)
    assert again is not None and not is_ready(again)
    assert (argocd_health(lua, again)[0], kstatus(again)) == ("Progressing", "InProgress")


def test_health_as_argocd_and_flux_read_it(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    """The documented Argo CD health check and the kstatus rules, applied to live CRs in the
    other states the operator reports: ready, stalled (invalid), paused (the not-ready state
    of every kind is the test above)."""
    lua = _lua_from_docs()

    def both(obj: dict[str, Any]) -> tuple[str, str]:
        return argocd_health(lua, obj)[0], kstatus(obj)

    kubectl.apply(_platform("health", namespace))
    ready = wait_for(
        lambda: (p := kubectl.get("dataplatform", "health", namespace)) and is_ready(p) and p,
        120,
        what="Ready",
    )
    assert both(ready) == ("Healthy", "Current")
    # A spec change not yet observed: both must wait, whatever the old conditions say.
    stale = json.loads(json.dumps(ready))
    stale["metadata"]["generation"] += 1
    assert both(stale) == ("Progressing", "InProgress")

    bad = "a-platform-name-that-is-much-too-long-for-its-children"
    kubectl.apply(_platform(bad, namespace))
    stalled = wait_for(
        lambda: (
            (p := kubectl.get("dataplatform", bad, namespace))
            and (c := condition(p, "Stalled"))
            and c["status"] == "True"
            and p
        ),
        60,
        what="Stalled",
    )
    health, message = argocd_health(lua, stalled)
    assert (health, kstatus(stalled)) == ("Degraded", "Failed")
    assert "metadata.name" in message

    kubectl.run(
        "patch", "dataplatform", "health", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"paused": True}}),
    )  # fmt: skip
    paused = wait_for(
        lambda: (
            (p := kubectl.get("dataplatform", "health", namespace))
            and (c := condition(p, "Reconciling"))
            and c["reason"] == "Paused"
            and p
        ),
        60,
        what="Paused",
    )
    assert argocd_health(lua, paused)[0] == "Suspended"


def test_two_replicas_one_active(
    helm: Callable[..., Any],
    kubectl: Kubectl,
    crds: None,
    chart_serviceaccount: Callable[..., ChartServiceAccount],
    tmp_path: Path,
) -> None:
    """What the chart sets up for `replicas: 2` (HEADWATER_PEERING and the KopfPeering object),
    with two real operator processes: one reconciles, and when it stops the other takes over.
    They run with the ServiceAccount and RBAC of exactly that install (peering rules, a
    RoleBinding in the one namespace): the session's ServiceAccount has no peering rules,
    as a one-replica install needs none."""
    from test_platform_e2e import platform

    kubectl.run("apply", "--server-side", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    ns = f"{SESSION_PREFIX}ha{secrets.token_hex(3)}"  # outside the session operator's glob
    kubectl.run("create", "namespace", ns)
    op_kubeconfig = kubectl.kubeconfig
    if AS_SERVICEACCOUNT:
        tag = secrets.token_hex(3)
        sa = chart_serviceaccount(
            f"{SESSION_PREFIX}-ha{tag}", f"{SESSION_PREFIX}hasys{tag}",
            "--set", "replicas=2", "--set", f"watchNamespaces={{{ns}}}",
        )  # fmt: skip
        op_kubeconfig = str(sa.write_kubeconfig(tmp_path / "sa.kubeconfig"))
    rendered = helm(
        "template", "ha", str(CHART), "-n", ns, "--set", "replicas=2",
        "--set", f"watchNamespaces={{{ns}}}", "--show-only", "templates/peering.yaml",
        "--show-only", "templates/deployment.yaml",
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    env = {
        e["name"]: e["value"]
        for d in docs
        if d["kind"] == "Deployment"
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e
    }
    kubectl.apply([d for d in docs if d["kind"] == "KopfPeering"])
    ops = [
        OperatorProcess(
            op_kubeconfig,
            tmp_path / f"op{i}",
            env={"HEADWATER_PEERING": env["HEADWATER_PEERING"]},
            namespaces=[ns],
        )
        for i in range(2)
    ]
    spec = {"kafka": {"mode": "disabled"}, "connect": {"mode": "disabled"}}
    try:
        for op in ops:
            op.start()
        kubectl.apply(platform("first", ns, **spec))
        wait_for(
            lambda: is_ready(kubectl.get("dataplatform", "first", ns)), 60, what="Ready, 2 replicas"
        )
        active = [op for op in ops if 'result="ok"' in op.metrics()]
        assert len(active) == 1, "exactly one replica reconciles"
        active[0].stop()
        kubectl.apply(platform("second", ns, **spec))
        wait_for(
            lambda: is_ready(kubectl.get("dataplatform", "second", ns)),
            90,
            what="the standby replica took over",
        )
    finally:
        for op in ops:
            op.stop()
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
    for op in ops:
        op.assert_not_denied()
