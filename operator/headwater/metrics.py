"""Operator metrics (prometheus-client) and the HTTP endpoints /metrics, /healthz, /readyz.

Two sorts of series:
  * events the operator counts as they happen (reconciles, their duration, errors, data-plane
    call failures, connector restarts);
  * the state of every Headwater resource, read from its status at scrape time (`refresh`):
    Ready, platform components, connector failures, job state, lake zone usage. The generated
    alert rules (operator/headwater/alerts) are written against these, so they work with any
    Prometheus that scrapes the operator, whatever else it scrapes.
Every per-resource series carries `namespace` and `name` (and `kind` where several kinds share
a metric). Scrape the operator with `honor_labels: true` so a target label `namespace` does
not rename them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)


class Metrics:
    """All operator metrics, in their own registry (tests create several operators)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "headwater_reconcile_total",
            "Reconciles by kind and result.",
            ["kind", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "headwater_reconcile_errors_total",
            "Reconciles that ended in an error (API or data plane), by kind.",
            ["kind"],
            registry=r,
        )
        self.duration = Histogram(
            "headwater_reconcile_duration_seconds",
            "Reconcile duration by kind.",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.dataplane_errors = Counter(
            "headwater_dataplane_errors_total",
            "Failed calls to data-plane systems, by system (connect, s3, flink, postgres, mysql).",
            ["system"],
            registry=r,
        )
        self.resources = Gauge(
            "headwater_resources",
            "Headwater resources by kind and Ready condition status.",
            ["kind", "ready"],
            registry=r,
        )
        self.resource_ready = Gauge(
            "headwater_resource_ready",
            "1 when the resource's Ready condition is True for its current generation, else 0.",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.connector_restarts = Counter(
            "headwater_connector_restarts_total",
            "Automatic restarts of connectors and tasks.",
            ["namespace", "name"],
            registry=r,
        )
        self.preflight_failures = Gauge(
            "headwater_preflight_failed_checks",
            "Failed CDC preflight checks per DataSource.",
            ["namespace", "name"],
            registry=r,
        )
        self.resource_errors = Counter(
            "headwater_resource_errors_total",
            "Reconcile errors and failed data-plane calls, per resource (HighPipelineErrorRate).",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.component_ready = Gauge(
            "headwater_platform_component_ready",
            "1 when a DataPlatform component is ready (managed: its pods; external: reachable).",
            ["namespace", "name", "component"],
            registry=r,
        )
        self.connector_failed_units = Gauge(
            "headwater_cdc_connector_failed_units",
            "FAILED units of a CdcConnector in Kafka Connect (connector instance + tasks).",
            ["namespace", "name"],
            registry=r,
        )
        self.connector_total_restarts = Gauge(
            "headwater_cdc_connector_restarts",
            "Automatic restarts of a CdcConnector over its life (status.totalRestarts).",
            ["namespace", "name"],
            registry=r,
        )
        self.job_running = Gauge(
            "headwater_streamjob_running",
            "1 when a StreamJob's job is in a healthy state (Flink RUNNING; Spark running, "
            "scheduled or succeeded), 0 otherwise; absent before the first submission.",
            ["namespace", "name", "engine"],
            registry=r,
        )
        self.job_restarts = Gauge(
            "headwater_streamjob_restarts",
            "Restarts of a StreamJob's Flink job (status.restarts, Flink numRestarts).",
            ["namespace", "name"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "headwater_workqueue_depth", "Keys waiting to be reconciled.", registry=r
        )
        self.events_dropped = Gauge(
            "headwater_events_dropped",
            "Kubernetes Events not posted because the backlog was full (API server too slow).",
            registry=r,
        )
        self.api_requests = Gauge(
            "headwater_kube_api_requests",
            "Kubernetes API requests sent, by verb.",
            ["verb"],
            registry=r,
        )

    def observe_reconcile(
        self, kind: str, result: str, seconds: float, namespace: str = "", name: str = ""
    ) -> None:
        """One finished reconcile (called by the controller for every kind)."""
        self.reconciles.labels(kind, result).inc()
        self.duration.labels(kind).observe(seconds)
        if result == "error":
            self.reconcile_errors.labels(kind).inc()
            if name:
                self.resource_errors.labels(kind, namespace, name).inc()

    def dataplane_error(self, system: str, body: Mapping[str, Any] | None = None) -> None:
        """A failed call to a data-plane system; with `body`, counted for that resource too
        (what the HighPipelineErrorRate rule of the resource watches)."""
        self.dataplane_errors.labels(system).inc()
        if body is not None:
            meta = body.get("metadata") or {}
            self.resource_errors.labels(
                str(body.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name"))
            ).inc()

    def connector_restart(self, namespace: str, name: str) -> None:
        """The operator restarted a failed connector or task."""
        self.connector_restarts.labels(namespace, name).inc()

    def refresh(self, bodies: Iterable[Mapping[str, Any]], kinds: Iterable[str] = ()) -> None:
        """Set the per-resource state gauges from the resources' status (called at scrape)."""
        per_resource = (
            self.resource_ready,
            self.component_ready,
            self.connector_failed_units,
            self.connector_total_restarts,
            self.job_running,
            self.job_restarts,
        )
        for gauge in per_resource:
            gauge.clear()
        counts: dict[tuple[str, str], int] = {}
        for body in bodies:
            ready = _ready(body)
            kind = str(body.get("kind"))
            key = (kind, str(ready).lower())
            counts[key] = counts.get(key, 0) + 1
            meta = body["metadata"]
            self.resource_ready.labels(kind, meta.get("namespace", ""), meta["name"]).set(
                int(ready)
            )
            self._status_gauges(body)
        self.resources.clear()
        for kind in kinds:
            for ready_s in ("true", "false"):
                self.resources.labels(kind, ready_s).set(counts.get((kind, ready_s), 0))

    def _status_gauges(self, body: Mapping[str, Any]) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        spec = body.get("spec") or {}
        ns, name = str(meta.get("namespace", "")), str(meta["name"])
        kind = body.get("kind")
        if kind == "DataPlatform":
            for comp in status.get("components") or []:
                if comp.get("mode") != "disabled":
                    self.component_ready.labels(ns, name, comp.get("name", "")).set(
                        int(bool(comp.get("ready")))
                    )
        elif kind == "CdcConnector":
            self._connector(ns, name, status)
        elif kind == "StreamJob":
            self._job(ns, name, spec, status)

    def _connector(self, ns: str, name: str, status: Mapping[str, Any]) -> None:
        if status.get("connectorState") is None and not status.get("tasks"):
            return
        failed = int(str(status.get("connectorState", "")).upper() == "FAILED")
        failed += sum(
            1 for t in status.get("tasks") or [] if str(t.get("state", "")).upper() == "FAILED"
        )
        self.connector_failed_units.labels(ns, name).set(failed)
        self.connector_total_restarts.labels(ns, name).set(int(status.get("totalRestarts") or 0))

    def _job(self, ns: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        state = status.get("jobState")
        engine = str(spec.get("engine", ""))
        if state:
            healthy = HEALTHY_JOB_STATES.get(engine, HEALTHY_JOB_STATES["flink"])
            self.job_running.labels(ns, name, engine).set(int(str(state).upper() in healthy))
        if status.get("restarts") is not None:
            self.job_restarts.labels(ns, name).set(int(status["restarts"]))

    def render(self) -> bytes:
        return generate_latest(self.registry)


# Job states that count as "running" for the StreamJobNotRunning rule, per engine. A batch
# Spark application between runs is healthy; a failed run is not.
HEALTHY_JOB_STATES: dict[str, frozenset[str]] = {
    "flink": frozenset({"RUNNING"}),
    "spark": frozenset({"RUNNING", "SCHEDULED", "SUCCEEDED", "SUBMITTED", "PENDING"}),
}


def _ready(body: Mapping[str, Any]) -> bool:
    """Ready=True for the current generation (kept local: metrics must not import kube/)."""
    status = body.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(
                cond.get("status") == "True"
                and status.get("observedGeneration") == body["metadata"].get("generation")
            )
    return False


def operator_scrape_configs(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Scrape job for the operator itself, added to every managed Prometheus so the rules on
    `headwater_*` series work there. `HEADWATER_OPERATOR_METRICS_TARGET` (host:port of the
    operator's metrics Service, as Prometheus pods reach it) enables it."""
    target = env.get("HEADWATER_OPERATOR_METRICS_TARGET", "").strip()
    if not target:
        return []
    return [
        {
            "job_name": "headwater-operator",
            "honor_labels": True,  # keep the resources' own namespace/name labels
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [target]}],
        }
    ]


async def serve(
    metrics: Metrics,
    *,
    host: str = "0.0.0.0",
    port: int = 8080,
    ready: Callable[[], bool] = lambda: True,
    refresh: Callable[[], Any] = lambda: None,
) -> web.AppRunner:
    """Start the HTTP endpoints; returns the runner (call `cleanup()` to stop)."""

    async def handle_metrics(_: web.Request) -> web.Response:
        refresh()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def handle_ready(_: web.Request) -> web.Response:
        return web.Response(text="ok") if ready() else web.Response(status=503, text="starting")

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/readyz", handle_ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("serving /metrics, /healthz, /readyz on %s:%d", host, port)
    return runner
