"""Where the generated alert rules go, on the real control plane through the real operator.

Without the monitoring.coreos.com API the rules reach the platform's managed Prometheus as
the `<platform>-prometheus-rules` ConfigMap. With a (minimal) monitoring.coreos.com CRD
installed while the operator runs, every resource gets its own PrometheusRule and the
platform ServiceMonitors for its exporters; switching alerts off removes them; removing the
CRD again leaves the operator working.

The module runs its own operator (monitoring API re-checked every 2 s instead of every
minute) on its own namespace prefix, so the shared session operator is not involved.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hwtest import DATA
from hwtest.kubectl import Kubectl, is_ready, wait_for
from hwtest.operator import OperatorProcess

# Own namespace prefix (not matched by the session operator's `<session prefix>-*`).
PREFIX = f"hwal{secrets.token_hex(2)}"
CRDS = DATA / "monitoring-crds.yaml"
FIXTURE_LABEL = "headwater.dev/test-fixture=minimal-monitoring-crds"


@pytest.fixture(scope="module")
def alert_operator(
    operator_kubeconfig: str, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("alert-operator"),
        env={"HEADWATER_MONITORING_REFRESH_SECONDS": "2"},
        namespaces=[f"{PREFIX}-*"],
    )
    op.start()
    yield op
    op.stop()
    print(f"operator logs: {op.log_dir}")
    op.assert_not_denied()


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    name = f"{PREFIX}-alerts-{secrets.token_hex(3)}"
    kubectl.run("create", "namespace", name)
    yield name
    # Torn down before the module's operator stops, so the CRs' finalizers still run; with
    # --wait=false the namespace stayed Terminating for good (no operator left to finalize).
    proc = kubectl.run("delete", "namespace", name, "--timeout=90s", check=False)
    assert proc.returncode == 0 or "NotFound" in proc.stderr, proc.stderr


def monitoring_served(kubectl: Kubectl) -> bool:
    proc = kubectl.run("api-resources", "--api-group=monitoring.coreos.com", "-o", "name")
    return "prometheusrules" in proc.stdout


def install_crds(kubectl: Kubectl) -> bool:
    """Install the minimal CRDs unless the cluster already serves monitoring.coreos.com.
    Returns True when this test installed them (and so must remove them)."""
    if monitoring_served(kubectl):
        return False
    kubectl.run("apply", "--server-side", "-f", str(CRDS))
    wait_for(lambda: monitoring_served(kubectl), 60, what="monitoring.coreos.com served")
    return True


def leftover_fixture(kubectl: Kubectl) -> bool:
    return bool(kubectl.items("crd", selector=FIXTURE_LABEL))


def remove_crds(kubectl: Kubectl) -> None:
    """Delete only the CRDs carrying our fixture label (never a real Prometheus Operator's)."""
    kubectl.run("delete", "crd", "-l", FIXTURE_LABEL, "--wait=true", "--timeout=60s", check=False)
    wait_for(lambda: not monitoring_served(kubectl), 60, what="monitoring.coreos.com gone")


def platform(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "DataPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "kafka": {"mode": "managed", "managed": {"replicas": 1}},
            "connect": {"mode": "disabled"},
            "flink": {"mode": "disabled"},
            "spark": {"mode": "disabled"},
            "objectStore": {"mode": "disabled"},
            "monitoring": {"mode": "managed"},
            "alerts": {"labels": {"team": "data"}},
        },
    }


def members(namespace: str) -> list[dict[str, Any]]:
    meta = {"namespace": namespace}
    return [
        {
            "apiVersion": "headwater.dev/v1alpha1",
            "kind": "CdcConnector",
            "metadata": {"name": "orders", **meta},
            "spec": {
                "platformRef": {"name": "p"},
                "sourceRef": {"name": "orders-db"},
                "tables": ["public.orders"],
            },
        },
        {
            "apiVersion": "headwater.dev/v1alpha1",
            "kind": "LakeZone",
            "metadata": {"name": "bronze", **meta},
            "spec": {"platformRef": {"name": "p"}, "tier": "bronze", "bucket": "alerts-bronze"},
        },
    ]


def rule_files(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    cm = kubectl.get("configmap", "p-prometheus-rules", namespace)
    return {k: yaml.safe_load(v) for k, v in ((cm or {}).get("data") or {}).items()}


def alert_names(groups: list[dict[str, Any]]) -> set[str]:
    return {r["alert"] for g in groups for r in g["rules"]}


def prometheus_rules(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in kubectl.items("prometheusrules", namespace)}


def patch(kubectl: Kubectl, kind: str, name: str, namespace: str, spec: dict[str, Any]) -> None:
    kubectl.run(
        "patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": spec})
    )


def reconciled_kinds() -> set[str]:
    from headwater.reconcile.registry import build_reconcilers

    return {r.kind for r in build_reconcilers()}


def test_rules_go_to_configmap_then_prometheusrules_and_off_removes_them(
    kubectl: Kubectl, alert_operator: OperatorProcess, ns: str
) -> None:
    ours = False
    try:
        if monitoring_served(kubectl) and leftover_fixture(kubectl):
            remove_crds(kubectl)  # an interrupted earlier run of this test left them
        if monitoring_served(kubectl):
            pytest.fail(
                "monitoring.coreos.com is served by a real Prometheus Operator here: the "
                "ConfigMap-only half of this test needs a cluster without it"
            )
        # --- no monitoring API: the managed Prometheus' ConfigMap -----------------------------
        kubectl.apply([platform("p", ns), *members(ns)])
        files = wait_for(
            lambda: (f := rule_files(kubectl, ns)) and len(f) == 3 and f,
            90,
            what="rules ConfigMap with the platform, connector and zone files",
        )
        assert set(files) == {
            "dataplatform-p.yaml",
            "cdcconnector-orders.yaml",
            "lakezone-bronze.yaml",
        }
        plat_groups = files["dataplatform-p.yaml"]["groups"]
        assert {"KafkaBrokerDown", "KafkaConsumerLag", "PrometheusTargetDown"} <= alert_names(
            plat_groups
        )
        assert "ConnectWorkerDown" not in alert_names(plat_groups)  # connect disabled
        labels = plat_groups[0]["rules"][0]["labels"]
        assert labels["namespace"] == ns and labels["kind"] == "DataPlatform"
        assert labels["name"] == "p" and labels["team"] == "data"
        wait_for(lambda: is_ready(kubectl.get("dataplatform", "p", ns)), 120, what="platform Ready")
        # the Prometheus Deployment mounts exactly this ConfigMap
        dep = kubectl.get("deployment", "p-prometheus", ns)
        assert dep is not None
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert volumes["rules"]["configMap"]["name"] == "p-prometheus-rules"
        proc = kubectl.run("get", "prometheusrules", "-n", ns, check=False)
        assert proc.returncode != 0 and "doesn't have a resource type" in proc.stderr

        # --- the monitoring API appears: PrometheusRule per resource, ServiceMonitors --------
        ours = install_crds(kubectl)
        rules = wait_for(
            lambda: (r := prometheus_rules(kubectl, ns)) and "p-dataplatform-alerts" in r and r,
            60,
            what="PrometheusRule of the platform",
        )
        plat_rule = rules["p-dataplatform-alerts"]
        cr = kubectl.get("dataplatform", "p", ns)
        assert cr is not None
        assert plat_rule["metadata"]["ownerReferences"][0]["uid"] == cr["metadata"]["uid"]
        assert plat_rule["metadata"]["labels"]["headwater.dev/apply-group"] == "alerts"
        # the same rules as in the managed Prometheus' file
        assert (
            plat_rule["spec"]["groups"] == rule_files(kubectl, ns)["dataplatform-p.yaml"]["groups"]
        )
        monitors = wait_for(
            lambda: (
                (m := {o["metadata"]["name"] for o in kubectl.items("servicemonitors", ns)})
                == {"p-kafka-metrics", "p-kafka-exporter"}
                and m
            ),
            60,
            what="ServiceMonitors of the managed exporters",
        )
        assert monitors
        kinds = reconciled_kinds()
        for kind, name in (("LakeZone", "bronze"), ("CdcConnector", "orders")):
            if kind in kinds:  # the controller's hook runs for reconciled kinds
                wanted = f"{name}-{kind.lower()}-alerts"
                wait_for(
                    lambda w=wanted: w in prometheus_rules(kubectl, ns),  # type: ignore[misc]
                    60,
                    what=f"PrometheusRule of {kind} {name}",
                )
        # the kind reconcilers' own apply never prunes them, and steady state writes nothing
        before = {
            n: o["metadata"]["resourceVersion"] for n, o in prometheus_rules(kubectl, ns).items()
        }
        time.sleep(8)  # several monitoring re-checks and resyncs
        after = {
            n: o["metadata"]["resourceVersion"] for n, o in prometheus_rules(kubectl, ns).items()
        }
        assert after == before

        # --- switching off ---------------------------------------------------------------------
        if "LakeZone" in kinds:
            patch(
                kubectl,
                "lakezone",
                "bronze",
                ns,
                {"alerts": {"rules": {"LakeZoneStale": {"enabled": False}}}},
            )
            wait_for(
                lambda: (
                    "LakeZoneStale"
                    not in alert_names(
                        prometheus_rules(kubectl, ns)["bronze-lakezone-alerts"]["spec"]["groups"]
                    )
                ),
                60,
                what="LakeZoneStale removed from the zone's PrometheusRule",
            )
        patch(kubectl, "dataplatform", "p", ns, {"alerts": {"enabled": False}})
        wait_for(
            lambda: "p-dataplatform-alerts" not in prometheus_rules(kubectl, ns),
            60,
            what="platform PrometheusRule pruned",
        )
        wait_for(
            lambda: "dataplatform-p.yaml" not in rule_files(kubectl, ns),
            60,
            what="platform file gone from the ConfigMap",
        )
        # scraping is not alerting: the ServiceMonitors stay
        assert {o["metadata"]["name"] for o in kubectl.items("servicemonitors", ns)} == monitors
        if "LakeZone" in kinds:
            patch(kubectl, "lakezone", "bronze", ns, {"alerts": {"enabled": False}})
            wait_for(
                lambda: "bronze-lakezone-alerts" not in prometheus_rules(kubectl, ns),
                60,
                what="zone PrometheusRule pruned",
            )
    finally:
        if ours:
            remove_crds(kubectl)

    # --- the monitoring API goes away: the operator carries on ------------------------------------
    patch(kubectl, "dataplatform", "p", ns, {"alerts": {"enabled": True}})
    wait_for(
        lambda: "dataplatform-p.yaml" in rule_files(kubectl, ns),
        60,
        what="platform file back in the ConfigMap after the CRD went away",
    )
    wait_for(lambda: is_ready(kubectl.get("dataplatform", "p", ns)), 60, what="platform Ready")
    if ours:  # the operator noticed the API going away (next discovery check, 2 s here)
        wait_for(
            lambda: "monitoring.coreos.com: not served" in alert_operator.logs(),
            30,
            what="operator logs that monitoring.coreos.com is gone",
        )
    logs = alert_operator.logs()
    assert "alert rules not updated" not in logs, "the alerts hook raised"
    assert "monitoring.coreos.com: serving PrometheusRule, ServiceMonitor" in logs


def test_unknown_rule_names_are_refused_at_apply(kubectl: Kubectl, ns: str, crds: None) -> None:
    body = members(ns)[1]
    body["spec"]["alerts"] = {"rules": {"LakeZoneStail": {"threshold": 3600}}}
    proc = kubectl.apply(body, check=False)
    assert proc.returncode != 0
    assert "unknown alert rule name" in proc.stderr
    body["spec"]["alerts"] = {"labels": {"severity": "page"}}
    proc = kubectl.apply(body, check=False)
    assert proc.returncode != 0 and "set by the operator" in proc.stderr
