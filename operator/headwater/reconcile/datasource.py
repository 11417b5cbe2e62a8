"""DataSource reconciler: log in to the database and report its CDC prerequisites.

Nothing is created anywhere; the reconcile is a probe. It runs on every change of the
DataSource or its Secrets and again every `spec.preflight.intervalSeconds` (failing sources
sooner, with growing back-off). The status is rewritten only when the result changed, so a
healthy source costs no API writes between changes.
"""

from __future__ import annotations

import logging
from typing import Any

from ..api.datasource import PREFLIGHT_TYPES, DataSourceSpec
from ..constants import COND_CDC_READY, COND_REACHABLE, Reason
from ..dataplane import preflight
from ..dataplane.endpoints import resolve_hostport
from ..kube.conditions import Cond, now
from .base import Context, Obj, Outcome, secret_value

log = logging.getLogger("headwater.datasource")

# A failing source is probed again after this long (growing by the controller's back-off).
FAILURE_RETRY_SECONDS = 30.0


class Credentials:
    """User and password read from the DataSource's Secret; repr never shows the password."""

    def __init__(self, user: str, password: str):
        self.user = user
        self.password = password

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r})"


def read_credentials(ctx: Context, namespace: str, spec: DataSourceSpec) -> Credentials | str:
    """The credentials, or why they can't be read (a message for the status)."""
    ref = spec.credentials_secret_ref
    secret = ctx.secret(namespace, ref.name)
    if secret is None:
        return f"Secret {ref.name!r} not found"
    user = secret_value(secret, ref.username_key)
    password = secret_value(secret, ref.password_key)
    missing = [k for k, v in ((ref.username_key, user), (ref.password_key, password)) if v is None]
    if missing:
        return f"Secret {ref.name!r} has no key {missing[0]!r}"
    assert user is not None and password is not None
    return Credentials(user, password)


def read_ca(ctx: Context, namespace: str, spec: DataSourceSpec) -> str | None:
    ref = spec.tls.ca_secret_ref
    if ref is None:
        return None
    return secret_value(ctx.secret(namespace, ref.name), ref.key)


def target(
    ctx: Context, spec: DataSourceSpec, creds: Credentials, ca_pem: str | None
) -> preflight.Target:
    """Where the operator itself connects (endpoint overrides applied)."""
    hostport = resolve_hostport(
        f"{spec.host}:{spec.effective_port}", ctx.settings.endpoint_overrides
    )
    host, _, port = hostport.rpartition(":")
    pg = spec.postgres_settings
    return preflight.Target(
        type=spec.type,
        host=host,
        port=int(port),
        database=spec.database,
        user=creds.user,
        password=creds.password,
        tls_mode=spec.tls.mode,
        ca_pem=ca_pem,
        tables=tuple(spec.tables),
        publication=pg.publication_name if spec.type == "postgres" else None,
        publication_autocreate=pg.publication_autocreate_mode,
        require_gtid=bool(spec.mysql and spec.mysql.require_gtid),
        timeout=ctx.settings.dataplane_timeout,
    )


class DataSourceReconciler:
    kind = "DataSource"

    def __init__(self, resync_seconds: float = 300.0):
        # Only a fallback: every outcome carries its own interval (spec.preflight).
        self.resync_seconds = resync_seconds

    def needs_finalizer(self, body: Obj) -> bool:
        return False  # nothing outside Kubernetes belongs to a DataSource

    async def finalize(self, body: Obj, ctx: Context) -> Outcome:
        return Outcome(status={}, ready=False, reason=Reason.DELETING, finalized=True)

    async def reconcile(self, body: Obj, ctx: Context) -> Outcome:
        spec = DataSourceSpec.model_validate(body.get("spec") or {})
        meta = body["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        interval = float(spec.preflight.interval_seconds)
        status: dict[str, Any] = {"endpoint": f"{spec.host}:{spec.effective_port}/{spec.database}"}

        creds = read_credentials(ctx, ns, spec)
        if isinstance(creds, str):
            return self._not_probed(status, Reason.SECRET_NOT_FOUND, creds)
        if not spec.preflight.enabled:
            msg = "preflight disabled (spec.preflight.enabled: false)"
            return Outcome(
                status=status,
                ready=True,
                reason=Reason.READY,
                extra_conditions=[
                    Cond(COND_REACHABLE, None, Reason.PREFLIGHT_DISABLED, msg),
                    Cond(COND_CDC_READY, None, Reason.PREFLIGHT_DISABLED, msg),
                ],
                requeue_after=interval,
            )

        result = await ctx.blocking(preflight.run, target(ctx, spec, creds, read_ca(ctx, ns, spec)))
        self._record_metrics(ctx, body, spec, result)
        if result.server_version:
            status["serverVersion"] = result.server_version[:256]
        if not result.reachable:
            log.info("DataSource %s/%s: %s: %s", ns, name, result.reason, result.message)
            outcome = self._not_probed(status, result.reason, result.message)
            outcome.requeue_after = min(interval, FAILURE_RETRY_SECONDS)
            return outcome
        return self._probed(body, spec, status, result, interval)

    @staticmethod
    def _not_probed(status: dict[str, Any], reason: str, message: str) -> Outcome:
        """Could not log in: Reachable=False and nothing known about CDC."""
        return Outcome(
            status=status,
            ready=False,
            reason=reason,
            message=message,
            extra_conditions=[
                Cond(COND_REACHABLE, False, reason, message),
                Cond(COND_CDC_READY, None, reason, "not probed: cannot log in"),
            ],
        )

    def _probed(
        self,
        body: Obj,
        spec: DataSourceSpec,
        status: dict[str, Any],
        result: preflight.Result,
        interval: float,
    ) -> Outcome:
        reachable = Cond(COND_REACHABLE, True, Reason.CONNECTED, result.message)
        if spec.type not in PREFLIGHT_TYPES:
            msg = f"no CDC preflight for {spec.type} yet; the connector's own status is the check"
            return Outcome(
                status=status,
                ready=True,
                reason=Reason.READY,
                extra_conditions=[
                    reachable,
                    Cond(COND_CDC_READY, None, Reason.PREFLIGHT_NOT_SUPPORTED, msg),
                ],
                requeue_after=interval,
            )
        checks = [c.wire() for c in result.checks]
        old = body.get("status") or {}
        status["checks"] = checks
        status["failedChecks"] = len(result.failed)
        # Keep the timestamp while the result stays the same: no write at steady state.
        status["checksChangedTime"] = (
            old.get("checksChangedTime") if old.get("checks") == checks else None
        ) or now()
        if result.failed:
            message = "; ".join(
                f"{c.name}: {c.observed or 'failed'} (expected {c.expected})" for c in result.failed
            )
            return Outcome(
                status=status,
                ready=False,
                reason=Reason.PREFLIGHT_FAILED,
                message=message,
                extra_conditions=[
                    reachable,
                    Cond(COND_CDC_READY, False, Reason.PREFLIGHT_FAILED, message),
                ],
                requeue_after=min(interval, FAILURE_RETRY_SECONDS * 2),
            )
        warnings = [c for c in result.checks if c.status == preflight.WARN]
        note = "; ".join(f"warning: {c.name}: {c.observed}" for c in warnings)
        return Outcome(
            status=status,
            ready=True,
            reason=Reason.READY,
            extra_conditions=[
                reachable,
                Cond(COND_CDC_READY, True, Reason.PREFLIGHT_PASSED, note or "all checks passed"),
            ],
            requeue_after=interval,
        )

    @staticmethod
    def _record_metrics(
        ctx: Context, body: Obj, spec: DataSourceSpec, result: preflight.Result
    ) -> None:
        metrics = ctx.services.get("metrics")
        if metrics is None:
            return
        meta = body["metadata"]
        metrics.preflight_failures.labels(meta.get("namespace", ""), meta["name"]).set(
            len(result.failed)
        )
        forget_deleted(ctx, metrics.preflight_failures)
        if not result.reachable:
            metrics.dataplane_error("postgres" if spec.type == "postgres" else "mysql", body)


def forget_deleted(ctx: Context, gauge: Any) -> None:
    """Drop the gauge's series of DataSources that no longer exist. A DataSource has no
    finalizer (nothing outside Kubernetes to clean), so no pass runs when one is deleted:
    the next pass of any DataSource removes what the deleted ones left behind, instead of
    a stale count of failed checks being scraped (and alerted on) forever. Reads the store
    directly: this is no dependency on the other DataSources."""
    present = {
        (s.labels["namespace"], s.labels["name"]) for m in gauge.collect() for s in m.samples
    }
    for ns, name in present:
        if ctx.store.get("DataSource", ns, name) is None:
            gauge.remove(ns, name)
