"""The alert rule catalogue and its rendering: defaults, overrides, applicability per mode,
labels/annotations, PrometheusRule and ServiceMonitor objects, and the platform's rule files
(the service with a controller Context, no cluster)."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

from headwater.alerts import (
    CATALOGUE,
    alerts_spec,
    file_name,
    not_applicable,
    prometheus_rule,
    rule_groups,
    rules_for_kind,
    service_monitors,
    target,
)
from headwater.alerts.catalogue import sel
from headwater.alerts.rules import object_name
from headwater.api.common import AlertsSpec
from headwater.api.dataplatform import DataPlatformSpec
from headwater.api.datasource import DataSourceSpec
from headwater.cli import validate_doc
from headwater.constants import ALERT_RULE_NAMES, LABEL_APPLY_GROUP
from headwater.reconcile.alerting import AlertsService, parse_labels
from headwater.reconcile.base import Context, Store
from headwater.render.common import Owner
from headwater.render.platform import PlatformContext, render_platform, scrape_configs
from hwtest import ROOT

NS = "shop"


def platform(name: str = "shop", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "DataPlatform",
        "metadata": {"name": name, "namespace": NS, "uid": "u-1", "generation": 1},
        "spec": spec,
    }


def resource(kind: str, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None):
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "uid": f"u-{name}", "generation": 1},
        "spec": spec,
        "status": status or {},
    }


def connector(name: str = "orders", **spec: Any) -> dict[str, Any]:
    base = {"platformRef": {"name": "shop"}, "sourceRef": {"name": "db"}, "tables": ["public.t"]}
    return resource("CdcConnector", name, {**base, **spec})


def flink_job(name: str = "agg", status: dict[str, Any] | None = None, **spec: Any):
    base = {
        "platformRef": {"name": "shop"},
        "engine": "flink",
        "flink": {"sql": ["INSERT INTO a SELECT * FROM b"]},
    }
    return resource("StreamJob", name, {**base, **spec}, status)


def zone(name: str = "bronze", **spec: Any) -> dict[str, Any]:
    base = {"platformRef": {"name": "shop"}, "tier": "bronze", "bucket": "shop-bronze"}
    return resource("LakeZone", name, {**base, **spec})


def rules_of(body: dict[str, Any], plat: dict[str, Any] | None = None) -> dict[str, Any]:
    alerts = alerts_spec(body)
    assert alerts is not None
    groups = rule_groups(target(body, plat if plat is not None else platform()), alerts)
    return {r["alert"]: r for g in groups for r in g["rules"]}


EXTERNAL = {
    "kafka": {"mode": "external", "external": {"bootstrapServers": ["k:9092"]}},
    "connect": {"mode": "external", "external": {"url": "http://c:8083"}},
    "flink": {"mode": "external", "external": {"restUrl": "http://f:8081"}},
    "objectStore": {
        "mode": "external",
        "external": {"endpoint": "http://s3:9000", "credentialsSecretRef": {"name": "s3"}},
    },
    "monitoring": {"mode": "external", "external": {"url": "http://prom:9090"}},
}


# --- catalogue -------------------------------------------------------------------------------


def test_catalogue_names_are_the_api_constants() -> None:
    assert tuple(r.alert for r in CATALOGUE) == ALERT_RULE_NAMES
    from headwater.reconcile.registry import build_reconcilers

    # every kind the operator reconciles reports Ready and errors: the operator-level rules
    for kind in sorted({r.kind for r in build_reconcilers()}):
        names = {r.alert for r in rules_for_kind(kind)}
        assert {"ResourceNotReady", "HighPipelineErrorRate"} <= names, kind
    assert {r.alert for r in rules_for_kind("DataSource")} == {
        "ResourceNotReady",
        "HighPipelineErrorRate",
    }


def test_datasource_gets_the_operator_rules_with_defaults() -> None:
    source = resource(
        "DataSource",
        "orders-db",
        {
            "type": "postgres",
            "host": "db",
            "database": "shop",
            "credentialsSecretRef": {"name": "s"},
        },
    )
    rules = rules_of(source, None)
    sel_ = '{kind="DataSource",namespace="shop",name="orders-db"}'
    assert rules["ResourceNotReady"]["expr"] == f"max(headwater_resource_ready{sel_}) == 0"
    assert rules["ResourceNotReady"]["for"] == "15m"
    assert rules["HighPipelineErrorRate"]["expr"] == (
        f"sum(rate(headwater_resource_errors_total{sel_}[5m])) > 0.01"
    )
    # on no platform: no platform label
    assert rules["ResourceNotReady"]["labels"] == {
        "severity": "warning",
        "namespace": "shop",
        "kind": "DataSource",
        "name": "orders-db",
    }


def test_datasource_alerts_are_tunable_like_every_kind() -> None:
    spec = {
        "type": "postgres",
        "host": "db",
        "database": "shop",
        "credentialsSecretRef": {"name": "s"},
    }
    tuned = {
        **spec,
        "alerts": {
            "rules": {
                "ResourceNotReady": {"for": "30m", "severity": "critical"},
                "HighPipelineErrorRate": {"enabled": False},
            },
            "labels": {"team": "data"},
        },
    }
    DataSourceSpec.model_validate(tuned)  # the model (and so the CRD) has the field
    rules = rules_of(resource("DataSource", "orders-db", tuned), None)
    assert set(rules) == {"ResourceNotReady"}
    assert rules["ResourceNotReady"]["for"] == "30m"
    assert rules["ResourceNotReady"]["labels"]["severity"] == "critical"
    assert rules["ResourceNotReady"]["labels"]["team"] == "data"
    off = {**spec, "alerts": {"enabled": False}}
    assert rules_of(resource("DataSource", "orders-db", off), None) == {}


def test_the_seed_rules_are_represented() -> None:
    """HighPipelineErrorRate, HighDataLag, storage capacity and KafkaConsumerLag."""
    plat = rules_of(platform())
    assert "headwater_resource_errors_total" in plat["HighPipelineErrorRate"]["expr"]
    assert "minio_cluster_capacity_usable_free_bytes" in plat["ObjectStoreCapacityHigh"]["expr"]
    assert "kafka_consumergroup_lag" in plat["KafkaConsumerLag"]["expr"]
    cdc = rules_of(connector())
    assert "MilliSecondsBehindSource" in cdc["CdcConnectorLagHigh"]["expr"]


def test_docs_describe_every_rule() -> None:
    doc = (ROOT / "docs" / "observability.md").read_text()
    for rule in CATALOGUE:
        assert f"`{rule.alert}`" in doc, f"docs/observability.md lacks {rule.alert}"


def test_alerts_package_is_pure() -> None:
    for path in sorted((ROOT / "operator" / "headwater" / "alerts").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
                assert not mod.startswith(("kube", "reconcile", "dataplane", "asyncio")), (
                    path.name,
                    mod,
                )
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name not in ("asyncio", "aiohttp", "requests", "socket")


# --- labels, annotations, defaults -------------------------------------------------------------


def test_labels_carry_the_resource_and_extra_labels() -> None:
    body = connector(alerts={"labels": {"team": "data", "tier": "1"}})
    rule = rules_of(body)["CdcConnectorFailed"]
    assert rule["labels"] == {
        "team": "data",
        "tier": "1",
        "severity": "critical",
        "namespace": NS,
        "kind": "CdcConnector",
        "name": "orders",
        "platform": "shop",
    }
    ann = rule["annotations"]
    assert set(ann) == {"summary", "description", "runbook"}
    assert "shop/orders" in ann["summary"] and "kubectl -n shop" in ann["runbook"]
    assert "{" not in ann["runbook"]


def test_defaults_and_units() -> None:
    rules = rules_of(connector())
    lag = rules["CdcConnectorLagHigh"]
    assert lag["expr"].endswith("/ 1000 > 300") and lag["for"] == "5m"
    assert lag["labels"]["severity"] == "critical"
    not_ready = rules["ResourceNotReady"]
    assert not_ready["for"] == "15m" and "for 15m" in not_ready["annotations"]["description"]


def test_overrides_change_threshold_for_and_severity() -> None:
    body = connector(
        alerts={
            "rules": {
                "CdcConnectorLagHigh": {"threshold": 42.5, "for": "1m", "severity": "warning"},
                "ResourceNotReady": {"for": "30m"},
            }
        }
    )
    rules = rules_of(body)
    lag = rules["CdcConnectorLagHigh"]
    assert lag["expr"].endswith("> 42.5")
    assert lag["for"] == "1m" and lag["labels"]["severity"] == "warning"
    assert "for 30m" in rules["ResourceNotReady"]["annotations"]["description"]


def test_disabling_one_rule_or_all() -> None:
    one = rules_of(connector(alerts={"rules": {"CdcConnectorNoEvents": {"enabled": False}}}))
    assert "CdcConnectorNoEvents" not in one and "CdcConnectorLagHigh" in one
    body = connector(alerts={"enabled": False})
    assert rule_groups(target(body, platform()), alerts_spec(body)) == []  # type: ignore[arg-type]


def test_zero_for_is_omitted() -> None:
    job = flink_job(status={"jobId": "abc"})
    assert "for" not in rules_of(job)["StreamJobCheckpointFailures"]


# --- applicability by mode ---------------------------------------------------------------------


def test_managed_platform_rules_select_platform_scope() -> None:
    rules = rules_of(platform())
    assert set(rules) == {r.alert for r in rules_for_kind("DataPlatform")}
    assert rules["KafkaBrokerDown"]["expr"] == (
        '3 - sum(up{namespace="shop",platform="shop",job="kafka"}) > 0'
    )
    assert rules["PrometheusTargetDown"]["expr"] == 'up{namespace="shop",platform="shop"} == 0'


def test_external_components_use_the_operators_probe() -> None:
    plat = platform(**EXTERNAL)
    rules = rules_of(plat, plat)
    assert rules["KafkaBrokerDown"]["expr"] == (
        '1 - max(headwater_platform_component_ready{namespace="shop",name="shop",'
        'component="kafka"}) > 0'
    )
    # exporter metrics of external components cannot be told apart: no such rules
    for absent in ("KafkaUnderReplicatedPartitions", "KafkaConsumerLag", "ObjectStoreCapacityHigh"):
        assert absent not in rules


def test_disabled_components_have_no_rules() -> None:
    off = {c: {"mode": "disabled"} for c in ("kafka", "connect", "flink", "objectStore")}
    plat = platform(**off, monitoring={"mode": "disabled"})
    rules = rules_of(plat, plat)
    assert set(rules) == {"ResourceNotReady", "HighPipelineErrorRate"}


def test_connector_on_external_connect_selects_by_connector_name() -> None:
    plat = platform(kafka=EXTERNAL["kafka"], connect=EXTERNAL["connect"])
    rules = rules_of(connector(connectorName="orders-cdc", topicPrefix="pfx"), plat)
    failed = rules["CdcConnectorFailed"]["expr"]
    assert 'kafka_connect_connector_status{connector="orders-cdc",status="failed"}' in failed
    assert 'name="pfx"' in rules["CdcConnectorLagHigh"]["expr"]
    assert "platform=" not in rules["CdcConnectorLagHigh"]["expr"]


def test_connector_without_platform_keeps_operator_rules() -> None:
    body = connector()
    rules = {
        r["alert"]: r
        for g in rule_groups(target(body, None), alerts_spec(body))  # type: ignore[arg-type]
        for r in g["rules"]
    }
    assert set(rules) == {"ResourceNotReady", "HighPipelineErrorRate", "CdcConnectorFailed"}


def test_flink_rules_follow_the_job_id() -> None:
    before = rules_of(flink_job())
    assert "StreamJobCheckpointFailures" not in before
    assert "flink_jobmanager_job_numRestarts" not in before["StreamJobRestarting"]["expr"]
    after = rules_of(flink_job(status={"jobId": "0123abcd"}))
    assert 'job_id="0123abcd"' in after["StreamJobCheckpointFailures"]["expr"]
    assert 'job_id="0123abcd"' in after["StreamJobConsumerLagHigh"]["expr"]
    assert after["StreamJobRestarting"]["expr"].startswith(
        'max(increase(flink_jobmanager_job_numRestarts{namespace="shop",platform="shop",'
        'job_id="0123abcd"}[15m])) > 2 or '
    )


def test_resources_held_on_purpose_do_not_alert_for_it() -> None:
    """Suspended jobs and paused/stopped connectors report Ready=False by design."""
    suspended = rules_of(flink_job(state="suspended"))
    assert "StreamJobNotRunning" not in suspended and "ResourceNotReady" not in suspended
    assert "ResourceNotReady" not in rules_of(platform(paused=True))
    for state in ("paused", "stopped"):
        rules = rules_of(connector(state=state))
        assert not {"ResourceNotReady", "CdcConnectorLagHigh", "CdcConnectorNoEvents"} & set(rules)
        assert "CdcConnectorFailed" in rules  # failed is failed
    assert "ResourceNotReady" in rules_of(connector(state="running"))


def test_spark_job_gets_no_flink_rules() -> None:
    spark = resource(
        "StreamJob",
        "etl",
        {
            "platformRef": {"name": "shop"},
            "engine": "spark",
            "spark": {"application": {"file": "local:///app.py"}},
        },
        {"jobId": "x"},
    )
    assert set(rules_of(spark)) == {
        "ResourceNotReady",
        "HighPipelineErrorRate",
        "StreamJobNotRunning",
    }


def test_lakezone_size_rule_is_opt_in() -> None:
    assert "LakeZoneSizeHigh" not in rules_of(zone())
    rules = rules_of(zone(alerts={"rules": {"LakeZoneSizeHigh": {"threshold": 500}}}))
    assert rules["LakeZoneSizeHigh"]["expr"].endswith("/ 1073741824 > 500")
    assert rules["LakeZoneStale"]["expr"].startswith("time() - max(headwater_lakezone_last_object")


def test_rules_of_another_kind_are_reported() -> None:
    alerts = AlertsSpec.model_validate({"rules": {"KafkaBrokerDown": {}, "CdcConnectorFailed": {}}})
    assert not_applicable("CdcConnector", alerts) == ["KafkaBrokerDown"]


def test_label_values_are_escaped() -> None:
    assert sel(a='x"y\\z') == '{a="x\\"y\\\\z"}'
    assert sel() == ""


# --- API validation of spec.alerts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"rules": {"NoSuchRule": {}}}, "unknown alert rule name"),
        ({"labels": {"team-name": "x"}}, "labels"),
        ({"labels": {"severity": "page"}}, "set by the operator"),
        ({"labels": {"team": "{{ $value }}"}}, "must not contain '{{'"),
        ({"rules": {"CdcConnectorLagHigh": {"threshold": -1}}}, "greater than or equal to 0"),
        ({"rules": {"CdcConnectorLagHigh": {"for": "soon"}}}, "pattern"),
    ],
)
def test_models_refuse_bad_alerts(alerts: dict[str, Any], message: str) -> None:
    doc = connector(alerts=alerts)
    doc["metadata"] = {"name": "x"}
    problems = validate_doc(doc)
    assert any(message in p for p in problems), problems


# --- objects ---------------------------------------------------------------------------------------


def test_prometheus_rule_object() -> None:
    body = connector()
    owner = Owner.from_body(body)
    groups = rule_groups(target(body, platform()), alerts_spec(body))  # type: ignore[arg-type]
    obj = prometheus_rule(owner, groups, {"release": "kps"})
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    meta = obj["metadata"]
    assert meta["name"] == "orders-cdcconnector-alerts" and meta["namespace"] == NS
    assert meta["ownerReferences"][0]["uid"] == "u-orders"
    assert meta["labels"]["release"] == "kps"
    assert meta["labels"]["headwater.dev/owner-kind"] == "cdcconnector"
    assert LABEL_APPLY_GROUP not in meta["labels"]  # the applier adds it
    assert obj["spec"]["groups"] == groups
    assert file_name(target(body, None)) == "cdcconnector-orders.yaml"


def test_long_names_are_shortened() -> None:
    owner = Owner("LakeZone", "z" * 250, NS, "u")
    assert len(object_name(owner)) == 253


def test_service_monitors_select_the_rendered_metrics_services() -> None:
    body = platform()
    spec = DataPlatformSpec.model_validate({})
    owner = Owner.from_body(body)
    rendered = render_platform(spec, owner, PlatformContext(new_minio_credentials=("a", "b")))
    services = [o for o in rendered if o["kind"] == "Service"]
    monitors = service_monitors(spec, owner)
    assert {m["spec"]["endpoints"][0]["relabelings"][0]["replacement"] for m in monitors} == {
        "kafka",
        "kafka-exporter",
        "kafka-connect",
        "flink-jobmanager",
        "flink-taskmanager",
        "minio",
    }
    for mon in monitors:
        want = mon["spec"]["selector"]["matchLabels"]
        hits = [s for s in services if want.items() <= s["metadata"]["labels"].items()]
        assert len(hits) == 1, (mon["metadata"]["name"], [h["metadata"]["name"] for h in hits])
        assert [p["name"] for p in hits[0]["spec"]["ports"]] == ["metrics"]
        assert hits[0]["metadata"]["name"] == mon["metadata"]["name"]
    external = DataPlatformSpec.model_validate(EXTERNAL)
    assert service_monitors(external, owner) == []


def test_scrape_configs_cover_every_managed_exporter() -> None:
    spec = DataPlatformSpec.model_validate({})
    owner = Owner("DataPlatform", "shop", NS, "u")
    rendered = render_platform(spec, owner, PlatformContext(new_minio_credentials=("a", "b")))
    service_names = {o["metadata"]["name"] for o in rendered if o["kind"] == "Service"}
    jobs = {j["job_name"]: j for j in scrape_configs(spec, owner, "30s")}
    assert set(jobs) == {
        "prometheus",
        "kafka",
        "kafka-exporter",
        "kafka-connect",
        "flink-jobmanager",
        "flink-taskmanager",
        "minio",
    }
    for job in jobs.values():
        for dns in job.get("dns_sd_configs", []):
            assert dns["names"][0].split(".")[0] in service_names
        relabels = {r["target_label"]: r["replacement"] for r in job.get("relabel_configs", [])}
        static = [c["labels"] for c in job.get("static_configs", [])]
        assert relabels == {"namespace": NS, "platform": "shop"} or static == [
            {"namespace": NS, "platform": "shop"}
        ]
    assert jobs["kafka"]["static_configs"][0]["targets"][0] == (
        "shop-kafka-0.shop-kafka-headless.shop.svc:9404"
    )


def test_jmx_agent_is_wired_into_kafka_and_connect() -> None:
    spec = DataPlatformSpec.model_validate({})
    owner = Owner("DataPlatform", "shop", NS, "u")
    rendered = render_platform(spec, owner, PlatformContext(new_minio_credentials=("a", "b")))
    for kind, name, container, config in (
        ("StatefulSet", "shop-kafka", "kafka", "shop-kafka-config"),
        ("Deployment", "shop-connect", "connect", "shop-connect-config"),
    ):
        obj = next(o for o in rendered if o["kind"] == kind and o["metadata"]["name"] == name)
        pod = obj["spec"]["template"]["spec"]
        main = next(c for c in pod["containers"] if c["name"] == container)
        shell, flag, script, dashdash, *original = main["command"]
        assert (shell, flag, dashdash) == ("/bin/bash", "-c", "--") and "args" not in main
        agent = "-javaagent:/opt/headwater/jmx/jmx_prometheus_javaagent.jar=9404:"
        assert agent in script and "/jmx-exporter.yaml" in script
        assert script.startswith("if [ -s /opt/headwater/jmx/jmx_prometheus_javaagent.jar ]")
        assert original and original[0] == "/bin/bash"  # the component's own command follows
        assert {"name": "metrics", "containerPort": 9404} in main["ports"]
        (init,) = pod["initContainers"]
        assert init["name"] == "jmx-agent" and "sha1sum -c" in init["command"][2]
        cm = next(o for o in rendered if o["metadata"]["name"] == config)
        assert "jmx-exporter.yaml" in cm["data"]


def test_jmx_wrapper_fails_open(tmp_path: Path) -> None:
    """The wrapped command runs the original one, with the agent only when the jar exists."""
    import subprocess

    spec = DataPlatformSpec.model_validate({})
    owner = Owner("DataPlatform", "shop", NS, "u")
    rendered = render_platform(spec, owner, PlatformContext(new_minio_credentials=("a", "b")))
    sts = next(
        o for o in rendered if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "shop-kafka"
    )
    command = sts["spec"]["template"]["spec"]["containers"][0]["command"]
    script = command[2].replace("/opt/headwater/jmx", str(tmp_path))
    probe = ["/bin/bash", "-c", 'echo "opts=$KAFKA_OPTS"']

    def run() -> str:
        argv = ["/bin/bash", "-c", script, "--", *probe]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    assert run().strip() == "opts="
    (tmp_path / "jmx_prometheus_javaagent.jar").write_bytes(b"jar")
    assert f"-javaagent:{tmp_path}/jmx_prometheus_javaagent.jar=9404:" in run()


# --- the service's platform rule files -------------------------------------------------------------


def _ctx(*bodies: dict[str, Any]) -> Context:
    store = Store()
    for b in bodies:
        store.put((b["kind"], b["metadata"]["namespace"], b["metadata"]["name"]), b)
    return Context(
        kube=None,  # type: ignore[arg-type]
        cache=None,  # type: ignore[arg-type]
        applier=None,  # type: ignore[arg-type]
        store=store,
        events=None,  # type: ignore[arg-type]
        settings=None,  # type: ignore[arg-type]
        executor=None,  # type: ignore[arg-type]
    )


def test_platform_file_holds_the_platform_and_its_resources() -> None:
    plat = platform()
    other = copy.deepcopy(connector("elsewhere"))
    other["spec"]["platformRef"] = {"name": "other"}
    ctx = _ctx(
        plat, connector(), flink_job(), zone(), other, zone("quiet", alerts={"enabled": False})
    )
    files = AlertsService().platform_rule_files(ctx, plat, DataPlatformSpec.model_validate({}))
    assert set(files) == {
        "dataplatform-shop.yaml",
        "cdcconnector-orders.yaml",
        "streamjob-agg.yaml",
        "lakezone-bronze.yaml",
    }
    group = files["cdcconnector-orders.yaml"]["groups"][0]
    assert group["name"] == "headwater.cdcconnector.shop.orders"


def test_platform_file_holds_the_datasources_its_connectors_read() -> None:
    """A DataSource has no platformRef: its rules go to the managed Prometheus of every
    platform with a CdcConnector capturing from it, and nowhere else."""
    plat, other = platform(), platform("other")
    spec = {
        "type": "postgres",
        "host": "db",
        "database": "shop",
        "credentialsSecretRef": {"name": "s"},
    }
    read, unread = resource("DataSource", "db", spec), resource("DataSource", "unused", spec)
    elsewhere = copy.deepcopy(read)
    elsewhere["metadata"]["namespace"] = "other-ns"
    ctx = _ctx(plat, other, connector(), read, unread)
    ctx.store.put(("DataSource", "other-ns", "db"), elsewhere)
    files = AlertsService().platform_rule_files(ctx, plat, DataPlatformSpec())
    assert set(files) == {
        "dataplatform-shop.yaml",
        "cdcconnector-orders.yaml",
        "datasource-db.yaml",
    }
    (group,) = files["datasource-db.yaml"]["groups"]
    assert group["name"] == "headwater.datasource.shop.db"
    assert {r["alert"] for r in group["rules"]} == {"ResourceNotReady", "HighPipelineErrorRate"}
    # the other platform has no connector reading it
    assert set(AlertsService().platform_rule_files(ctx, other, DataPlatformSpec())) == {
        "dataplatform-other.yaml"
    }


def test_platform_file_skips_invalid_alert_specs() -> None:
    plat = platform()
    bad = connector(alerts={"labels": {"bad-name": "x"}})
    files = AlertsService().platform_rule_files(_ctx(plat, bad), plat, DataPlatformSpec())
    assert set(files) == {"dataplatform-shop.yaml"}


def test_rules_never_contain_secret_values() -> None:
    plat = platform(objectStore=EXTERNAL["objectStore"])
    secret = {
        "kind": "Secret",
        "metadata": {"name": "s3", "namespace": NS},
        "data": {"accessKey": "aHVudGVyMg=="},
    }
    ctx = _ctx(plat, connector(), secret)
    files = AlertsService().platform_rule_files(
        ctx, plat, DataPlatformSpec.model_validate(plat["spec"])
    )
    text = repr(files)
    assert "hunter2" not in text and "aHVudGVyMg" not in text


def test_monitoring_object_labels_from_env() -> None:
    assert parse_labels("release=kps, team = data,broken") == {"release": "kps", "team": "data"}
    svc = AlertsService.from_env({"HEADWATER_MONITORING_LABELS": "release=kps"})
    assert svc.object_labels == {"release": "kps"} and svc.refresh_seconds == 60


def test_rule_file_is_stable(tmp_path: Path) -> None:
    """Same input, same output: the apply layer relies on it for 'unchanged'."""
    a = rules_of(connector())
    b = rules_of(connector())
    assert a == b


# --- metric names: rules and dashboard only use series the operator exports ----------------------

DASHBOARD = ROOT / "charts" / "headwater" / "dashboards" / "headwater-pipeline.json"


def dashboard_exprs() -> list[str]:
    import json

    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def catalogue_exprs() -> list[str]:
    bodies = [
        platform(),
        platform(**EXTERNAL),
        connector(),
        flink_job(status={"jobId": "j"}),
        zone(alerts={"rules": {"LakeZoneSizeHigh": {"threshold": 1}}}),
    ]
    return [
        r["expr"]
        for b in bodies
        for r in rules_of(b, b if b["kind"] == "DataPlatform" else None).values()
    ]


def exported_operator_metrics() -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    from headwater.metrics import Metrics

    m = Metrics()
    try:  # the LakeZone reconciler publishes the zone usage gauges
        from headwater.reconcile.lakezone import LakeMetrics

        LakeMetrics.of(m)
    except ImportError:
        pass
    names = set()
    for family in m.registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    for family in text_string_to_metric_families(m.render().decode()):
        names.add(family.name)
    return names


def test_rules_and_dashboard_use_exported_operator_metrics() -> None:
    import re

    exported = exported_operator_metrics()
    used = {
        name
        for expr in [*catalogue_exprs(), *dashboard_exprs()]
        for name in re.findall(r"\b(headwater_[a-z_]+)", expr)
    }
    assert used, "no operator metric referenced"
    base = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used}
    missing = {n for n in base if n not in exported}
    assert not missing, f"rules/dashboard query metrics the operator does not export: {missing}"


def test_dashboard_shape() -> None:
    import json

    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "headwater-pipeline"
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert variables == {"datasource", "namespace", "platform"}
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for topic in ("lag", "per second", "errors", "job running"):
        assert topic in titles, topic
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_jmx_agent_download_failure_does_not_block_the_pod(tmp_path: Path) -> None:
    """The init container exits 0 without a jar when Maven Central is unreachable."""
    import subprocess

    spec = DataPlatformSpec.model_validate({})
    owner = Owner("DataPlatform", "shop", NS, "u")
    rendered = render_platform(spec, owner, PlatformContext(new_minio_credentials=("a", "b")))
    dep = next(
        o for o in rendered if o["kind"] == "Deployment" and o["metadata"]["name"] == "shop-connect"
    )
    script = dep["spec"]["template"]["spec"]["initContainers"][0]["command"][2]
    script = script.replace("/opt/headwater/jmx", str(tmp_path))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text("#!/bin/sh\nexit 7\n")  # "could not connect"
    (bin_dir / "curl").chmod(0o755)
    proc = subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "starting without it" in proc.stdout
    assert not (tmp_path / "jmx_prometheus_javaagent.jar").exists()
    assert not (tmp_path / "agent.jar").exists()


# --- the service's monitoring API handling (fakes for the API; the e2e suite runs it for real) ---


class FakeResources:
    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.calls = 0

    async def served(self, api_version: str, kind: str) -> bool:
        self.calls += 1
        return kind in self.kinds


class FakeCache:
    def __init__(self, resources: FakeResources) -> None:
        self.resources = resources
        self.informers: set[str] = set()

    async def refresh_optional(self) -> list[str]:
        new = self.resources.kinds - self.informers
        self.informers |= new
        return sorted(new)

    def serves(self, api_version: str, kind: str) -> bool:
        return kind in self.informers


class FakeApplier:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], str]] = []
        self.fail: Exception | None = None

    async def reconcile(self, owner: Owner, objects: list[dict[str, Any]], *, group: str) -> None:
        self.calls.append((owner.name, [o["kind"] for o in objects], group))
        if self.fail is not None:
            raise self.fail


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    async def emit(self, obj: Any, event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason, message))


def _service_ctx(*bodies: dict[str, Any]) -> tuple[Context, FakeResources, FakeApplier, list[Any]]:
    import types

    ctx = _ctx(*bodies)
    resources = FakeResources()
    ctx.kube = types.SimpleNamespace(resources=resources)  # type: ignore[assignment]
    ctx.cache = FakeCache(resources)  # type: ignore[assignment]
    applier = FakeApplier()
    ctx.applier = applier  # type: ignore[assignment]
    ctx.events = FakeEvents()  # type: ignore[assignment]
    enqueued: list[Any] = []
    ctx.enqueue = enqueued.append
    return ctx, resources, applier, enqueued


def test_service_applies_only_when_the_monitoring_api_is_served() -> None:
    import asyncio

    from headwater.kube.client import ApiError

    plat, conn = platform(), connector(alerts={"rules": {"KafkaBrokerDown": {}}})
    ctx, resources, applier, enqueued = _service_ctx(plat, conn)
    service = AlertsService(refresh_seconds=3600)

    async def run() -> None:
        await service.reconcile_rules(ctx, conn)
        assert applier.calls == []  # not served: nothing applied, nothing pruned
        assert ctx.events.events == [  # type: ignore[attr-defined]
            (
                "Warning",
                "AlertRulesIgnored",
                "spec.alerts.rules: KafkaBrokerDown do(es) not exist for CdcConnector; ignored",
            )
        ]
        await service.reconcile_rules(ctx, conn)
        assert len(ctx.events.events) == 1  # type: ignore[attr-defined]  # reported once

        resources.kinds = {"PrometheusRule", "ServiceMonitor"}
        assert await service.check(ctx) is True
        await service.reconcile_rules(ctx, conn)
        await service.reconcile_rules(ctx, plat)
        assert applier.calls == [
            ("orders", ["PrometheusRule"], "alerts"),
            ("shop", ["PrometheusRule", *["ServiceMonitor"] * 6], "alerts"),
        ]
        off = connector(alerts={"enabled": False})
        await service.reconcile_rules(ctx, off)
        assert applier.calls[-1] == ("orders", [], "alerts")  # prune what was there

        # the API vanishes between two checks: the 404 triggers a re-check and a resync
        resources.kinds = set()
        applier.fail = ApiError(404, "NotFound", "404 page not found")
        service._last_check = 0.0
        await service.reconcile_rules(ctx, conn)
        assert service.served == frozenset()
        assert ("DataPlatform", NS, "shop") in enqueued and (
            "CdcConnector",
            NS,
            "orders",
        ) in enqueued
        await service.close()

    asyncio.run(run())


def test_a_datasource_gets_its_own_prometheus_rule() -> None:
    import asyncio

    spec = {
        "type": "mysql",
        "host": "db",
        "database": "shop",
        "credentialsSecretRef": {"name": "s"},
    }
    source = resource("DataSource", "db", spec)
    ctx, resources, applier, enqueued = _service_ctx(platform(), source)
    service = AlertsService(refresh_seconds=3600)

    async def run() -> None:
        resources.kinds = {"PrometheusRule", "ServiceMonitor"}
        await service.reconcile_rules(ctx, source)
        assert service.served == {"PrometheusRule", "ServiceMonitor"}
        assert applier.calls == [("db", ["PrometheusRule"], "alerts")]
        assert enqueued == []  # on no platform: nothing to re-render
        await service.close()

    asyncio.run(run())


def test_rule_changes_of_a_member_re_render_its_platform() -> None:
    import asyncio

    job = flink_job()
    ctx, _, _, enqueued = _service_ctx(platform(), job)
    service = AlertsService(refresh_seconds=3600)

    async def run() -> None:
        await service.reconcile_rules(ctx, job)
        assert enqueued == []
        submitted = flink_job(status={"jobId": "abc"})  # status only: the platform can't see it
        await service.reconcile_rules(ctx, submitted)
        assert enqueued == [("DataPlatform", NS, "shop")]
        await service.close()

    asyncio.run(run())


def test_rule_files_that_outgrow_the_configmap_are_left_out_and_reported() -> None:
    import asyncio

    from headwater.alerts.files import CONFIGMAP_BUDGET, file_size, fit

    plat = platform()
    members = [connector(f"c{i:03d}") for i in range(400)]  # ~1.4 MiB of rules
    ctx, _, _, _ = _service_ctx(plat, *members)
    service = AlertsService(refresh_seconds=3600)

    async def run() -> dict[str, Any]:
        files = service.platform_rule_files(ctx, plat, DataPlatformSpec())
        again = service.platform_rule_files(ctx, plat, DataPlatformSpec())
        assert again == files
        await asyncio.sleep(0)  # let the Event task run
        return files

    files = asyncio.run(run())
    assert "dataplatform-shop.yaml" in files  # the platform's own rules always fit
    assert 100 < len(files) < 401
    assert sum(file_size(f) + len(n) for n, f in files.items()) <= CONFIGMAP_BUDGET
    events = ctx.events.events  # type: ignore[attr-defined]
    assert len(events) == 1, "reported once, not at every reconcile"
    kind, reason, message = events[0]
    assert (kind, reason) == ("Warning", "AlertRulesTruncated")
    assert f"{401 - len(files)} rule files do not fit" in message
    kept, dropped = fit({"b.yaml": {"groups": []}, "dataplatform-x.yaml": {"groups": []}}, 40)
    assert list(kept) == ["dataplatform-x.yaml"] and dropped == ["b.yaml"]
