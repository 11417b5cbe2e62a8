"""Operator metrics: every metric is fed by the code paths that should feed it, the state
gauges follow the resources' status, and /metrics, /healthz and /readyz answer over HTTP.
The controller's post-reconcile hook is exercised with a real Controller and a fake API."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from headwater.metrics import Metrics, operator_scrape_configs, serve
from headwater.reconcile.base import Context, Controller, Outcome, Settings
from hwtest.operator import free_port


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: Metrics, metric: str, /, **labels: str) -> float | None:
    return samples(metrics).get((metric, tuple(sorted(labels.items()))))


def body(kind: str, name: str, status: dict[str, Any], spec: dict[str, Any] | None = None):
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "generation": 2},
        "spec": spec or {},
        "status": status,
    }


READY = {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}
STALE = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}


def test_observe_reconcile_counts_results_durations_and_errors() -> None:
    m = Metrics()
    m.observe_reconcile("CdcConnector", "ok", 0.02, "ns", "a")
    m.observe_reconcile("CdcConnector", "error", 0.5, "ns", "a")
    m.observe_reconcile("CdcConnector", "error", 0.5, "ns", "a")
    assert value(m, "headwater_reconcile_total", kind="CdcConnector", result="ok") == 1
    assert value(m, "headwater_reconcile_total", kind="CdcConnector", result="error") == 2
    assert value(m, "headwater_reconcile_errors_total", kind="CdcConnector") == 2
    assert (
        value(m, "headwater_resource_errors_total", kind="CdcConnector", namespace="ns", name="a")
        == 2
    )
    assert value(m, "headwater_reconcile_duration_seconds_count", kind="CdcConnector") == 3
    assert (
        value(m, "headwater_reconcile_duration_seconds_bucket", kind="CdcConnector", le="0.025")
        == 1
    )


def test_dataplane_errors_and_restarts() -> None:
    m = Metrics()
    m.dataplane_error("connect", body("CdcConnector", "a", {}))
    m.dataplane_error("s3")
    m.connector_restart("ns", "a")
    assert value(m, "headwater_dataplane_errors_total", system="connect") == 1
    assert value(m, "headwater_dataplane_errors_total", system="s3") == 1
    assert (
        value(m, "headwater_resource_errors_total", kind="CdcConnector", namespace="ns", name="a")
        == 1
    )
    assert value(m, "headwater_connector_restarts_total", namespace="ns", name="a") == 1


def test_preflight_failed_checks_gauge() -> None:
    """Set by the DataSource reconciler after each preflight (failed checks of that source);
    exported per source, kept across the scrape-time refresh (which only rebuilds the
    status-derived gauges), and gone once its labels are removed."""
    m = Metrics()
    metric = "headwater_preflight_failed_checks"
    m.preflight_failures.labels("ns", "orders-db").set(3)
    m.preflight_failures.labels("ns", "users-db").set(0)
    assert m.registry.get_sample_value(metric, {"namespace": "ns", "name": "orders-db"}) == 3
    assert value(m, metric, namespace="ns", name="orders-db") == 3  # as /metrics shows it
    assert value(m, metric, namespace="ns", name="users-db") == 0
    m.refresh([body("DataSource", "orders-db", READY)], ["DataSource"])
    assert value(m, metric, namespace="ns", name="orders-db") == 3
    m.preflight_failures.labels("ns", "orders-db").set(0)  # the source was fixed
    assert value(m, metric, namespace="ns", name="orders-db") == 0
    m.preflight_failures.remove("ns", "users-db")  # the source was deleted
    assert value(m, metric, namespace="ns", name="users-db") is None
    assert m.registry.get_sample_value(metric, {"namespace": "ns", "name": "users-db"}) is None


def test_refresh_follows_status() -> None:
    m = Metrics()
    platform = body(
        "DataPlatform",
        "p",
        {
            **READY,
            "components": [
                {"name": "kafka", "mode": "managed", "ready": True},
                {"name": "connect", "mode": "external", "ready": False},
                {"name": "spark", "mode": "disabled", "ready": True},
            ],
        },
    )
    conn = body(
        "CdcConnector",
        "c",
        {
            **STALE,
            "connectorState": "RUNNING",
            "tasks": [{"id": 0, "state": "FAILED"}, {"id": 1, "state": "RUNNING"}],
            "totalRestarts": 4,
        },
    )
    flink = body("StreamJob", "f", {"jobState": "RESTARTING", "restarts": 3}, {"engine": "flink"})
    spark = body("StreamJob", "s", {"jobState": "Scheduled"}, {"engine": "spark"})
    fresh = body("StreamJob", "new", {}, {"engine": "flink"})
    m.refresh([platform, conn, flink, spark, fresh], ["DataPlatform", "CdcConnector", "StreamJob"])

    assert value(m, "headwater_resource_ready", kind="DataPlatform", namespace="ns", name="p") == 1
    assert value(m, "headwater_resource_ready", kind="CdcConnector", namespace="ns", name="c") == 0
    assert value(m, "headwater_resources", kind="StreamJob", ready="false") == 3
    assert value(m, "headwater_resources", kind="DataPlatform", ready="true") == 1
    comp = "headwater_platform_component_ready"
    assert value(m, comp, namespace="ns", name="p", component="kafka") == 1
    assert value(m, comp, namespace="ns", name="p", component="connect") == 0
    assert value(m, comp, namespace="ns", name="p", component="spark") is None
    assert value(m, "headwater_cdc_connector_failed_units", namespace="ns", name="c") == 1
    assert value(m, "headwater_cdc_connector_restarts", namespace="ns", name="c") == 4
    running = "headwater_streamjob_running"
    assert value(m, running, namespace="ns", name="f", engine="flink") == 0
    assert value(m, running, namespace="ns", name="s", engine="spark") == 1
    assert value(m, running, namespace="ns", name="new", engine="flink") is None
    assert value(m, "headwater_streamjob_restarts", namespace="ns", name="f") == 3

    # a deleted resource disappears at the next refresh
    m.refresh([platform], ["DataPlatform", "CdcConnector", "StreamJob"])
    assert value(m, "headwater_cdc_connector_failed_units", namespace="ns", name="c") is None
    assert value(m, "headwater_resources", kind="StreamJob", ready="false") == 0


def test_operator_scrape_config_honors_labels() -> None:
    assert operator_scrape_configs({}) == []
    (job,) = operator_scrape_configs({"HEADWATER_OPERATOR_METRICS_TARGET": "op.hw.svc:8080"})
    assert job["honor_labels"] is True
    assert job["static_configs"] == [{"targets": ["op.hw.svc:8080"]}]


def test_http_endpoints() -> None:
    async def main() -> tuple[int, str, int, int]:
        m = Metrics()
        ready = {"now": False}
        refreshed: list[int] = []
        port = free_port()
        runner = await serve(
            m,
            host="127.0.0.1",
            port=port,
            ready=lambda: ready["now"],
            refresh=lambda: refreshed.append(1),
        )
        loop = asyncio.get_running_loop()

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as err:
                return err.code, ""

        try:
            m.observe_reconcile("LakeZone", "ok", 0.1)
            code, text = await loop.run_in_executor(None, get, "/metrics")
            health, _ = await loop.run_in_executor(None, get, "/healthz")
            before, _ = await loop.run_in_executor(None, get, "/readyz")
            ready["now"] = True
            after, _ = await loop.run_in_executor(None, get, "/readyz")
        finally:
            await runner.cleanup()
        assert refreshed, "gauges are refreshed before /metrics renders"
        return code, text, health, before * 1000 + after

    code, text, health, readiness = asyncio.run(main())
    assert code == 200 and 'headwater_reconcile_total{kind="LakeZone",result="ok"} 1.0' in text
    assert health == 200
    assert readiness == 503 * 1000 + 200


# --- the controller's post-reconcile hook ------------------------------------------------------


class FakeKube:
    """Just enough of the API client for Controller.process: status patches and events."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch(
        self, api_version: str, kind: str, ns: str | None, name: str, body: Any, **_: Any
    ):
        self.patches.append(body)
        # Like the API server: every write answers with a newer resourceVersion.
        rv = str(100 + len(self.patches))
        return {
            "kind": kind,
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
            **body,
        }

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj


class Rec:
    kind = "LakeZone"
    resync_seconds = 300.0

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def needs_finalizer(self, body: dict[str, Any]) -> bool:
        return False

    async def reconcile(self, body: dict[str, Any], ctx: Context) -> Outcome:
        if self.fail:
            raise RuntimeError("boom")
        return Outcome(status={}, ready=True, reason="Ready")

    async def finalize(self, body: dict[str, Any], ctx: Context) -> Outcome:
        return Outcome(status={}, ready=False, reason="Deleting", finalized=True)


class RecordingAlerts:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    async def reconcile_rules(self, ctx: Context, body: dict[str, Any]) -> None:
        self.calls.append(body)
        if self.fail:
            raise RuntimeError("alerts broke")


ZONE = {
    "kind": "LakeZone",
    "metadata": {"name": "z", "namespace": "ns", "generation": 1, "resourceVersion": "1"},
    "spec": {},
}


@pytest.mark.parametrize("alerts_fail", [False, True])
def test_hook_runs_after_each_reconcile_and_never_fails_it(alerts_fail: bool) -> None:
    async def main() -> tuple[RecordingAlerts, Metrics, FakeKube]:
        kube = FakeKube()
        alerts = RecordingAlerts(fail=alerts_fail)
        m = Metrics()
        ctl = Controller(
            kube,  # type: ignore[arg-type]
            [Rec()],
            Settings(workers=1),
            services={"alerts": alerts},
            metrics=m,
        )
        ctl.observe(dict(ZONE))
        await ctl.process(("LakeZone", "ns", "z"))
        ctl.executor.shutdown()
        return alerts, m, kube

    alerts, m, kube = asyncio.run(main())
    assert len(alerts.calls) == 1
    # the hook sees the status the controller just wrote
    assert alerts.calls[0]["status"]["observedGeneration"] == 1
    assert value(m, "headwater_reconcile_total", kind="LakeZone", result="ok") == 1
    assert kube.patches, "status was written"


def test_unexpected_errors_count_as_errors() -> None:
    async def main() -> Metrics:
        m = Metrics()
        ctl = Controller(
            FakeKube(),  # type: ignore[arg-type]
            [Rec(fail=True)],
            Settings(workers=1),
            metrics=m,
        )
        ctl.observe(dict(ZONE))
        with pytest.raises(RuntimeError):
            await ctl.process(("LakeZone", "ns", "z"))
        ctl.executor.shutdown()
        return m

    m = asyncio.run(main())
    assert value(m, "headwater_reconcile_total", kind="LakeZone", result="error") == 1
    assert (
        value(m, "headwater_resource_errors_total", kind="LakeZone", namespace="ns", name="z") == 1
    )
