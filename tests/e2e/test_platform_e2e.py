"""DataPlatform reconciliation through the real operator on a real control plane."""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from headwater.render.registry import render_offline
from hwtest.kubectl import Kubectl, condition, is_ready, wait_for
from hwtest.operator import OperatorProcess
from hwtest.session import SESSION_PREFIX

OWNER = "headwater.dev/owner-name"
CHILD_KINDS = "statefulsets,deployments,services,configmaps,secrets,serviceaccounts,roles,rolebindings,poddisruptionbudgets,persistentvolumeclaims"


def platform(name: str, namespace: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kafka": {"mode": "managed", "managed": {"replicas": 3, "defaultReplicationFactor": 3}},
        "connect": {"mode": "managed"},
        "flink": {"mode": "managed"},
        "spark": {"mode": "managed"},
        "objectStore": {"mode": "managed"},
        "monitoring": {"mode": "managed"},
    }
    spec.update(overrides)
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "DataPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def children(kubectl: Kubectl, namespace: str, owner: str) -> list[dict[str, Any]]:
    return kubectl.items(
        CHILD_KINDS, namespace, f"{OWNER}={owner},app.kubernetes.io/managed-by=headwater"
    )


def child_names(kubectl: Kubectl, namespace: str, owner: str) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in children(kubectl, namespace, owner)}


def get_platform(kubectl: Kubectl, name: str, namespace: str) -> dict[str, Any] | None:
    return kubectl.get("dataplatform", name, namespace)


def wait_ready(kubectl: Kubectl, name: str, namespace: str, timeout: float = 120) -> dict[str, Any]:
    return wait_for(
        lambda: (p := get_platform(kubectl, name, namespace)) and is_ready(p) and p,
        timeout,
        what=f"DataPlatform {name} Ready",
    )


def expected_children(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in render_offline(body)}


def test_platform_reaches_ready_with_owned_children(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    body = platform("shop", namespace)
    kubectl.apply(body)
    ready = wait_ready(kubectl, "shop", namespace)
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]
    assert condition(ready, "Reconciling")["status"] == "False"  # type: ignore[index]
    assert condition(ready, "Stalled")["status"] == "False"  # type: ignore[index]
    assert ready["status"]["readyComponents"] == "6/6"
    eps = ready["status"]["endpoints"]
    assert eps["kafkaBootstrapServers"] == f"shop-kafka.{namespace}.svc:9092"
    assert eps["connectUrl"] == f"http://shop-connect.{namespace}.svc:8083"
    assert eps["flinkRestUrl"].endswith(":8081") and eps["s3Endpoint"].endswith(":9000")
    assert eps["prometheusUrl"] == f"http://shop-prometheus.{namespace}.svc:9090"

    uid = ready["metadata"]["uid"]
    objs = children(kubectl, namespace, "shop")
    assert {(o["kind"], o["metadata"]["name"]) for o in objs} == expected_children(body)
    for obj in objs:
        refs = obj["metadata"]["ownerReferences"]
        assert refs == [
            {
                "apiVersion": "headwater.dev/v1alpha1",
                "kind": "DataPlatform",
                "name": "shop",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], obj["metadata"]["name"]
    full = kubectl.json(
        "get",
        "statefulset,deployment,configmap",
        "-n",
        namespace,
        "--show-managed-fields",
        "-l",
        f"{OWNER}=shop",
    )
    for obj in full["items"]:
        managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
        assert ("headwater", "Apply") in managers, obj["metadata"]["name"]

    table = kubectl.run("get", "dataplatforms", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "READY", "REASON", "COMPONENTS", "AGE"]
    assert table[1].split()[:4] == ["shop", "True", "Ready", "6/6"]
    events = kubectl.json(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=shop"
    )
    assert any(e["reason"] == "Ready" for e in events["items"])


def test_config_change_rolls_pods(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(platform("roll", namespace))
    wait_ready(kubectl, "roll", namespace)
    sts = kubectl.get("statefulset", "roll-kafka", namespace)
    assert sts is not None
    before = sts["spec"]["template"]["metadata"]["annotations"]["headwater.dev/config-hash"]
    old_rev = sts["status"]["currentRevision"]

    kubectl.run(
        "patch",
        "dataplatform",
        "roll",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"kafka": {"managed": {"config": {"log.retention.hours": "24"}}}}}),
    )
    ready = wait_ready(kubectl, "roll", namespace, timeout=180)
    assert ready["metadata"]["generation"] == 2
    sts = kubectl.get("statefulset", "roll-kafka", namespace)
    assert sts is not None
    after = sts["spec"]["template"]["metadata"]["annotations"]["headwater.dev/config-hash"]
    assert after != before
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] != old_rev
    assert sts["status"]["readyReplicas"] == 3
    cm = kubectl.get("configmap", "roll-kafka-config", namespace)
    assert cm is not None and "log.retention.hours=24" in cm["data"]["server.properties"]
    pods = kubectl.items("pods", namespace, "app.kubernetes.io/instance=roll-kafka")
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {
        sts["status"]["updateRevision"]
    }


def test_disabling_a_component_prunes_its_objects(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(platform("prune", namespace))
    wait_ready(kubectl, "prune", namespace)
    assert ("Deployment", "prune-flink-jobmanager") in child_names(kubectl, namespace, "prune")
    kubectl.run(
        "patch",
        "dataplatform",
        "prune",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"flink": {"mode": "disabled"}, "monitoring": {"mode": "disabled"}}}),
    )
    ready = wait_ready(kubectl, "prune", namespace)
    names = child_names(kubectl, namespace, "prune")
    assert not [n for n in names if "flink" in n[1] or "prometheus" in n[1]], names
    assert ("StatefulSet", "prune-kafka") in names
    assert ready["status"]["readyComponents"] == "4/4"
    assert {c["name"]: c["mode"] for c in ready["status"]["components"]}["flink"] == "disabled"


def test_paused_platform_is_left_alone(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(platform("paused", namespace))
    wait_ready(kubectl, "paused", namespace)
    kubectl.run(
        "patch",
        "dataplatform",
        "paused",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"paused": True, "connect": {"managed": {"replicas": 2}}}}),
    )
    wait_for(
        lambda: (
            (c := condition(get_platform(kubectl, "paused", namespace), "Reconciling"))
            and c["reason"] == "Paused"
        ),
        30,
        what="Reconciling=False/Paused",
    )
    time.sleep(5)
    dep = kubectl.get("deployment", "paused-connect", namespace)
    assert dep is not None and dep["spec"]["replicas"] == 1, "paused platform was changed"
    kubectl.run(
        "patch",
        "dataplatform",
        "paused",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"paused": False}}),
    )
    wait_for(
        lambda: (
            (d := kubectl.get("deployment", "paused-connect", namespace))
            and d["spec"]["replicas"] == 2
        ),
        60,
        what="connect scaled to 2 after unpausing",
    )
    wait_ready(kubectl, "paused", namespace)


def test_deleting_the_platform_garbage_collects_children(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(platform("gone", namespace))
    wait_ready(kubectl, "gone", namespace)
    started = time.monotonic()
    kubectl.run("delete", "dataplatform", "gone", "-n", namespace, "--timeout=60s")
    assert time.monotonic() - started < 60, "deletion hung"
    wait_for(
        lambda: not children(kubectl, namespace, "gone"), 90, what="children garbage-collected"
    )


def test_invalid_spec_is_stalled_not_retried(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    # Passes the schema (names are up to 253 characters), refused by the operator: child
    # names would exceed Kubernetes limits.
    name = "a-platform-name-that-is-much-too-long-for-its-children"
    kubectl.apply(platform(name, namespace))
    obj = wait_for(
        lambda: (p := get_platform(kubectl, name, namespace)) and condition(p, "Stalled") and p,
        30,
        what="Stalled condition",
    )
    stalled, ready = condition(obj, "Stalled"), condition(obj, "Ready")
    assert (
        stalled is not None and stalled["status"] == "True" and stalled["reason"] == "InvalidSpec"
    )
    assert ready is not None and ready["status"] == "False" and "metadata.name" in ready["message"]
    rv = obj["metadata"]["resourceVersion"]
    time.sleep(5)
    again = get_platform(kubectl, name, namespace)
    assert again is not None and again["metadata"]["resourceVersion"] == rv, (
        "stalled object keeps changing"
    )
    assert children(kubectl, namespace, name) == []


def test_missing_external_secret_is_reported(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    body = platform(
        "ext",
        namespace,
        kafka={"mode": "disabled"},
        connect={"mode": "disabled"},
        flink={"mode": "disabled"},
        spark={"mode": "disabled"},
        monitoring={"mode": "disabled"},
        objectStore={
            "mode": "external",
            "external": {
                "endpoint": "http://127.0.0.1:1",
                "credentialsSecretRef": {"name": "s3-admin"},
            },
        },
    )
    kubectl.apply(body)
    obj = wait_for(
        lambda: (
            (p := get_platform(kubectl, "ext", namespace))
            and (c := condition(p, "Ready"))
            and c["reason"] == "SecretNotFound"
            and p
        ),
        30,
        what="SecretNotFound",
    )
    assert "s3-admin" in condition(obj, "Ready")["message"]  # type: ignore[index]
    kubectl.run(
        "create",
        "secret",
        "generic",
        "s3-admin",
        "-n",
        namespace,
        "--from-literal=accessKey=a",
        "--from-literal=secretKey=b",
    )
    # The Secret event alone re-triggers the platform; then the unreachable endpoint shows.
    wait_for(
        lambda: (
            (c := condition(get_platform(kubectl, "ext", namespace), "Ready"))
            and c["reason"] == "ComponentsNotReady"
        ),
        30,
        what="platform re-reconciled after the Secret appeared",
    )


# What Kubernetes itself puts into every namespace.
NAMESPACE_DEFAULTS = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


def claims_of_statefulsets(objs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The PVCs the StatefulSet controller creates from volumeClaimTemplates
    (`<template>-<statefulset>-<ordinal>`): in the namespace, but not the operator's."""
    return {
        ("PersistentVolumeClaim", f"{t['metadata']['name']}-{o['metadata']['name']}-{i}")
        for o in objs
        if o["kind"] == "StatefulSet"
        for t in o["spec"].get("volumeClaimTemplates") or []
        for i in range(int(o["spec"].get("replicas", 1)))
    }


def everything_in(kubectl: Kubectl, namespace: str) -> set[tuple[str, str]]:
    """Every object of the child kinds in the namespace, labelled by Headwater or not."""
    return {(o["kind"], o["metadata"]["name"]) for o in kubectl.items(CHILD_KINDS, namespace)}


def kill_at_first_child(kubectl: Kubectl, op: OperatorProcess, body: dict[str, Any]) -> None:
    """Apply `body` and SIGKILL the operator as soon as the API server reports its first child.
    Watches (kubectl watches one kind at a time: one per child kind), not polling, see it
    within milliseconds."""
    meta = body["metadata"]

    def watch(kind: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                kubectl.binary, "--kubeconfig", kubectl.kubeconfig, "get", kind.lower(),
                "-n", meta["namespace"], "-l", f"{OWNER}={meta['name']}", "--watch", "-o", "name",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip

    watches = [watch(kind) for kind in sorted({o["kind"] for o in render_offline(body)})]
    try:
        with selectors.DefaultSelector() as sel:
            for w in watches:
                assert w.stdout is not None
                sel.register(w.stdout, selectors.EVENT_READ)
            time.sleep(2)  # the watches are established
            assert not sel.select(0), "children before the platform was applied"
            kubectl.apply(body)
            ready = sel.select(60)
            op.kill()
            assert ready, "no child appeared within 60 s"
    finally:
        for w in watches:
            w.kill()
            w.wait(10)


def test_operator_killed_mid_reconcile_converges(
    kubectl: Kubectl, crds: None, operator_kubeconfig: str, tmp_path: Path
) -> None:
    """SIGKILL during a platform's first reconcile, then a restart: the platform converges and
    its namespace holds exactly its children and what Kubernetes adds, nothing unlabelled,
    orphaned or doubled. Own operator with HEADWATER_API_CONCURRENCY=1: it applies the ~40
    children one after another, so the kill lands inside the reconcile; the session operator
    applies them all at once and leaves no window to hit."""
    prefix = f"{SESSION_PREFIX}x-crash{uuid.uuid4().hex[:4]}"
    op = OperatorProcess(
        operator_kubeconfig,
        tmp_path,
        env={"HEADWATER_API_CONCURRENCY": "1"},
        namespaces=[f"{prefix}-*"],
    )
    op.start()
    made: list[str] = []
    try:
        for attempt in range(3):
            ns = f"{prefix}-{attempt}"
            kubectl.run("create", "namespace", ns)
            made.append(ns)
            body = platform("crash", ns)
            expected = expected_children(body)
            kill_at_first_child(kubectl, op, body)
            time.sleep(1)  # requests the API server had already received still land
            partial = child_names(kubectl, ns, "crash")
            if partial < expected:
                break
            # The first reconcile finished before the kill: not the case under test. Again,
            # in a fresh namespace.
            print(f"attempt {attempt}: all {len(expected)} children before the kill")
            op.start()
        else:
            raise AssertionError("never killed the operator in the middle of a reconcile")
        assert partial, "killed before the first child"
        print(f"killed with {len(partial)} of {len(expected)} children applied")
        op.start()
        wait_ready(kubectl, "crash", ns, timeout=180)
        assert child_names(kubectl, ns, "crash") == expected
        want = expected | NAMESPACE_DEFAULTS | claims_of_statefulsets(render_offline(body))
        assert everything_in(kubectl, ns) == want
    finally:
        op.stop()
        for ns in made:
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
    op.assert_not_denied()


def test_steady_state_makes_no_writes(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(platform("steady", namespace))
    wait_ready(kubectl, "steady", namespace)
    time.sleep(5)  # let the last rollout status updates land

    def versions() -> dict[tuple[str, str], str]:
        out = {
            (o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"]
            for o in children(kubectl, namespace, "steady")
        }
        cr = get_platform(kubectl, "steady", namespace)
        assert cr is not None
        out[("DataPlatform", "steady")] = cr["metadata"]["resourceVersion"]
        return out

    before = versions()
    # Force resyncs during the window: a restart re-reconciles everything it finds.
    operator.restart()
    time.sleep(60)
    after = versions()
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert not changed, f"objects changed at steady state: {changed}"
    assert set(after) == set(before)
    cr = get_platform(kubectl, "steady", namespace)
    assert cr is not None
    assert not [k for k in cr["metadata"].get("annotations", {}) if "kopf" in k]
    assert "kopf" not in json.dumps(cr.get("status", {}))
    assert cr["metadata"].get("finalizers") in (None, [])


@pytest.mark.parametrize("kind", ["DataSource", "CdcConnector", "StreamJob", "LakeZone"])
def test_other_kinds_get_status(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, kind: str
) -> None:
    """Every kind is reconciled: a reference to a missing platform/source ends in a clear status."""
    specs = {
        "DataSource": {
            "type": "postgres",
            "host": "127.0.0.1",
            "port": 1,
            "database": "shop",
            "credentialsSecretRef": {"name": "missing"},
        },
        "CdcConnector": {
            "platformRef": {"name": "missing"},
            "sourceRef": {"name": "missing"},
            "tables": ["public.orders"],
        },
        "StreamJob": {
            "platformRef": {"name": "missing"},
            "engine": "flink",
            "flink": {"sql": ["SELECT 1"], "upgradeMode": "stateless"},
        },
        "LakeZone": {"platformRef": {"name": "missing"}, "tier": "bronze", "bucket": "shop-bronze"},
    }
    kubectl.apply(
        {
            "apiVersion": "headwater.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": "orphan", "namespace": namespace},
            "spec": specs[kind],
        }
    )
    obj = wait_for(
        lambda: (
            (o := kubectl.get(kind.lower(), "orphan", namespace)) and condition(o, "Ready") and o
        ),
        60,
        what=f"{kind} status",
    )
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "False"
    assert ready["reason"] in ("MissingReference", "SecretNotFound"), ready
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]


def _api_requests(op: OperatorProcess) -> dict[str, float]:
    return {
        verb: float(n)
        for verb, n in re.findall(
            r'^headwater_kube_api_requests\{verb="(\w+)"\} ([0-9.e+]+)$', op.metrics(), re.M
        )
    }


def test_namespace_deletion_is_not_fought(
    kubectl: Kubectl, crds: None, operator_kubeconfig: str, tmp_path: Path
) -> None:
    """Deleting a namespace makes the namespace controller delete the children one by one;
    each deletion wakes the platform, and re-creating the missing children is refused
    ("being terminated"). The namespace must go, without a storm of writes. Own operator,
    so only this namespace counts."""
    ns = f"{SESSION_PREFIX}x-nsdel-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", ns)
    op = OperatorProcess(operator_kubeconfig, tmp_path, namespaces=[ns])
    op.start()
    try:
        names = ("doomed-a", "doomed-b", "doomed-c")
        for name in names:
            kubectl.apply(platform(name, ns, monitoring={"mode": "disabled"}))
        for name in names:
            wait_ready(kubectl, name, ns, timeout=180)
        before = _api_requests(op)
        kubectl.run("delete", "namespace", ns, "--timeout=180s")
        after = _api_requests(op)
        writes = sum(after.get(v, 0) - before.get(v, 0) for v in ("PATCH", "POST", "PUT"))
        print(f"{writes:.0f} writes while the namespace was deleted")
        # Whether a re-create gets refused at all depends on the order in which the
        # namespace controller deletes resource types (a Go map: random), so the skip itself
        # is proven by the unit test; here: the deletion finishes (the delete above waits)
        # and there is no storm -- writes to objects that still exist are accepted until they
        # go (measured: 20-30 with the check, ~75 without, for three platforms).
        assert writes <= 100, f"{writes:.0f} writes while the namespace was deleted"
    finally:
        op.stop()
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
    op.assert_not_denied()
