"""CdcConnector reconciler: keep one Debezium connector in Kafka Connect as the CR says.

Each pass: resolve the references (DataPlatform -> Connect URL and how its workers read
Secrets; DataSource -> database; the credentials Secret -> only its existence and version),
render the connector config (render/connector.py), write it to Connect when it differs, bring
the connector to the target state, restart failed instances/tasks with back-off, and mirror
Connect's view into the status. Connect is polled every `resync_seconds`; the status is
written only when something changed.

Credentials never travel through here: the config holds config-provider references and the
Connect worker resolves them (see render/connector.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from ..api.cdcconnector import CdcConnectorSpec
from ..api.dataplatform import DataPlatformSpec
from ..api.datasource import DataSourceSpec
from ..constants import COND_CDC_READY, COND_DATAPLANE, Reason
from ..dataplane import preflight
from ..dataplane.connect import (
    ConnectClient,
    ConnectError,
    ConnectorState,
    ConnectUnavailable,
    InitialState,
)
from ..dataplane.endpoints import resolve_url
from ..kube import conditions
from ..kube.conditions import Cond, now, parse_time
from ..kube.events import scrub
from ..render import connector as render
from ..render.common import stable_hash
from ..render.platform import Names, kafka_client
from .base import Context, InvalidSpec, Key, NotReady, Obj, Outcome, Retry, secret_value
from .datasource import read_credentials, target

log = logging.getLogger("headwater.cdcconnector")

PENDING_POLL_SECONDS = 5.0  # while the connector starts or changes state
UNAVAILABLE_RETRY_SECONDS = 10.0
REJECTED_RETRY_SECONDS = 120.0
SLOT_RELEASE_SECONDS = 2.0
INITIAL_STATES: dict[str, InitialState] = {
    "running": "RUNNING",
    "paused": "PAUSED",
    "stopped": "STOPPED",
}


@dataclass(frozen=True)
class Resolved:
    """Everything one pass needs, looked up through ctx (so it is all tracked)."""

    connector: str
    source: DataSourceSpec
    source_body: Obj
    connect_url: str  # as published by the platform (what users see)
    client: ConnectClient
    facts: render.ConnectorFacts


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- resolving references -------------------------------------------------------------------


def _platform(ctx: Context, ns: str, spec: CdcConnectorSpec) -> tuple[Obj, DataPlatformSpec]:
    name = spec.platform_ref.name
    body = ctx.get("DataPlatform", ns, name)
    if body is None:
        raise NotReady(Reason.MISSING_REFERENCE, f"DataPlatform {name!r} not found")
    try:
        pspec = DataPlatformSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        raise NotReady(
            Reason.REFERENCE_NOT_READY, f"DataPlatform {name!r} has an invalid spec"
        ) from None
    if pspec.connect.mode == "disabled":
        raise NotReady(
            Reason.REFERENCE_NOT_READY,
            f"DataPlatform {name!r} runs no Kafka Connect (spec.connect.mode: disabled)",
        )
    return body, pspec


def _source(ctx: Context, ns: str, spec: CdcConnectorSpec) -> tuple[Obj, DataSourceSpec]:
    name = spec.source_ref.name
    body = ctx.get("DataSource", ns, name)
    if body is None:
        raise NotReady(Reason.MISSING_REFERENCE, f"DataSource {name!r} not found")
    try:
        sspec = DataSourceSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        raise NotReady(
            Reason.REFERENCE_NOT_READY, f"DataSource {name!r} has an invalid spec"
        ) from None
    if spec.postgres is not None and sspec.type != "postgres":
        raise InvalidSpec(
            f"postgres: settings need a postgres DataSource ({name!r} is {sspec.type})"
        )
    if spec.mysql is not None and sspec.type not in ("mysql", "mariadb"):
        raise InvalidSpec(
            f"mysql: settings need a mysql or mariadb DataSource ({name!r} is {sspec.type})"
        )
    return body, sspec


def _credentials_version(ctx: Context, ns: str, source_name: str, sspec: DataSourceSpec) -> str:
    """Version of the credentials (never their content); the Secret must hold both keys."""
    creds = read_credentials(ctx, ns, sspec)
    if isinstance(creds, str):
        raise NotReady(Reason.SECRET_NOT_FOUND, f"DataSource {source_name!r}: {creds}")
    versions = [
        (ctx.secret(ns, sspec.credentials_secret_ref.name) or {})
        .get("metadata", {})
        .get("resourceVersion", "")
    ]
    if sspec.tls.ca_secret_ref is not None:
        ca = ctx.secret(ns, sspec.tls.ca_secret_ref.name)
        versions.append((ca or {}).get("metadata", {}).get("resourceVersion", ""))
    return stable_hash(versions, length=12)


def _check_managed_copy(
    ctx: Context, ns: str, platform: str, source: str, sspec: DataSourceSpec
) -> None:
    """Managed Connect reads credentials from the platform's Secret: wait until the platform
    reconciler copied the current values there (else the worker would read stale ones)."""
    secret_name = Names(platform).connect_secrets
    copy = ctx.secret(ns, secret_name)
    origin = ctx.secret(ns, sspec.credentials_secret_ref.name)
    ref = sspec.credentials_secret_ref
    for field, key in (("username", ref.username_key), ("password", ref.password_key)):
        if secret_value(copy, render.managed_secret_key(source, field)) != secret_value(
            origin, key
        ):
            raise NotReady(
                Reason.REFERENCE_NOT_READY,
                f"waiting for DataPlatform {platform!r} to copy the credentials of DataSource "
                f"{source!r} into Secret {secret_name!r}",
                requeue_after=PENDING_POLL_SECONDS,
            )


def _client(ctx: Context, ns: str, pspec: DataPlatformSpec, url: str) -> ConnectClient:
    auth: tuple[str, str] | None = None
    verify: bool | str = True
    ext = pspec.connect.external if pspec.connect.mode == "external" else None
    if ext is not None:
        if ext.credentials_secret_ref is not None:
            ref = ext.credentials_secret_ref
            secret = ctx.secret(ns, ref.name)
            user, password = (
                secret_value(secret, ref.username_key),
                secret_value(secret, ref.password_key),
            )
            if user is None or password is None:
                raise NotReady(
                    Reason.SECRET_NOT_FOUND,
                    f"Kafka Connect credentials: Secret {ref.name!r} not found or incomplete",
                )
            auth = (user, password)
        if ext.tls.insecure_skip_verify:
            verify = False
        elif ext.tls.ca_secret_ref is not None:
            pem = secret_value(
                ctx.secret(ns, ext.tls.ca_secret_ref.name), ext.tls.ca_secret_ref.key
            )
            if pem is None:
                raise NotReady(
                    Reason.SECRET_NOT_FOUND,
                    f"Kafka Connect CA: Secret {ext.tls.ca_secret_ref.name!r} not found",
                )
            verify = preflight.ca_file(pem)
    return ConnectClient(
        resolve_url(url, ctx.settings.endpoint_overrides),
        auth=auth,
        verify=verify,
        timeout=ctx.settings.dataplane_timeout,
    )


def resolve(body: Obj, spec: CdcConnectorSpec, ctx: Context) -> Resolved:
    meta = body["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]
    platform_body, pspec = _platform(ctx, ns, spec)
    source_body, sspec = _source(ctx, ns, spec)
    version = _credentials_version(ctx, ns, spec.source_ref.name, sspec)
    endpoints = (platform_body.get("status") or {}).get("endpoints") or {}
    url = endpoints.get("connectUrl")
    if not url:
        raise NotReady(
            Reason.REFERENCE_NOT_READY,
            f"waiting for DataPlatform {spec.platform_ref.name!r} to publish its Kafka Connect URL",
        )
    if pspec.connect.mode == "managed":
        _check_managed_copy(ctx, ns, spec.platform_ref.name, spec.source_ref.name, sspec)
        refs = render.secret_refs(
            "managed",
            namespace=ns,
            datasource=spec.source_ref.name,
            credentials=sspec.credentials_secret_ref,
            ca=sspec.tls.ca_secret_ref,
        )
    else:
        ext = pspec.connect.external
        assert ext is not None
        refs = render.secret_refs(
            ext.secrets_provider,
            namespace=ns,
            datasource=spec.source_ref.name,
            credentials=sspec.credentials_secret_ref,
            ca=sspec.tls.ca_secret_ref,
            mount_path=ext.secrets_mount_path,
        )
    kafka_ext = pspec.kafka.external if pspec.kafka.mode == "external" else None
    facts = render.ConnectorFacts(
        namespace=ns,
        name=name,
        uid=meta.get("uid", ""),
        secrets=refs,
        kafka_bootstrap=endpoints.get("kafkaBootstrapServers"),
        kafka_tls=bool(kafka_ext and kafka_ext.tls.enabled),
        credentials_version=version,
        # The references resolve only in workers the operator runs (it sets their env).
        kafka_client=kafka_client(kafka_ext).properties if pspec.connect.mode == "managed" else {},
    )
    if sspec.type in render.SCHEMA_HISTORY_TYPES and not (
        facts.kafka_bootstrap or render.SCHEMA_HISTORY_BOOTSTRAP in spec.config
    ):
        raise InvalidSpec(
            f"a {sspec.type} connector keeps its schema history in Kafka, and DataPlatform "
            f"{spec.platform_ref.name!r} has no Kafka: set config "
            f"{render.SCHEMA_HISTORY_BOOTSTRAP}"
        )
    return Resolved(
        connector=render.connector_name(ns, name, spec),
        source=sspec,
        source_body=source_body,
        connect_url=url,
        client=_client(ctx, ns, pspec, url),
        facts=facts,
    )


# --- the reconciler -------------------------------------------------------------------------


@dataclass
class Restarts:
    """Automatic restart bookkeeping, carried in the status between passes."""

    in_a_row: int = 0
    total: int = 0
    last: str | None = None

    @classmethod
    def from_status(cls, status: Obj) -> Restarts:
        return cls(
            int(status.get("restarts") or 0),
            int(status.get("totalRestarts") or 0),
            status.get("lastRestartTime"),
        )

    def backoff(self, spec: CdcConnectorSpec) -> float:
        """How long the next restart waits after the last one (0 before the first)."""
        if self.in_a_row == 0:
            return 0.0
        ar = spec.auto_restart
        return float(
            min(ar.max_backoff_seconds, ar.initial_backoff_seconds * 2 ** (self.in_a_row - 1))
        )

    def due_in(self, spec: CdcConnectorSpec) -> float:
        """Seconds until the next restart may happen (0: now). The first is immediate."""
        last = parse_time(self.last)
        if self.in_a_row == 0 or last is None:
            return 0.0
        return max(0.0, self.backoff(spec) - (_utcnow() - last).total_seconds())


class CdcConnectorReconciler:
    kind = "CdcConnector"

    def __init__(self, resync_seconds: float = 30.0):
        # Connect is polled: a task that fails shows up in status within this period.
        self.resync_seconds = resync_seconds
        # Passes the restart schedule needs, one per connector (see _wake_after).
        self._wakeups: dict[Key, asyncio.TimerHandle] = {}

    def needs_finalizer(self, body: Obj) -> bool:
        """The connector (and maybe a replication slot) live outside Kubernetes, but only
        once the operator talks to Kafka Connect: `_sync` adds the finalizer first thing. A
        connector waiting for its references, or in a dry run, has nothing to clean."""
        return False

    async def reconcile(self, body: Obj, ctx: Context) -> Outcome:
        spec = CdcConnectorSpec.model_validate(body.get("spec") or {})
        old = body.get("status") or {}
        try:
            res = resolve(body, spec, ctx)
        except NotReady as err:
            return Outcome(
                status=_kept(old),
                ready=False,
                reason=err.reason,
                message=str(err),
                requeue_after=err.requeue_after,
            )
        config = render.render_connector_config(spec, res.source, res.facts)
        if self.kind in ctx.settings.dataplane_disabled:
            # Dry run: references resolved and the config rendered, nothing sent to Connect.
            return Outcome(
                status=_names(res, spec),
                ready=True,
                reason=Reason.READY,
                extra_conditions=[
                    Cond(
                        COND_DATAPLANE,
                        False,
                        Reason.DATAPLANE_DISABLED,
                        "HEADWATER_DATAPLANE_DISABLED lists CdcConnector: the connector config "
                        "is rendered and validated, not registered in Kafka Connect",
                    )
                ],
            )
        try:
            return await self._sync(body, spec, ctx, res, config)
        except ConnectUnavailable as err:
            _count_error(ctx, body)
            log.info(
                "CdcConnector %s/%s: Kafka Connect unavailable: %s",
                body["metadata"].get("namespace"),
                body["metadata"]["name"],
                err,
            )
            return Outcome(
                status={**_kept(old), **_names(res, spec)},
                ready=False,
                reason=Reason.CONNECT_UNAVAILABLE,
                message=f"Kafka Connect at {res.connect_url} is unavailable: {err}",
                requeue_after=UNAVAILABLE_RETRY_SECONDS,
            )
        except ConnectError as err:
            _count_error(ctx, body)
            return Outcome(
                status={**_kept(old), **_names(res, spec)},
                ready=False,
                reason=Reason.CONNECTOR_CONFIG_REJECTED,
                message=f"Kafka Connect refused the connector: {err}",
                requeue_after=REJECTED_RETRY_SECONDS,
            )

    async def _sync(
        self, body: Obj, spec: CdcConnectorSpec, ctx: Context, res: Resolved, config: dict[str, str]
    ) -> Outcome:
        client, name = res.client, res.connector
        body = await ctx.ensure_finalizer(body)  # before anything is made in Connect
        old = body.get("status") or {}
        restarts = Restarts.from_status(old)
        events: list[tuple[str, str, str]] = []
        await self._forget_renamed(ctx, client, old, name, events)
        current = await ctx.blocking(client.config, name)
        if current is None:
            await ctx.blocking(client.ensure_ready)  # absent, or not read yet by a starting worker
            gate = _source_gate(res)
            if gate is not None:
                return Outcome(
                    status={**_kept(old), **_names(res, spec)},
                    ready=False,
                    reason=Reason.REFERENCE_NOT_READY,
                    message=gate,
                )
            plugins = await ctx.blocking(client.plugins)
            if config["connector.class"] not in plugins:
                return Outcome(
                    status={**_kept(old), **_names(res, spec)},
                    ready=False,
                    reason=Reason.CONNECTOR_CONFIG_REJECTED,
                    message=f"Kafka Connect at {res.connect_url} has no plugin {config['connector.class']}; install Debezium's {res.source.type} connector on the workers",
                    requeue_after=REJECTED_RETRY_SECONDS,
                )
            await ctx.blocking(client.create, name, config, INITIAL_STATES[spec.state])
            events.append(
                (
                    "Normal",
                    Reason.CONNECTOR_CREATED,
                    f"created connector {name} in Kafka Connect ({spec.state})",
                )
            )
            restarts.in_a_row = 0
        elif current != config:
            changed = sorted(
                k for k in set(current) | set(config) if current.get(k) != config.get(k)
            )
            await ctx.blocking(client.put_config, name, config)
            events.append(
                (
                    "Normal",
                    Reason.CONNECTOR_UPDATED,
                    f"updated connector {name}: {', '.join(changed)[:300]}",
                )
            )
            restarts.in_a_row = 0  # a new config deserves fresh attempts

        state = await ctx.blocking(client.status, name)
        transition = await self._target_state(ctx, client, name, spec, state)
        requeue: float | None = PENDING_POLL_SECONDS if transition else None
        if state is not None and state.failed and spec.state == "running" and not transition:
            requeue = await self._auto_restart(
                ctx, body, spec, client, name, state, restarts, events
            )
        elif state is not None and state.running and restarts.in_a_row:
            last = parse_time(restarts.last)
            if (
                last is None
                or (_utcnow() - last).total_seconds() >= spec.auto_restart.reset_after_seconds
            ):
                restarts.in_a_row = 0
        topics = await ctx.blocking(client.topics, name)
        status = self._status(res, spec, config, state, restarts, topics)
        outcome = self._verdict(spec, state, status, restarts, transition, requeue, events)
        if restarts.in_a_row and not outcome.ready and outcome.requeue_after is not None:
            self._wake_after(ctx, body, outcome.requeue_after)
        _log_events(body, events)
        return outcome

    def _wake_after(self, ctx: Context, body: Obj, delay: float) -> None:
        """Look at the connector again after exactly `delay` seconds. The controller
        stretches the requeue of a resource that stays not Ready (x1.5 each pass, up to
        5 minutes): right while waiting for something, wrong for the restart schedule,
        which is the user's (`autoRestart` back-off) and would drift past
        `maxBackoffSeconds` after a few failed passes. The controller's own, later timer
        stays: whichever pass comes first reschedules it."""
        meta = body["metadata"]
        key: Key = (self.kind, meta.get("namespace", ""), meta["name"])
        self._cancel_wakeup(key)

        def wake() -> None:
            self._wakeups.pop(key, None)
            ctx.enqueue(key)

        self._wakeups[key] = asyncio.get_running_loop().call_later(delay, wake)

    def _cancel_wakeup(self, key: Key) -> None:
        handle = self._wakeups.pop(key, None)
        if handle is not None:
            handle.cancel()

    async def _forget_renamed(
        self,
        ctx: Context,
        client: ConnectClient,
        old: Obj,
        name: str,
        events: list[tuple[str, str, str]],
    ) -> None:
        """`spec.connectorName` changed: the old connector would otherwise run on, orphaned."""
        previous = old.get("connectorName")
        renamed = previous and previous != name and old.get("configHash")
        if renamed and await ctx.blocking(client.delete, previous):
            events.append(
                (
                    "Normal",
                    Reason.CONNECTOR_DELETED,
                    f"deleted connector {previous} (renamed to {name})",
                )
            )

    @staticmethod
    async def _target_state(
        ctx: Context,
        client: ConnectClient,
        name: str,
        spec: CdcConnectorSpec,
        state: ConnectorState | None,
    ) -> bool:
        """Ask Connect for the target state; True when a transition was requested."""
        if state is None:
            return True  # just created: Connect has not assigned it yet
        have = state.state
        if spec.state == "running" and have in ("PAUSED", "STOPPED"):
            await ctx.blocking(client.resume, name)
            return True
        if spec.state == "paused" and have != "PAUSED":
            await ctx.blocking(client.pause, name)
            return True
        if spec.state == "stopped" and have != "STOPPED":
            await ctx.blocking(client.stop, name)
            return True
        return False

    async def _auto_restart(
        self,
        ctx: Context,
        body: Obj,
        spec: CdcConnectorSpec,
        client: ConnectClient,
        name: str,
        state: ConnectorState,
        restarts: Restarts,
        events: list[tuple[str, str, str]],
    ) -> float | None:
        """Restart failed instances/tasks with exponential back-off; returns when to look again."""
        ar = spec.auto_restart
        if not ar.enabled or restarts.in_a_row >= ar.max_restarts:
            return None
        wait = restarts.due_in(spec)
        if wait > 0:
            return max(1.0, wait)
        await ctx.blocking(client.restart, name)
        restarts.in_a_row += 1
        restarts.total += 1
        restarts.last = now()
        failed = [str(t.id) for t in state.tasks if t.state == "FAILED"]
        what = f"tasks {', '.join(failed)}" if failed else "connector"
        trace = _first_trace(state) or "no trace"
        events.append(
            (
                "Warning",
                Reason.CONNECTOR_RESTARTED,
                f"restarted failed {what} ({restarts.in_a_row}/{ar.max_restarts}): {trace}",
            )
        )
        metrics = ctx.services.get("metrics")
        if metrics is not None:
            meta = body["metadata"]
            metrics.connector_restarts.labels(meta.get("namespace", ""), meta["name"]).inc()
        # Look whether it came up, or sooner when the next restart is due sooner.
        return min(PENDING_POLL_SECONDS, restarts.backoff(spec))

    @staticmethod
    def _status(
        res: Resolved,
        spec: CdcConnectorSpec,
        config: dict[str, str],
        state: ConnectorState | None,
        restarts: Restarts,
        active_topics: list[str],
    ) -> Obj:
        tasks = (
            []
            if state is None
            else [
                {
                    k: v
                    for k, v in {
                        "id": t.id,
                        "state": t.state,
                        "workerId": t.worker_id,
                        "trace": t.trace,
                    }.items()
                    if v is not None
                }
                for t in state.tasks
            ]
        )
        expected = [] if spec.routing is not None else render.expected_topics(res.facts.name, spec)
        topics = sorted(set(expected) | {t for t in active_topics if not t.startswith("__")})
        status: Obj = {
            **_names(res, spec),
            "connectUrl": res.connect_url,
            "connectorState": state.state if state is not None else "UNASSIGNED",
            "tasks": tasks,
            "tasksReady": f"{sum(1 for t in tasks if t['state'] == 'RUNNING')}/{len(tasks)}",
            "topics": topics,
            "restarts": restarts.in_a_row,
            "totalRestarts": restarts.total,
            "configHash": render.config_hash(config),
        }
        if state is not None and state.worker_id:
            status["workerId"] = state.worker_id
        if state is not None and state.trace:
            status["trace"] = state.trace
        if restarts.last:
            status["lastRestartTime"] = restarts.last
        return status

    @staticmethod
    def _verdict(
        spec: CdcConnectorSpec,
        state: ConnectorState | None,
        status: Obj,
        restarts: Restarts,
        transition: bool,
        requeue: float | None,
        events: list[tuple[str, str, str]],
    ) -> Outcome:
        def outcome(
            ready: bool, reason: str, message: str = "", after: float | None = requeue
        ) -> Outcome:
            return Outcome(
                status=status,
                ready=ready,
                reason=reason,
                message=message,
                requeue_after=after,
                events=events,
            )

        have = state.state if state is not None else "UNASSIGNED"
        if transition:
            return outcome(
                False,
                Reason.CONNECTOR_NOT_RUNNING,
                f"moving connector from {have} to {spec.state.upper()}",
            )
        if spec.state == "paused" and have == "PAUSED":
            return outcome(
                False, Reason.CONNECTOR_PAUSED, "paused as requested (spec.state: paused)", None
            )
        if spec.state == "stopped" and have == "STOPPED":
            return outcome(
                False, Reason.CONNECTOR_STOPPED, "stopped as requested (spec.state: stopped)", None
            )
        assert state is not None
        if state.running:
            return outcome(True, Reason.READY, after=None)
        if state.failed:
            trace = _first_trace(state) or "no trace"
            if spec.auto_restart.enabled and restarts.in_a_row >= spec.auto_restart.max_restarts:
                return outcome(
                    False,
                    Reason.RESTART_LIMIT_REACHED,
                    f"gave up after {restarts.in_a_row} restarts: {trace}",
                    None,
                )
            return outcome(False, Reason.CONNECTOR_FAILED, trace)
        tasks = ", ".join(f"{t.id}={t.state}" for t in state.tasks) or "none yet"
        return outcome(
            False,
            Reason.CONNECTOR_NOT_RUNNING,
            f"connector {have}, tasks: {tasks}",
            requeue or PENDING_POLL_SECONDS,
        )

    # --- deletion -------------------------------------------------------------------------

    async def finalize(self, body: Obj, ctx: Context) -> Outcome:
        meta = body["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        self._cancel_wakeup((self.kind, ns, name))
        old = body.get("status") or {}
        events: list[tuple[str, str, str]] = []
        try:
            spec = CdcConnectorSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            spec = None
        connector = old.get("connectorName") or (
            render.connector_name(ns, name, spec) if spec else f"{ns}.{name}"
        )
        drop = spec is not None and spec.deletion_policy.replication_slot == "Drop"
        # The finalizer is added just before the first call to Connect, so a connector may
        # exist even when the status does not say so: `configHash` is written after the
        # pass that created it, and a failed status write, a POST that timed out after
        # Connect stored the connector, or an operator killed in between leave it out.
        # So Connect is always asked, by name.
        written = bool(old.get("configHash"))
        existed = await self._delete_connector(body, spec, ctx, connector, drop, written, events)
        # The slot is made by the connector's task: with no record of a config written and
        # no connector of that name in Connect, there is no slot of this CR to look after
        # (and an unreachable database must not hold up the deletion of a connector that
        # never got past its references or preflight).
        if spec is not None and (written or existed):
            await self._cleanup_slot(body, spec, ctx, drop, events)
        _log_events(body, events)
        return Outcome(
            status={}, ready=False, reason=Reason.DELETING, finalized=True, events=events
        )

    async def _delete_connector(
        self,
        body: Obj,
        spec: CdcConnectorSpec | None,
        ctx: Context,
        connector: str,
        drop: bool,
        written: bool,
        events: list[tuple[str, str, str]],
    ) -> bool:
        """Delete the connector from Connect; True when it existed there. Waits (Retry) for
        an unavailable Connect only for a connector known to be written and whose platform
        still exists; otherwise gives up with a CleanupSkipped Event."""
        ns = body["metadata"].get("namespace", "")
        old = body.get("status") or {}
        platform_body = ctx.get("DataPlatform", ns, spec.platform_ref.name) if spec else None
        client: ConnectClient | None = None
        if platform_body is not None and spec is not None:
            try:
                _, pspec = _platform(ctx, ns, spec)
                url = ((platform_body.get("status") or {}).get("endpoints") or {}).get(
                    "connectUrl"
                ) or old.get("connectUrl")
                if url:
                    client = _client(ctx, ns, pspec, url)
            except NotReady:
                client = None
        if client is None and old.get("connectUrl"):
            client = ConnectClient(
                resolve_url(old["connectUrl"], ctx.settings.endpoint_overrides),
                timeout=ctx.settings.dataplane_timeout,
            )
        if client is None:
            # No Connect URL known: the operator never had a Connect to write to.
            return False
        try:
            existed = False
            if drop:
                # Offsets go too, or a connector of the same name would resume from a
                # position the dropped slot no longer serves. Connect resets offsets of
                # stopped connectors only.
                state = await ctx.blocking(client.status, connector)
                if state is not None and state.state != "STOPPED":
                    await ctx.blocking(client.stop, connector)
                    raise Retry(
                        f"stopping connector {connector} to reset its offsets",
                        Reason.DELETING,
                        SLOT_RELEASE_SECONDS,
                    )
                if state is not None:
                    existed = True
                    await ctx.blocking(client.delete_offsets, connector)
            if await ctx.blocking(client.delete, connector):
                existed = True
                events.append(
                    (
                        "Normal",
                        Reason.CONNECTOR_DELETED,
                        f"deleted connector {connector} from Kafka Connect",
                    )
                )
            return existed
        except ConnectUnavailable as err:
            if written and platform_body is not None:
                raise Retry(
                    f"cannot delete connector {connector}: Kafka Connect unavailable: {err}",
                    Reason.CONNECT_UNAVAILABLE,
                    UNAVAILABLE_RETRY_SECONDS,
                ) from None
            why = (
                "no connector config was ever confirmed written"
                if not written
                else "DataPlatform gone"
            )
            events.append(
                (
                    "Warning",
                    Reason.CLEANUP_SKIPPED,
                    f"Kafka Connect unreachable and {why}: not waiting; connector {connector} may remain there",
                )
            )
            return False
        except ConnectError as err:
            raise Retry(
                f"cannot delete connector {connector}: {err}",
                Reason.DELETING,
                REJECTED_RETRY_SECONDS,
            ) from None

    async def _cleanup_slot(
        self,
        body: Obj,
        spec: CdcConnectorSpec,
        ctx: Context,
        drop: bool,
        events: list[tuple[str, str, str]],
    ) -> None:
        ns, name = body["metadata"].get("namespace", ""), body["metadata"]["name"]
        source_body = ctx.get("DataSource", ns, spec.source_ref.name)
        if source_body is None:
            if drop:
                events.append(
                    (
                        "Warning",
                        Reason.CLEANUP_SKIPPED,
                        f"DataSource {spec.source_ref.name!r} is gone: replication slot (if any) not dropped",
                    )
                )
            return
        try:
            sspec = DataSourceSpec.model_validate(source_body.get("spec") or {})
        except ValidationError:
            return
        if sspec.type != "postgres":
            return
        slot = render.slot_name(ns, name, spec)
        if not drop:
            events.append(
                (
                    "Normal",
                    Reason.SLOT_RETAINED,
                    f"replication slot {slot} kept (deletionPolicy.replicationSlot: Retain); drop it with SELECT pg_drop_replication_slot('{slot}') when no longer needed",
                )
            )
            return
        creds = read_credentials(ctx, ns, sspec)
        if isinstance(creds, str):
            events.append(
                ("Warning", Reason.CLEANUP_SKIPPED, f"replication slot {slot} not dropped: {creds}")
            )
            return
        publication = (
            render.publication_name(ns, name, spec, sspec)
            if render.owns_publication(spec, sspec)
            else None
        )
        tgt = target(ctx, sspec, creds, None)
        result = await ctx.blocking(preflight.drop_postgres_slot, tgt, slot, publication)
        if result.outcome == "active":
            raise Retry(
                f"waiting for the connector to release replication slot {slot}",
                Reason.DELETING,
                SLOT_RELEASE_SECONDS,
            )
        if result.outcome == "failed":
            raise Retry(
                f"cannot drop replication slot {slot}: {result.message} (set deletionPolicy.replicationSlot: Retain to skip)",
                Reason.DELETING,
                UNAVAILABLE_RETRY_SECONDS,
            )
        events.append(
            (
                "Normal",
                Reason.SLOT_DROPPED,
                f"replication slot {slot} dropped"
                if result.outcome == "dropped"
                else f"replication slot {slot} was already gone",
            )
        )


# --- helpers --------------------------------------------------------------------------------


def _names(res: Resolved, spec: CdcConnectorSpec) -> Obj:
    out: Obj = {"connectorName": res.connector, "connectUrl": res.connect_url}
    if res.source.type == "postgres":
        out["slotName"] = render.slot_name(res.facts.namespace, res.facts.name, spec)
        out["publicationName"] = render.publication_name(
            res.facts.namespace, res.facts.name, spec, res.source
        )
    return out


def _kept(old: Obj) -> Obj:
    """What stays true when Connect can't be asked: names, counters, what was written last.
    Live state (connector/task states) is dropped instead of shown stale."""
    keep = (
        "connectorName",
        "connectUrl",
        "restarts",
        "totalRestarts",
        "lastRestartTime",
        "configHash",
        "slotName",
        "publicationName",
        "topics",
    )
    return {k: old[k] for k in keep if k in old}


def _source_gate(res: Resolved) -> str | None:
    """Don't create a connector the source's preflight already knows will fail."""
    body = res.source_body
    status = body.get("status") or {}
    cond = conditions.get(status.get("conditions"), COND_CDC_READY)
    if (
        cond is not None
        and cond.get("status") == "False"
        and status.get("observedGeneration") == body.get("metadata", {}).get("generation")
    ):
        return f"DataSource {body['metadata']['name']!r} fails its CDC preflight: {cond.get('message', '')}"
    return None


def _first_trace(state: ConnectorState) -> str | None:
    if state.trace:
        return state.trace
    return next((f"task {t.id}: {t.trace}" for t in state.tasks if t.trace), None)


def _log_events(body: Obj, events: list[tuple[str, str, str]]) -> None:
    """What the operator did in Kafka Connect, also in its log (Events expire)."""
    meta = body["metadata"]
    for _, reason, message in events:
        log.info(
            "CdcConnector %s/%s: %s: %s",
            meta.get("namespace"),
            meta["name"],
            reason,
            scrub(message),
        )


def _count_error(ctx: Context, body: Obj) -> None:
    """A failed Kafka Connect call, counted per system and for this connector's alert rule."""
    metrics = ctx.services.get("metrics")
    if metrics is not None:
        metrics.dataplane_error("connect", body)
