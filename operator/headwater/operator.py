"""Kopf wiring: settings, start/stop of the controller, and one event handler per kind.

Kopf watches the Headwater CRs (with reconnects, peering for several replicas, logging) and
hands every event to the controller, which does the level-based work. Only `on.event`
handlers are registered, so Kopf never writes its own annotations, status fields or
finalizers to our objects: GitOps tools see no churn.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import random
import time
from typing import Any

import kopf

from .api import KINDS
from .constants import FINALIZER, GROUP, VERSION
from .dataplane import endpoints
from .kube.cache import is_glob
from .kube.client import Credentials, Kube
from .metrics import Metrics, operator_scrape_configs, serve
from .reconcile.base import Controller, Settings
from .reconcile.registry import build_reconcilers, build_services

log = logging.getLogger("headwater")

_state: dict[str, Any] = {}


def controller() -> Controller | None:
    return _state.get("controller")


def settings_from_env() -> Settings:
    namespaces = tuple(n for n in os.environ.get("HEADWATER_NAMESPACES", "").split(",") if n)
    return Settings(
        workers=int(os.environ.get("HEADWATER_WORKERS", "16")),
        threads=int(os.environ.get("HEADWATER_THREADS", "8")),
        api_concurrency=int(os.environ.get("HEADWATER_API_CONCURRENCY", "0")),
        namespaces=namespaces,
        operator_namespace=os.environ.get("HEADWATER_OPERATOR_NAMESPACE", "headwater-system"),
        endpoint_overrides=endpoints.from_env(),
        dataplane_disabled=frozenset(
            k.strip()
            for k in os.environ.get("HEADWATER_DATAPLANE_DISABLED", "").split(",")
            if k.strip()
        ),
        extra={"scrape_configs": operator_scrape_configs(os.environ)},
    )


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own Events are posted on condition transitions; Kopf would also post log lines.
    settings.posting.enabled = False
    # Kopf removes *its* finalizer from objects none of its handlers need it on (we only
    # register on.event handlers): it must never be the controller's cleanup finalizer.
    settings.persistence.finalizer = f"{FINALIZER}-kopf"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.networking.request_timeout = 30
    settings.queueing.idle_timeout = 30  # keep per-object workers around between bursts
    if os.environ.get("HEADWATER_PEERING"):
        settings.peering.name = os.environ["HEADWATER_PEERING"]
        settings.peering.mandatory = True
        # Kopf pauses *every* peer when two share a priority. The oldest replica gets the
        # highest one (it keeps leading; a new pod waits as standby) and the random tail
        # breaks ties between pods started in the same second.
        settings.peering.priority = (10**10 - int(time.time())) * 1000 + random.randrange(1000)
    else:
        settings.peering.standalone = True

    hw = settings_from_env()
    metrics = Metrics()
    kube = Kube(Credentials.load(), max_connections=max(8, hw.workers * 2, hw.api_concurrency))
    ctl = Controller(
        kube, build_reconcilers(), hw, services=build_services(hw, metrics), metrics=metrics
    )
    _state.update(controller=ctl, kube=kube, metrics=metrics)
    port = int(os.environ.get("HEADWATER_METRICS_PORT", "8080"))
    if port:
        _state["http"] = await serve(
            metrics,
            port=port,
            ready=ctl.started.is_set,
            refresh=lambda: _refresh_gauges(ctl, metrics),
        )
    await ctl.start()


def _refresh_gauges(ctl: Controller, metrics: Metrics) -> None:
    metrics.queue_depth.set(len(ctl.queue))
    metrics.events_dropped.set(ctl.ctx.events.dropped)
    metrics.refresh(ctl.store.items(), [info.kind for info in KINDS])
    for verb, n in ctl.kube.counter.by_verb.items():
        metrics.api_requests.labels(verb).set(n)


@kopf.on.cleanup()
async def _cleanup(**_: Any) -> None:
    ctl = _state.pop("controller", None)
    if ctl is not None:
        await ctl.stop()
    http = _state.pop("http", None)
    if http is not None:
        await http.cleanup()
    kube = _state.pop("kube", None)
    if kube is not None:
        await kube.close()


def _register() -> None:
    for info in KINDS:

        @kopf.on.event(GROUP, VERSION, info.plural, id=f"observe-{info.plural}")
        async def _observe(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
            ctl = controller()
            if ctl is None:
                return
            await ctl.started.wait()
            if not ctl.cache.watches(body.get("metadata", {}).get("namespace", "")):
                return  # cluster-wide watch for namespace globs (see run())
            ctl.observe(copy.deepcopy(dict(body)), str(event.get("type") or ""))


_register()


def run(
    *, namespaces: list[str] | None = None, liveness: str | None = None, verbose: bool = False
) -> None:
    """Run the operator until interrupted (what `headwater run` does)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Kopf logs every event handler call ("Handler 'observe-...' succeeded") at INFO; our
    # handlers only enqueue, so those lines say nothing. Kopf's warnings and errors stay.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if namespaces:
        os.environ["HEADWATER_NAMESPACES"] = ",".join(namespaces)
    # With a glob Kopf would watch Namespaces and stop watching one as soon as its deletion
    # starts (kopf._core.reactor.observation.is_deleted) -- before the namespace controller
    # deletes our CRs, so their finalizers would never run and the namespace would hang in
    # Terminating. Watch cluster-wide instead and filter in the handler (the chart grants a
    # ClusterRole for globs anyway); exact names keep their per-namespace watches.
    globs = any(is_glob(n) for n in namespaces or [])
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces or globs,
            namespaces=[] if globs else namespaces or [],
            liveness_endpoint=liveness,
        )
    )
