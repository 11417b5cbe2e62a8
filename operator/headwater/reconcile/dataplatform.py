"""DataPlatform reconciler: render the stack, apply it, report readiness and endpoints."""

from __future__ import annotations

import secrets
from typing import Any

from ..api.dataplatform import DataPlatformSpec
from ..constants import Reason
from ..dataplane import probe
from ..dataplane.endpoints import resolve_hostport, resolve_url
from ..kube.apply import workload_ready
from ..render.common import Owner
from ..render.connector import managed_secret_key
from ..render.platform import (
    Names,
    PlatformContext,
    endpoints,
    minio_root_fingerprint,
    render_platform,
    uses_legacy_connect_topics,
)
from .base import Context, InvalidSpec, Obj, Outcome, secret_value

COMPONENT_ORDER = ("kafka", "connect", "flink", "spark", "objectStore", "monitoring")


def gather_connect_secrets(ctx: Context, owner: Owner) -> dict[str, str]:
    """Credentials of every DataSource a CdcConnector on this platform captures."""
    out: dict[str, str] = {}
    for conn in ctx.find("CdcConnector", owner.namespace):
        spec = conn.get("spec") or {}
        if (spec.get("platformRef") or {}).get("name") != owner.name:
            continue
        source_name = str((spec.get("sourceRef") or {}).get("name") or "")
        source = ctx.get("DataSource", owner.namespace, source_name) if source_name else None
        if source is None:
            continue
        ref = (source.get("spec") or {}).get("credentialsSecretRef") or {}
        secret = ctx.secret(owner.namespace, ref.get("name", ""))
        user = secret_value(secret, ref.get("usernameKey", "username"))
        password = secret_value(secret, ref.get("passwordKey", "password"))
        if user is not None and password is not None:
            out[managed_secret_key(source_name, "username")] = user
            out[managed_secret_key(source_name, "password")] = password
        ca_ref = ((source.get("spec") or {}).get("tls") or {}).get("caSecretRef")
        if ca_ref:
            ca = secret_value(
                ctx.secret(owner.namespace, ca_ref.get("name", "")), ca_ref.get("key", "")
            )
            if ca is not None:
                out[managed_secret_key(source_name, "ca.crt")] = ca
    return out


class DataPlatformReconciler:
    kind = "DataPlatform"

    def __init__(
        self,
        resync_seconds: float = 300.0,
        probe_external: bool = True,
        probes: probe.ProbeCache | None = None,
    ):
        self.resync_seconds = resync_seconds
        self.probe_external = probe_external
        self.probes = probes or probe.ProbeCache()

    def needs_finalizer(self, body: Obj) -> bool:
        return False  # children are garbage-collected through owner references

    async def finalize(self, body: Obj, ctx: Context) -> Outcome:
        return Outcome(status={}, ready=False, reason=Reason.DELETING, finalized=True)

    def _secret_refs(self, spec: DataPlatformSpec) -> list[tuple[str, str]]:
        """(component, Secret name) of every credentials or CA Secret the spec references."""
        refs: list[tuple[str, str]] = []
        kafka = spec.kafka.external if spec.kafka.mode == "external" else None
        if kafka and kafka.credentials_secret_ref:
            refs.append(("kafka", kafka.credentials_secret_ref.name))
        if kafka and kafka.tls.enabled and kafka.tls.ca_secret_ref:
            # Mounted into managed Connect workers, which read it once at start.
            refs.append(("kafka", kafka.tls.ca_secret_ref.name))
        if (
            spec.connect.mode == "external"
            and spec.connect.external
            and spec.connect.external.credentials_secret_ref
        ):
            refs.append(("connect", spec.connect.external.credentials_secret_ref.name))
        if spec.object_store.mode == "external" and spec.object_store.external:
            refs.append(("objectStore", spec.object_store.external.credentials_secret_ref.name))
        return refs

    async def reconcile(self, body: Obj, ctx: Context) -> Outcome:
        spec = DataPlatformSpec.model_validate(body.get("spec") or {})
        owner = Owner.from_body(body)
        names = Names(owner.name)
        if len(owner.name) > 40:
            raise InvalidSpec("metadata.name: a DataPlatform name must be at most 40 characters")

        versions: dict[str, str] = {}
        missing: dict[str, str] = {}
        for component, name in self._secret_refs(spec):
            secret = ctx.secret(owner.namespace, name)
            if secret is None:
                missing[component] = name
            else:
                versions[name] = secret["metadata"].get("resourceVersion", "")
        new_minio = None
        minio_root = None
        if spec.object_store.mode == "managed":
            root = ctx.secret(owner.namespace, names.minio_root)
            if root is None:
                new_minio = ("headwater-" + secrets.token_hex(4), secrets.token_urlsafe(30))
            else:
                minio_root = minio_root_fingerprint(
                    secret_value(root, "accessKey") or "", secret_value(root, "secretKey") or ""
                )
        legacy_topics = spec.connect.mode == "managed" and uses_legacy_connect_topics(
            owner, ctx.cache.get("v1", "ConfigMap", owner.namespace, names.connect_config)
        )
        pctx = PlatformContext(
            secret_versions=versions,
            new_minio_credentials=new_minio,
            minio_root_fingerprint=minio_root,
            connect_legacy_topics=legacy_topics,
            connect_secrets=gather_connect_secrets(ctx, owner)
            if spec.connect.mode == "managed"
            else None,
            # Only a managed Prometheus loads rule files; reading every member otherwise
            # would make the platform depend on (and re-render for) each of them.
            alert_rules=ctx.services["alerts"].platform_rule_files(ctx, body, spec)
            if "alerts" in ctx.services and spec.monitoring.mode == "managed"
            else None,
            extra_scrape_configs=tuple(ctx.settings.extra.get("scrape_configs", ())),
        )
        desired = render_platform(spec, owner, pctx)
        await ctx.applier.reconcile(owner, desired)

        eps = {k: v for k, v in endpoints(spec, owner).items() if v}
        components = [
            await self._component(name, spec, owner, ctx, eps, missing) for name in COMPONENT_ORDER
        ]
        enabled = [c for c in components if c["mode"] != "disabled"]
        ready = [c for c in enabled if c["ready"]]
        status: dict[str, Any] = {
            "components": components,
            "endpoints": eps,
            "readyComponents": f"{len(ready)}/{len(enabled)}",
        }
        if missing:
            component, name = next(iter(missing.items()))
            return Outcome(
                status=status,
                ready=False,
                reason=Reason.SECRET_NOT_FOUND,
                message=f"{component}: Secret {name!r} not found",
                requeue_after=30,
            )
        not_ready = [c for c in enabled if not c["ready"]]
        if not_ready:
            message = "; ".join(
                f"{c['name']}: {c.get('message') or 'not ready'}" for c in not_ready
            )
            # Workload progress arrives through the child informers; external endpoints are
            # polled, so come back sooner while something is down.
            return Outcome(
                status=status,
                ready=False,
                reason=Reason.COMPONENTS_NOT_READY,
                message=message,
                requeue_after=30 if any(c["mode"] == "external" for c in not_ready) else None,
            )
        return Outcome(status=status, ready=True, reason=Reason.READY)

    async def _component(
        self,
        name: str,
        spec: DataPlatformSpec,
        owner: Owner,
        ctx: Context,
        eps: dict[str, str],
        missing: dict[str, str],
    ) -> Obj:
        comp = getattr(spec, {"objectStore": "object_store"}.get(name, name))
        out: Obj = {"name": name, "mode": comp.mode, "ready": comp.mode == "disabled"}
        if comp.mode == "managed":
            workloads = self._workloads(name, spec, owner)
            ready_all, ready_n, want_n, messages = True, 0, 0, []
            for api_version, kind, wname in workloads:
                live = ctx.cache.get(api_version, kind, owner.namespace, wname)
                ok, r, w, msg = workload_ready(live)
                ready_all &= ok
                ready_n += r
                want_n += w
                if msg:
                    messages.append(msg)
            out.update(ready=ready_all, readyReplicas=ready_n, replicas=want_n)
            if messages:
                out["message"] = "; ".join(messages)
        elif comp.mode == "external":
            if name in missing:
                out["message"] = f"Secret {missing[name]!r} not found"
            elif self.probe_external:
                problem = await self._probe(name, spec, ctx, eps)
                out["ready"] = problem is None
                if problem:
                    out["message"] = problem
            else:
                out["ready"] = True
        return out

    @staticmethod
    def _workloads(name: str, spec: DataPlatformSpec, owner: Owner) -> list[tuple[str, str, str]]:
        n = Names(owner.name)
        return {
            "kafka": [("apps/v1", "StatefulSet", n.kafka)],
            "connect": [("apps/v1", "Deployment", n.connect)],
            "flink": [
                ("apps/v1", "Deployment", n.flink_jobmanager),
                ("apps/v1", "Deployment", n.flink_taskmanager),
            ],
            "spark": [],
            "objectStore": [("apps/v1", "StatefulSet", n.minio)],
            "monitoring": [("apps/v1", "Deployment", n.prometheus)],
        }[name]

    async def _probe(
        self, name: str, spec: DataPlatformSpec, ctx: Context, eps: dict[str, str]
    ) -> str | None:
        timeout = ctx.settings.dataplane_timeout / 3
        overrides = ctx.settings.endpoint_overrides

        def url(value: str) -> str:
            return resolve_url(value, overrides)

        call: tuple[Any, ...]
        if name == "kafka" and spec.kafka.external:
            servers = [
                resolve_hostport(s, overrides) for s in spec.kafka.external.bootstrap_servers
            ]
            call = (probe.tcp, servers, timeout)
        elif name == "connect" and spec.connect.external:
            call = (probe.http, url(spec.connect.external.url), "/", timeout)
        elif name == "flink" and spec.flink.external:
            call = (probe.http, url(spec.flink.external.rest_url), "/config", timeout)
        elif name == "objectStore" and spec.object_store.external:
            ext = spec.object_store.external
            call = (
                probe.http,
                url(ext.endpoint),
                "/minio/health/live" if ext.kind == "minio" else "/",
                timeout,
                not ext.tls.insecure_skip_verify,
            )
        elif name == "monitoring" and spec.monitoring.external:
            call = (probe.http, url(spec.monitoring.external.url), "/-/ready", timeout)
        else:
            return None  # spark external: nothing to probe without submitting
        # Keyed by what is probed, not by who asks: platforms sharing an endpoint share it.
        key = (call[0].__name__, repr(call[1:]))
        return await self.probes.get(key, lambda: ctx.blocking(*call))
