"""End-to-end self-checks of the dev cluster, written against ``kubectl`` only.

Each ``check_*(kubeconfig)`` raises ``AssertionError`` with a readable message on
failure, works in its own throw-away namespace and cleans up after itself, so they can
be called from pytest (``def test_x(kubeconfig): check_x(kubeconfig)``) or run all at
once: ``PYTHONPATH=operator python -m headwater.devenv.selftest_cluster [KUBECONFIG]``.

They prove what the operator's e2e suite relies on: Ready nodes, workloads that reach
Ready (including StatefulSets with volumeClaimTemplates), Jobs and CronJobs that
complete, garbage collection, ServiceAccount tokens, RBAC and impersonation, and the
apiserver's ``/metrics``.

``kubectl`` is taken from ``$HEADWATER_KUBECTL``, else from the cached build (never
building anything), else from ``PATH``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from headwater.devenv.binaries import BinariesNotFoundError, locate
from headwater.devenv.config import ClusterConfig

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
JsonObj = dict[str, Any]


# ------------------------------------------------------------------ helpers


def _kubectl_binary() -> str:
    explicit = os.environ.get("HEADWATER_KUBECTL", "").strip()
    if explicit:
        return explicit
    try:
        return str(locate(build=False).kubectl)
    except BinariesNotFoundError:
        pass
    found = shutil.which("kubectl")
    assert found, "no kubectl: set HEADWATER_KUBECTL or build with hack/build-k8s.sh"
    return found


def kubectl(
    kubeconfig: str, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against ``kubeconfig``; on failure assert with its stderr."""
    proc = subprocess.run(
        [_kubectl_binary(), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (
            f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc


def _apply(kubeconfig: str, namespace: str, *objs: JsonObj) -> None:
    docs = yaml.safe_dump_all(list(objs), sort_keys=False)
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", stdin=docs)


def _get(kubeconfig: str, namespace: str, *what: str) -> JsonObj:
    out = kubectl(kubeconfig, "-n", namespace, "get", *what, "-o", "json").stdout
    result: JsonObj = json.loads(out)
    return result


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` every half second; assert with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextmanager
def _namespace(kubeconfig: str, prefix: str) -> Iterator[str]:
    """A fresh namespace whose default ServiceAccount exists (pods need it)."""
    name = f"selftest-{prefix}-{secrets.token_hex(3)}"
    kubectl(kubeconfig, "create", "namespace", name)
    try:
        _wait(
            lambda: (
                kubectl(kubeconfig, "-n", name, "get", "sa", "default", check=False).returncode == 0
            ),
            30,
            f"ServiceAccount default in {name}",
        )
        yield name
    finally:
        kubectl(kubeconfig, "delete", "namespace", name, "--wait=false", check=False)


def _pod_spec(restart: str = "Always") -> JsonObj:
    return {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": PAUSE_IMAGE}],
    }


def _deployment(name: str, replicas: int) -> JsonObj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec()},
        },
    }


def _job_spec() -> JsonObj:
    return {"backoffLimit": 0, "template": {"spec": _pod_spec("Never")}}


def _has_condition(obj: JsonObj, cond_type: str) -> bool:
    return any(
        c.get("type") == cond_type and c.get("status") == "True"
        for c in obj.get("status", {}).get("conditions", [])
    )


# ------------------------------------------------------------------- checks


def check_nodes_ready(kubeconfig: str, minimum: int = 2) -> None:
    """At least ``minimum`` nodes report Ready=True."""
    nodes = _get(kubeconfig, "default", "nodes")["items"]
    ready = [n["metadata"]["name"] for n in nodes if _has_condition(n, "Ready")]
    assert len(ready) >= minimum, f"only {len(ready)} Ready nodes ({ready}), want {minimum}"


def check_deployment_ready(kubeconfig: str) -> None:
    """A 2-replica Deployment becomes 2/2 Ready and Available."""
    with _namespace(kubeconfig, "deploy") as ns:
        _apply(kubeconfig, ns, _deployment("web", 2))

        def ready() -> bool:
            status = _get(kubeconfig, ns, "deployment", "web").get("status", {})
            return bool(status.get("readyReplicas") == 2 and status.get("availableReplicas") == 2)

        _wait(ready, 60, "deployment web 2/2 ready")


def check_statefulset_with_volumes(kubeconfig: str) -> None:
    """A 2-replica StatefulSet with a volumeClaimTemplate: PVCs Bound, 2/2 Ready."""
    with _namespace(kubeconfig, "sts") as ns:
        labels = {"app": "db"}
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 5432}]},
        }
        template = {"metadata": {"labels": labels}, "spec": _pod_spec()}
        template["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        sts = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": template,
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        }
        _apply(kubeconfig, ns, service, sts)

        def ready() -> bool:
            status = _get(kubeconfig, ns, "statefulset", "db").get("status", {})
            return bool(status.get("readyReplicas") == 2)

        _wait(ready, 90, "statefulset db 2/2 ready")
        pvcs = _get(kubeconfig, ns, "pvc")["items"]
        phases = sorted(p["status"].get("phase", "") for p in pvcs)
        assert phases == ["Bound", "Bound"], f"PVC phases {phases}, want 2x Bound"


def check_job_completes(kubeconfig: str) -> None:
    """A Job's pod runs to completion and the Job gets condition Complete."""
    with _namespace(kubeconfig, "job") as ns:
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}}
        job["spec"] = _job_spec()
        _apply(kubeconfig, ns, job)
        _wait(
            lambda: _has_condition(_get(kubeconfig, ns, "job", "once"), "Complete"),
            60,
            "job once Complete",
        )


def check_cronjob_runs(kubeconfig: str, timeout: float = 90) -> None:
    """A ``*/1 * * * *`` CronJob spawns a Job that completes (within ~70 s)."""
    with _namespace(kubeconfig, "cron") as ns:
        cron = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "*/1 * * * *",
                "successfulJobsHistoryLimit": 3,
                "jobTemplate": {"spec": _job_spec()},
            },
        }
        _apply(kubeconfig, ns, cron)

        def completed() -> bool:
            jobs = _get(kubeconfig, ns, "jobs")["items"]
            return any(_has_condition(j, "Complete") for j in jobs)

        _wait(completed, timeout, "a completed Job spawned by cronjob tick")


def check_garbage_collection(kubeconfig: str) -> None:
    """Deleting a Deployment removes its ReplicaSet and pods (ownerReferences GC)."""
    with _namespace(kubeconfig, "gc") as ns:
        _apply(kubeconfig, ns, _deployment("doomed", 2))

        def counts() -> tuple[int, int]:
            rs = _get(kubeconfig, ns, "replicasets", "-l", "app=doomed")["items"]
            pods = _get(kubeconfig, ns, "pods", "-l", "app=doomed")["items"]
            return len(rs), len(pods)

        _wait(lambda: counts() == (1, 2), 60, "1 ReplicaSet and 2 pods")
        kubectl(kubeconfig, "-n", ns, "delete", "deployment", "doomed", "--wait=false")
        _wait(lambda: counts() == (0, 0), 60, "ReplicaSet and pods garbage-collected")


def check_serviceaccount_credentials(kubeconfig: str) -> None:
    """``kubectl create token`` works, the token authenticates, and RBAC governs it;
    a legacy token Secret gets filled in by the token controller."""
    with _namespace(kubeconfig, "sa") as ns:
        kubectl(kubeconfig, "-n", ns, "create", "serviceaccount", "robot")
        token = kubectl(kubeconfig, "-n", ns, "create", "token", "robot").stdout.strip()
        assert token.count(".") == 2, "create token did not return a JWT"
        with _token_kubeconfig(kubeconfig, token) as robot:
            who = kubectl(robot, "auth", "whoami", "-o", "json").stdout
            username = json.loads(who)["status"]["userInfo"]["username"]
            assert username == f"system:serviceaccount:{ns}:robot", username
            assert _can_i(robot, ns, "get", "pods") == "no"
            kubectl(kubeconfig, "-n", ns, "create", "role", "reader",
                    "--verb=get,list", "--resource=pods")  # fmt: skip
            kubectl(kubeconfig, "-n", ns, "create", "rolebinding", "reader",
                    "--role=reader", f"--serviceaccount={ns}:robot")  # fmt: skip
            _wait(lambda: _can_i(robot, ns, "get", "pods") == "yes", 15, "RBAC grant")
            assert _can_i(robot, ns, "delete", "pods") == "no"
        _check_legacy_token_secret(kubeconfig, ns)


def _check_legacy_token_secret(kubeconfig: str, ns: str) -> None:
    """The serviceaccount-token controller (kcm's signing key) populates the Secret."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "robot-token",
            "annotations": {"kubernetes.io/service-account.name": "robot"},
        },
    }
    _apply(kubeconfig, ns, secret)

    def filled() -> bool:
        data = _get(kubeconfig, ns, "secret", "robot-token").get("data", {})
        return bool(data.get("token")) and bool(data.get("ca.crt"))

    _wait(filled, 30, "token controller to populate secret robot-token")


def check_impersonation_without_role(kubeconfig: str) -> None:
    """An impersonated ServiceAccount without any Role is denied."""
    answer = _can_i(kubeconfig, "default", "get", "pods", "--as=system:serviceaccount:default:x")
    assert answer == "no", f"auth can-i as SA without a role answered {answer!r}"


def check_metrics(kubeconfig: str) -> None:
    """The admin can read the apiserver's /metrics with ``apiserver_request_total``."""
    out = kubectl(kubeconfig, "get", "--raw", "/metrics").stdout
    assert "apiserver_request_total{" in out, "apiserver_request_total missing from /metrics"


def _can_i(kubeconfig: str, ns: str, verb: str, resource: str, *extra: str) -> str:
    """``kubectl auth can-i`` answer ("yes"/"no"); its exit code is 1 for "no"."""
    proc = kubectl(kubeconfig, "-n", ns, "auth", "can-i", verb, resource, *extra, check=False)
    return proc.stdout.strip()


@contextmanager
def _token_kubeconfig(admin_kubeconfig: str, token: str) -> Iterator[str]:
    """A kubeconfig with only the cluster CA and a bearer token.

    Adding ``--token`` to the admin kubeconfig is not enough: kubectl would still
    present the admin client certificate and the apiserver would authenticate that.
    """
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": {"cluster": cluster["name"], "user": "token"}}],
        "current-context": "token",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        yield str(path)


def decode_jwt_claims(token: str) -> JsonObj:
    """Claims of a JWT (unverified); handy when debugging issuer/audience problems."""
    payload = token.split(".")[1]
    claims: JsonObj = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


ALL_CHECKS: tuple[Callable[[str], None], ...] = (
    check_nodes_ready,
    check_impersonation_without_role,
    check_metrics,
    check_deployment_ready,
    check_statefulset_with_volumes,
    check_job_completes,
    check_garbage_collection,
    check_serviceaccount_credentials,
    check_cronjob_runs,
)


def run_all(kubeconfig: str, workers: int = 3) -> int:
    """Run every check, print one line each and a pytest-style summary; exit code.

    Checks run a few at a time (each in its own namespace): the CronJob check alone
    spends up to a minute waiting for the next schedule.
    """

    def timed(check: Callable[[str], None]) -> tuple[str, float, str | None]:
        t0 = time.monotonic()
        try:
            check(kubeconfig)
        except AssertionError as err:
            return check.__name__, time.monotonic() - t0, str(err) or repr(err)
        return check.__name__, time.monotonic() - t0, None

    failed = 0
    ordered = sorted(ALL_CHECKS, key=lambda c: c is not check_cronjob_runs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in as_completed([pool.submit(timed, c) for c in ordered]):
            name, took, error = future.result()
            failed += error is not None
            verdict = "ok  " if error is None else "FAIL"
            print(f"{verdict} {name} ({took:.1f}s){': ' + error if error else ''}", flush=True)
    print(f"{len(ALL_CHECKS) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(ClusterConfig.from_env().kubeconfig)
    sys.exit(run_all(target))
