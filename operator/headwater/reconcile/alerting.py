"""The alerts service (`ctx.services["alerts"]`): where the generated alert rules go.

* Always: the DataPlatform reconciler asks `platform_rule_files()` for the rules of the
  platform and of every CdcConnector, StreamJob and LakeZone on it; they become the
  `<platform>-prometheus-rules` ConfigMap that the platform's managed Prometheus loads and
  hot-reloads (with monitoring mode external or disabled there is no such Prometheus, and
  no ConfigMap).
* In addition, when the cluster serves the Prometheus Operator's `monitoring.coreos.com/v1`
  API: after every reconcile of a resource the controller calls `reconcile_rules()`, which
  applies one PrometheusRule owned by that resource (and, for a DataPlatform, ServiceMonitors
  for its managed exporters), in their own apply group so the kinds' reconcilers never prune
  them. Alerts switched off -> the objects are pruned.

Both carry the same rules. They go to different Prometheus servers (the managed one has no
Alertmanager configured; the cluster's Prometheus Operator instance usually has), so route
alerts from one of them.

The monitoring API may appear or disappear at any time (a Prometheus Operator installed or
removed): a watcher checks discovery every `refresh_seconds` and re-enqueues every resource
when the answer changes; a 404 on apply marks the API gone. Nothing here ever fails a
reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from ..alerts import (
    KINDS,
    alerts_spec,
    not_applicable,
    prometheus_rule,
    rule_groups,
    service_monitors,
    target,
)
from ..alerts.facts import platform_name
from ..alerts.facts import platform_spec as parse_platform
from ..alerts.files import fit
from ..alerts.files import platform_rule_files as files_of_platform
from ..api.dataplatform import DataPlatformSpec
from ..constants import (
    APPLY_GROUP_ALERTS,
    MONITORING_API_VERSION,
    REASON_ALERT_RULES_IGNORED,
    REASON_ALERT_RULES_TRUNCATED,
)
from ..kube.client import ApiError
from ..render.common import Owner, stable_hash
from .base import Context, Key, Obj

log = logging.getLogger("headwater.alerts")

MONITORING_KINDS = ("PrometheusRule", "ServiceMonitor")
REFRESH_ENV = "HEADWATER_MONITORING_REFRESH_SECONDS"
LABELS_ENV = "HEADWATER_MONITORING_LABELS"


def parse_labels(text: str) -> dict[str, str]:
    """`release=kube-prometheus-stack,team=data` -> labels for the generated objects (so a
    Prometheus Operator's ruleSelector/serviceMonitorSelector picks them up)."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


class AlertsService:
    def __init__(
        self, *, refresh_seconds: float = 60.0, object_labels: Mapping[str, str] | None = None
    ):
        self.refresh_seconds = refresh_seconds
        self.object_labels = dict(object_labels or {})
        self.served: frozenset[str] = frozenset()
        self._checked = False
        self._last_check = 0.0
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._digests: dict[Key, str] = {}
        self._reported: dict[Key, tuple[str, ...]] = {}
        self._last_error: dict[Key, str] = {}
        self._truncated: dict[Key, tuple[str, ...]] = {}
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertsService:
        env = os.environ if env is None else env
        return cls(
            refresh_seconds=float(env.get(REFRESH_ENV, "60")),
            object_labels=parse_labels(env.get(LABELS_ENV, "")),
        )

    # --- the managed Prometheus' ConfigMap (called by the DataPlatform reconciler) -----------

    def platform_rule_files(
        self, ctx: Context, body: Obj, spec: DataPlatformSpec
    ) -> dict[str, Obj]:
        """`{file name: rule file}` of the platform and every resource on it. Reads the
        resources through ctx.find, so a change to any of them re-renders the platform."""
        ns = body["metadata"].get("namespace", "")
        members = [
            o for kind in KINDS if kind != "DataPlatform" for o in ctx.find(kind, ns, status=True)
        ]
        files, dropped = fit(files_of_platform(body, members))
        self._report_truncation(ctx, body, dropped)
        return files

    def _report_truncation(self, ctx: Context, body: Obj, dropped: list[str]) -> None:
        """Say once (log + Warning Event) which files did not fit into the ConfigMap."""
        key: Key = ("DataPlatform", body["metadata"].get("namespace", ""), body["metadata"]["name"])
        summary = tuple(dropped)
        if self._truncated.get(key, ()) == summary:
            return
        self._truncated[key] = summary
        if not dropped:
            return
        message = (
            f"{len(dropped)} rule files do not fit into the rules ConfigMap (1 MiB) and are "
            f"left out of the managed Prometheus: {', '.join(dropped[:5])}"
            + (", ..." if len(dropped) > 5 else "")
            + "; their PrometheusRules (Prometheus Operator) are complete"
        )
        log.warning("DataPlatform %s/%s: %s", key[1], key[2], message)
        task = asyncio.get_running_loop().create_task(
            ctx.events.emit(body, "Warning", REASON_ALERT_RULES_TRUNCATED, message)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- per resource, after each reconcile (called by the controller) -----------------------

    async def reconcile_rules(self, ctx: Context, body: Obj) -> None:
        """Apply the resource's PrometheusRule (+ ServiceMonitors for a platform) when the
        monitoring API is served; prune them when alerts are off."""
        if body.get("kind") not in KINDS:
            return
        self._ensure_watcher(ctx)
        key: Key = (body["kind"], body["metadata"].get("namespace", ""), body["metadata"]["name"])
        alerts = alerts_spec(body)
        platform = self._platform_of(ctx, body)
        groups = rule_groups(target(body, platform), alerts) if alerts is not None else []
        self._note_change(ctx, key, body, groups)
        if alerts is not None:
            await self._report_ignored(ctx, key, body, alerts)
        served = await self._served(ctx)
        if not served:
            return
        owner = Owner.from_body(body)
        objects: list[Obj] = []
        if groups and "PrometheusRule" in served:
            objects.append(prometheus_rule(owner, groups, self.object_labels))
        pspec = parse_platform(body) if body["kind"] == "DataPlatform" else None
        if pspec is not None and "ServiceMonitor" in served:
            objects += service_monitors(pspec, owner, self.object_labels)
        try:
            await ctx.applier.reconcile(owner, objects, group=APPLY_GROUP_ALERTS)
            self._last_error.pop(key, None)
        except ApiError as err:
            self._log_once(key, f"monitoring objects not applied: {err}")
            recent = time.monotonic() - self._last_check < 1.0  # one re-check per burst
            if err.not_found and not recent and await self.check(ctx):
                # The monitoring API went away between two discovery checks.
                self._enqueue_all(ctx)

    def _prune(self, ctx: Context) -> None:
        """Drop the bookkeeping of resources that no longer exist."""
        for table in (self._digests, self._reported, self._last_error, self._truncated):
            for key in [k for k in table if ctx.store.get(*k) is None]:
                del table[key]

    # --- helpers ----------------------------------------------------------------------------

    def _platform_of(self, ctx: Context, body: Obj) -> Obj | None:
        if body["kind"] == "DataPlatform":
            return body
        name = platform_name(body)
        return (
            ctx.get("DataPlatform", body["metadata"].get("namespace", ""), name) if name else None
        )

    def _note_change(self, ctx: Context, key: Key, body: Obj, groups: list[Obj]) -> None:
        """When a resource's rules change for a reason its platform does not see (status:
        a new Flink job id), re-render the platform's ConfigMap."""
        digest = stable_hash(groups)
        previous = self._digests.get(key)
        self._digests[key] = digest
        platform = platform_name(body)
        if previous is not None and previous != digest and key[0] != "DataPlatform" and platform:
            ctx.enqueue(("DataPlatform", key[1], platform))

    async def _report_ignored(self, ctx: Context, key: Key, body: Obj, alerts: Any) -> None:
        """A Warning Event (once per distinct set) for overrides of rules the kind lacks."""
        ignored = tuple(not_applicable(key[0], alerts))
        if self._reported.get(key, ()) == ignored:
            return
        self._reported[key] = ignored
        if ignored:
            await ctx.events.emit(
                body,
                "Warning",
                REASON_ALERT_RULES_IGNORED,
                f"spec.alerts.rules: {', '.join(ignored)} do(es) not exist for {key[0]}; ignored",
            )

    async def _served(self, ctx: Context) -> frozenset[str]:
        if not self._checked:
            await self.check(ctx)
        return self.served

    async def check(self, ctx: Context) -> bool:
        """Ask discovery which monitoring kinds are served now; start their informers.
        Returns True when the answer changed."""
        async with self._lock:
            self._last_check = time.monotonic()
            found: set[str] = set()
            for kind in MONITORING_KINDS:
                try:
                    if await ctx.kube.resources.served(MONITORING_API_VERSION, kind):
                        found.add(kind)
                except ApiError as err:
                    log.debug("discovery of %s failed: %s", kind, err)
            if found:
                await ctx.cache.refresh_optional()
                found = {k for k in found if ctx.cache.serves(MONITORING_API_VERSION, k)}
            changed = self._checked and frozenset(found) != self.served
            if frozenset(found) != self.served:
                log.info(
                    "monitoring.coreos.com: %s",
                    f"serving {', '.join(sorted(found))}" if found else "not served",
                )
            self.served = frozenset(found)
            self._checked = True
            return changed

    def _ensure_watcher(self, ctx: Context) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(ctx), name="alerts-monitoring-watch"
            )

    async def _watch(self, ctx: Context) -> None:
        """Re-check discovery periodically; when the monitoring API appears or goes, every
        resource is reconciled again (its rules move to or from PrometheusRules)."""
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                self._prune(ctx)
                if await self.check(ctx):
                    self._enqueue_all(ctx)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitoring API check failed")

    @staticmethod
    def _enqueue_all(ctx: Context) -> None:
        """Reconcile every resource again: its rules move to or from PrometheusRules."""
        for kind in KINDS:
            for obj in ctx.store.items(kind):
                meta = obj["metadata"]
                ctx.enqueue((kind, meta.get("namespace", ""), meta["name"]))

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
            self._watcher = None

    def _log_once(self, key: Key, message: str) -> None:
        """Log a failure once per resource until it changes (no log storm at resync)."""
        if self._last_error.get(key) != message:
            self._last_error[key] = message
            log.warning("%s %s/%s: %s", *key, message)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"AlertsService(served={sorted(self.served)}, refresh={self.refresh_seconds}s)"
