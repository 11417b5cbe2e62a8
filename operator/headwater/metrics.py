"""Operator metrics (prometheus-client) and the HTTP endpoints /metrics, /healthz, /readyz."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
        self.queue_depth = Gauge(
            "headwater_workqueue_depth", "Keys waiting to be reconciled.", registry=r
        )
        self.api_requests = Gauge(
            "headwater_kube_api_requests",
            "Kubernetes API requests sent, by verb.",
            ["verb"],
            registry=r,
        )

    def observe_reconcile(self, kind: str, result: str, seconds: float) -> None:
        self.reconciles.labels(kind, result).inc()
        self.duration.labels(kind).observe(seconds)
        if result == "error":
            self.reconcile_errors.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
