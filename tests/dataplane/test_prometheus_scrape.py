"""A real Prometheus (Debian's) on loopback scrapes the running operator and evaluates the
rules the operator generated; a real MinIO answers the generated object-store scrape job.

* The operator runs against the real control plane with two DataPlatforms: one Ready, one
  whose external object store is unreachable. Prometheus scrapes the operator's /metrics;
  the test reads `headwater_*` series back through Prometheus' HTTP API and checks their
  values against the resources' status.
* The rule file the operator rendered into `<platform>-prometheus-rules` is loaded into the
  same Prometheus: the not-ready platform's ResourceNotReady (its `for` shortened through
  `spec.alerts`) fires with the resource's labels, the Ready platform's does not.
* The managed Prometheus' config-reloader sidecar, as rendered, runs against the same
  Prometheus (its paths and port swapped for the local ones): a rule file appearing in or
  leaving the watched directory reaches Prometheus without the test asking for a reload.
* A dedicated MinIO with public metrics is scraped with the generated `minio` job; the
  generated ObjectStoreCapacityHigh expression evaluates to the real used percentage, so
  the metric names in the rules are the ones MinIO exports.
Both servers are dedicated instances (own run dir and ports), stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from headwater.alerts import alerts_spec, rule_groups, target
from headwater.api.dataplatform import DataPlatformSpec
from headwater.render.common import Owner
from headwater.render.platform import scrape_configs
from headwater.render.registry import render_offline
from hwtest import ROOT, require
from hwtest.kubectl import Kubectl, condition, wait_for
from hwtest.operator import OperatorProcess, free_port

# Own namespace prefix (not matched by the session operator's `<session prefix>-*`).
PREFIX = f"hwpm{secrets.token_hex(2)}"
SERVICES = ROOT / "hack" / "services.sh"


def services_sh(service: str, action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES), service, action],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env},
    )


class Prometheus:
    """A dedicated Prometheus with our config, reloadable, queried over its HTTP API."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = run_dir / "prometheus.yml"
        self.rules = run_dir / "rules"
        self.rules.mkdir(parents=True, exist_ok=True)
        self.env = {
            "HEADWATER_RUN": str(run_dir),
            "HEADWATER_PROM_PORT": str(self.port),
            "HEADWATER_PROM_CONFIG": str(self.config),
        }

    def write_config(self, scrape: list[dict[str, Any]]) -> None:
        self.config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [f"{self.rules}/*.yaml"],
                    "scrape_configs": scrape,
                },
                sort_keys=False,
            )
        )

    def start(self) -> None:
        proc = services_sh("prometheus", "start", self.env)
        require(proc.returncode == 0, f"Prometheus ({proc.stderr.strip()[-500:]})")

    def stop(self) -> None:
        services_sh("prometheus", "stop", self.env)

    def reload(self) -> None:
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture(scope="module")
def scrape_operator(
    operator_kubeconfig: str, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    # Like every operator of the suites: the chart ServiceAccount's credentials.
    op = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("scrape-operator"),
        namespaces=[f"{PREFIX}-*"],
    )
    op.start()
    yield op
    op.stop()
    print(f"operator logs: {op.log_dir}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    install = services_sh("prometheus", "install", {})
    require(install.returncode == 0, "Prometheus (Debian package prometheus)")
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"))
    prom.write_config([])
    prom.start()
    yield prom
    prom.stop()


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    name = f"{PREFIX}-scrape-{secrets.token_hex(3)}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def platform(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    off = {c: {"mode": "disabled"} for c in ("kafka", "connect", "flink", "spark", "objectStore")}
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "DataPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**off, "monitoring": {"mode": "managed"}, **spec},
    }


def eventually(fn: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    return wait_for(fn, timeout, interval=1, what=what)


def test_prometheus_scrapes_the_operator_and_fires_its_rules(
    kubectl: Kubectl, scrape_operator: OperatorProcess, prometheus: Prometheus, ns: str
) -> None:
    prometheus.write_config(
        [
            {
                "job_name": "headwater-operator",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{scrape_operator.port}"]}],
            }
        ]
    )
    prometheus.reload()

    down = platform(
        "down",
        ns,
        objectStore={
            "mode": "external",
            "external": {
                "endpoint": f"http://127.0.0.1:{free_port()}",
                "credentialsSecretRef": {"name": "s3-admin"},
            },
        },
        alerts={"rules": {"ResourceNotReady": {"for": "3s", "severity": "critical"}}},
    )
    kubectl.run(
        "create",
        "secret",
        "generic",
        "s3-admin",
        "-n",
        ns,
        "--from-literal=accessKey=admin",
        "--from-literal=secretKey=not-a-real-secret-3141",
    )
    kubectl.apply([platform("up", ns), down])
    eventually(
        lambda: (
            (c := condition(kubectl.get("dataplatform", "down", ns), "Ready"))
            and c["reason"] == "ComponentsNotReady"
        ),
        "platform 'down' not ready (object store unreachable)",
    )

    sel = f'namespace="{ns}"'
    ready = f'headwater_resource_ready{{kind="DataPlatform",{sel},name="%s"}}'
    assert eventually(lambda: prometheus.scalar(ready % "up") == 1.0, "up: ready=1 in Prometheus")
    assert eventually(lambda: prometheus.scalar(ready % "down") == 0.0, "down: ready=0")
    comp = f'headwater_platform_component_ready{{{sel},name="down",component="objectStore"}}'
    assert eventually(lambda: prometheus.scalar(comp) == 0.0, "objectStore component ready=0")
    mon = f'headwater_platform_component_ready{{{sel},name="up",component="monitoring"}}'
    assert eventually(lambda: prometheus.scalar(mon) == 1.0, "monitoring component ready=1")
    # this operator watches only this module's namespaces: exactly our two platforms
    counts = 'headwater_resources{kind="DataPlatform",ready="%s"}'
    assert eventually(lambda: prometheus.scalar(counts % "true") == 1.0, "one Ready platform")
    assert eventually(lambda: prometheus.scalar(counts % "false") == 1.0, "one not Ready")
    reconciles = prometheus.scalar('sum(headwater_reconcile_total{kind="DataPlatform"})')
    assert reconciles is not None and reconciles >= 2
    hist = prometheus.scalar('sum(headwater_reconcile_duration_seconds_count{kind="DataPlatform"})')
    assert hist == reconciles
    assert prometheus.query("up{job='headwater-operator'} == 1")

    # load what the operator rendered for the managed Prometheus of each platform
    for name in ("up", "down"):
        cm = eventually(
            lambda n=name: (
                (c := kubectl.get("configmap", f"{n}-prometheus-rules", ns))  # type: ignore[misc]
                and c.get("data")
                and c
            ),
            f"rules ConfigMap of {name}",
        )
        for key, text in cm["data"].items():
            (prometheus.rules / f"{name}-{key}").write_text(text)
    prometheus.reload()

    def firing() -> list[dict[str, Any]]:
        alerts = prometheus.api("alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"].get("alertname") == "ResourceNotReady"
            and a["labels"].get("namespace") == ns
            and a["state"] == "firing"
        ]

    alerts = eventually(firing, "ResourceNotReady firing for platform 'down'", timeout=90)
    assert [a["labels"] for a in alerts] == [
        {
            "alertname": "ResourceNotReady",
            "severity": "critical",
            "namespace": ns,
            "kind": "DataPlatform",
            "name": "down",
            "platform": "down",
        }
    ]
    assert alerts[0]["annotations"]["summary"] == f"DataPlatform {ns}/down is not Ready"
    # the secret given to the platform is nowhere in what Prometheus holds
    dump = json.dumps(prometheus.api("rules")) + json.dumps(prometheus.api("alerts"))
    assert "not-a-real-secret-3141" not in dump
    assert "not-a-real-secret-3141" not in scrape_operator.metrics()
    assert "not-a-real-secret-3141" not in scrape_operator.logs()
    events = kubectl.json("get", "events", "-n", ns)
    assert "not-a-real-secret-3141" not in json.dumps(events)


def test_config_reloader_sidecar_reloads_rules_it_sees_change(
    prometheus: Prometheus, tmp_path: Path
) -> None:
    """The sidecar's shell loop, exactly as rendered, with the pod's mount paths and port
    replaced by this Prometheus' files and port and its 10 s pause by 1 s."""
    name = f"reload{secrets.token_hex(3)}"
    objs = render_offline(platform(name, "shop"))
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    (rules_cm,) = [o for o in objs if o["metadata"]["name"] == f"{name}-prometheus-rules"]
    containers = {c["name"]: c for c in deploy["spec"]["template"]["spec"]["containers"]}
    server, reloader = containers["prometheus"], containers["config-reloader"]
    mounts = {m["name"]: m["mountPath"] for m in reloader["volumeMounts"]}
    (config_arg,) = [a for a in server["args"] if a.startswith("--config.file=")]
    (web,) = [p["containerPort"] for p in server["ports"] if p["name"] == "web"]
    (script,) = reloader["args"]

    def swap(text: str, old: str, new: str) -> str:
        assert text.count(old) == 1, f"{old!r} not once in the reloader script: {text}"
        return text.replace(old, new)

    script = swap(script, f"{mounts['rules']}/", f"{prometheus.rules}/")
    script = swap(script, config_arg.removeprefix("--config.file="), str(prometheus.config))
    script = swap(script, f"127.0.0.1:{web}/", f"127.0.0.1:{prometheus.port}/")
    script, pauses = re.subn(r"\bsleep \d+\b", "sleep 1", script)
    assert pauses == 1 and mounts["config"] not in script, script

    group = f"headwater.dataplatform.shop.{name}"

    def loaded() -> bool:
        return any(g["name"] == group for g in prometheus.api("rules")["groups"])

    def last_config_time() -> str:
        return str(prometheus.api("status/runtimeinfo")["lastConfigTime"])

    assert not loaded()
    log = (tmp_path / "reloader.log").open("w")
    # Its own process group: the loop's `sleep` and `wget` children go with it.
    proc = subprocess.Popen(
        [*reloader["command"], script], stdout=log, stderr=log, start_new_session=True
    )
    rule_file = prometheus.rules / f"{name}-{next(iter(rules_cm['data']))}"
    try:
        before = last_config_time()
        time.sleep(3)  # the loop has taken its baseline and looked again: nothing changed
        assert last_config_time() == before, "reloaded although nothing changed"
        assert not loaded()

        # a new rule file, swapped in atomically as the kubelet updates a ConfigMap volume
        staged = tmp_path / "staged.yaml"
        staged.write_text(next(iter(rules_cm["data"].values())))
        os.replace(staged, rule_file)
        assert eventually(loaded, "the new rule group loaded by the sidecar's reload", 30)
        assert last_config_time() != before
        rules = next(g for g in prometheus.api("rules")["groups"] if g["name"] == group)
        assert {"ResourceNotReady", "HighPipelineErrorRate"} <= {r["name"] for r in rules["rules"]}

        rule_file.unlink()  # and the loop keeps watching: a removed file is unloaded
        assert eventually(lambda: not loaded(), "the removed rule group unloaded", 30)
        assert proc.poll() is None, "the reloader loop exited"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()
        rule_file.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    run = tmp_path_factory.mktemp("minio")
    port, console = free_port(), free_port()
    env = {
        "HEADWATER_RUN": str(run),
        "HEADWATER_MINIO_PORT": str(port),
        "HEADWATER_MINIO_CONSOLE_PORT": str(console),
        # what the managed MinIO runs with (render/templates/minio.yaml.j2)
        "MINIO_PROMETHEUS_AUTH_TYPE": "public",
    }
    for action in ("install", "start"):
        proc = services_sh("minio", action, env)
        require(proc.returncode == 0, f"MinIO ({proc.stderr.strip()[-500:]})")
    yield f"127.0.0.1:{port}"
    services_sh("minio", "stop", env)


def test_generated_minio_job_and_capacity_rule_match_real_minio(
    prometheus: Prometheus, minio: str
) -> None:
    spec = DataPlatformSpec.model_validate({})
    owner = Owner("DataPlatform", "shop", "shop", "u")
    (job,) = [j for j in scrape_configs(spec, owner, "1s") if j["job_name"] == "minio"]
    job["static_configs"][0]["targets"] = [minio]  # the in-cluster Service, here on loopback
    prometheus.write_config([job])
    for old in prometheus.rules.glob("*.yaml"):
        old.unlink()
    prometheus.reload()

    body = {
        "kind": "DataPlatform",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"alerts": {"rules": {"ObjectStoreCapacityHigh": {"threshold": 0}}}},
    }
    groups = rule_groups(target(body, None), alerts_spec(body))  # type: ignore[arg-type]
    expr = next(
        r["expr"] for g in groups for r in g["rules"] if r["alert"] == "ObjectStoreCapacityHigh"
    )
    assert eventually(
        lambda: prometheus.query('up{job="minio",namespace="shop",platform="shop"} == 1'),
        "Prometheus scrapes MinIO with the generated job",
    )
    used = eventually(lambda: prometheus.query(expr), "ObjectStoreCapacityHigh expression has data")
    percent = float(used[0]["value"][1])
    assert 0 < percent < 100, percent
