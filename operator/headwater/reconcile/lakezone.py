"""LakeZone reconciler: a bucket (or a prefix of one) on the platform's object store.

One pass: resolve the object store from the DataPlatform -> make the bucket's settings what
the spec says (drift is repaired and reported) -> grant access (MinIO users or a bucket
policy) -> apply the children (layout ConfigMap, credentials Secrets) -> measure usage when
the slow timer says so -> status.

Deletion is data-safe: `Retain` leaves bucket, data and bucket settings and only revokes the
access the zone granted (its credentials Secrets are garbage-collected with it, so users left
behind would be keys nobody holds or rotates); `Delete` removes the zone's objects and, when nothing else is left in it, the
bucket, but never an object under retention lock. A deletion that cannot finish gives up
after `deletionTimeoutSeconds` with a Warning Event instead of holding the CR forever.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..api.dataplatform import DataPlatformSpec
from ..api.lakezone import LakeZoneSpec
from ..constants import LABEL_OWNER_KIND, LABEL_OWNER_NAME, Reason
from ..dataplane.endpoints import resolve_url
from ..dataplane.s3 import Connection, ObjectStore, ObjectStoreError, ObjectStoreFactory
from ..kube.conditions import parse_time
from ..render.common import Owner, stable_hash
from ..render.lakezone import (
    COMPONENT,
    BucketSettings,
    Credentials,
    Grant,
    LakeContext,
    bucket_policy_statements,
    bucket_settings,
    grants,
    ids_of,
    layout,
    render_lakezone,
)
from .base import Context, InvalidSpec, NotReady, Obj, Outcome, Retry, secret_value

log = logging.getLogger("headwater.lakezone")

RESYNC_ENV = "HEADWATER_LAKEZONE_RESYNC_SECONDS"
DEFAULT_RESYNC = 300.0
# Status fields that describe the world rather than the spec: kept while the store is away.
OBSERVED = (
    "endpoint",
    "bucketExists",
    "versioning",
    "lifecycleRules",
    "objectLock",
    "policy",
    "principals",
    "appliedHash",
    "multipartCleanup",
    "objectCount",
    "sizeBytes",
    "lastUsageScanTime",
    "lastObjectTime",
)
# `app.kubernetes.io/instance: <zone>-lakezone` must fit a 63-character label value.
MAX_NAME = 63 - len(f"-{COMPONENT}")
RETRY_UNAVAILABLE = 10.0
RETRY_REFUSED = 60.0
DELETE_RETRY = 15.0
Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Target:
    """The object store a zone lives on, as the operator and as workloads reach it."""

    platform: str
    endpoint: str  # what workloads use (status, Secrets)
    region: str
    conn: Connection

    @property
    def admin(self) -> bool:
        return self.conn.admin


def resolve_target(ctx: Context, owner: Owner, spec: LakeZoneSpec) -> Target:
    """Endpoint and operator credentials of the platform's object store (tracked reads)."""
    name = spec.platform_ref.name
    platform = ctx.get("DataPlatform", owner.namespace, name)
    if platform is None:
        raise NotReady(Reason.MISSING_REFERENCE, f"DataPlatform {name!r} not found")
    try:
        pspec = DataPlatformSpec.model_validate(platform.get("spec") or {})
    except ValidationError:
        raise NotReady(
            Reason.REFERENCE_NOT_READY, f"DataPlatform {name!r} has an invalid spec"
        ) from None
    store = pspec.object_store
    if store.mode == "disabled":
        raise NotReady(
            Reason.REFERENCE_NOT_READY,
            f"DataPlatform {name!r} has no object store (objectStore.mode: disabled)",
        )
    eps = (platform.get("status") or {}).get("endpoints") or {}
    endpoint, secret_name = eps.get("s3Endpoint"), eps.get("s3CredentialsSecret")
    if not endpoint or not secret_name:
        raise NotReady(
            Reason.REFERENCE_NOT_READY,
            f"DataPlatform {name!r} has not published its object store endpoint yet",
        )
    access_key_key, secret_key_key, region, verify, ca = (
        "accessKey",
        "secretKey",
        "us-east-1",
        True,
        None,
    )
    admin = store.mode == "managed"
    if store.mode == "external" and store.external is not None:
        ext = store.external
        access_key_key = ext.credentials_secret_ref.access_key_key
        secret_key_key = ext.credentials_secret_ref.secret_key_key
        region, admin, verify = ext.region, ext.kind == "minio", not ext.tls.insecure_skip_verify
        if ext.tls.ca_secret_ref is not None:
            ca = secret_value(
                ctx.secret(owner.namespace, ext.tls.ca_secret_ref.name), ext.tls.ca_secret_ref.key
            )
    secret = ctx.secret(owner.namespace, secret_name)
    if secret is None:
        raise NotReady(
            Reason.SECRET_NOT_FOUND,
            f"Secret {secret_name!r} (object store credentials of DataPlatform {name!r}) not found",
        )
    access_key, secret_key = (
        secret_value(secret, access_key_key),
        secret_value(secret, secret_key_key),
    )
    if not access_key or not secret_key:
        raise NotReady(
            Reason.SECRET_NOT_FOUND,
            f"Secret {secret_name!r} lacks key {access_key_key!r} or {secret_key_key!r}",
        )
    conn = Connection(
        endpoint=resolve_url(str(endpoint), ctx.settings.endpoint_overrides),
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        admin=admin,
        verify=verify,
        ca_pem=ca,
        timeout=ctx.settings.dataplane_timeout,
    )
    return Target(platform=name, endpoint=str(endpoint), region=region, conn=conn)


def check_immutable(spec: LakeZoneSpec, status: Obj) -> None:
    """The CRD's transition rules refuse these changes; this catches objects that predate
    them (or an API server without CEL)."""
    for field_name, want in (("bucket", spec.bucket), ("prefix", spec.prefix)):
        have = status.get(field_name)
        if status.get("bucketExists") and have is not None and have != want:
            raise InvalidSpec(
                f"spec.{field_name}: the zone lives in {have!r}; it cannot move to {want!r} "
                "(create another LakeZone)",
                Reason.IMMUTABLE_FIELD,
            )


def _created(body: Obj) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def _holds(body: Obj, bucket: str) -> bool:
    """Whether a zone has taken hold of the bucket (a pass of it reached the store)."""
    status = body.get("status") or {}
    return bool(status.get("bucketExists")) and status.get("bucket") == bucket


def check_siblings(ctx: Context, body: Obj, spec: LakeZoneSpec) -> None:
    """Zones may share a bucket by prefix, but not overlap, and must agree on the
    bucket-wide settings. The zone that holds the bucket wins, else the older one; the
    other is told why it stalls. (creationTimestamp has one-second resolution: zones
    created within a second, the later one after the first was Ready, were ordered by
    name, and a newcomer could take over a bucket its elders held.)"""
    owner = Owner.from_body(body)
    mine, mine_holds = _created(body), _holds(body, spec.bucket)
    for other in ctx.find("LakeZone", owner.namespace):
        meta = other.get("metadata") or {}
        if meta.get("name") == owner.name or meta.get("deletionTimestamp"):
            continue
        try:
            ospec = LakeZoneSpec.model_validate(other.get("spec") or {})
        except ValidationError:
            continue
        if ospec.bucket != spec.bucket or ospec.platform_ref != spec.platform_ref:
            continue
        other_holds = _holds(other, spec.bucket)
        if other_holds != mine_holds:
            if mine_holds:
                continue  # it reports the conflict
        elif _created(other) > mine:
            continue  # the newer zone reports the conflict
        problem = _conflict(spec, ospec)
        if problem:
            raise InvalidSpec(
                f"bucket {spec.bucket} is used by LakeZone {meta.get('name')!r}: {problem}",
                Reason.BUCKET_CONFLICT,
            )


def _conflict(a: LakeZoneSpec, b: LakeZoneSpec) -> str | None:
    if not a.prefix or not b.prefix:
        return "a zone that spans the whole bucket (empty prefix) cannot share it"
    if a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix):
        return f"prefixes {a.prefix!r} and {b.prefix!r} overlap"
    if a.versioning != b.versioning:
        return "versioning differs (a bucket-wide setting)"
    if a.object_lock != b.object_lock:
        return "objectLock differs (a bucket-wide setting)"
    return None


class LakeMetrics:
    """Per-zone gauges the LakeZone alert rules query (created once per metrics registry)."""

    _by_registry: dict[int, LakeMetrics] = {}

    def __init__(self, registry: Any):
        from prometheus_client import Gauge

        labels = ["namespace", "name"]
        self.size = Gauge(
            "headwater_lakezone_size_bytes",
            "Bytes of current objects in the zone at the last usage scan.",
            labels,
            registry=registry,
        )
        self.objects = Gauge(
            "headwater_lakezone_objects",
            "Current objects in the zone at the last usage scan.",
            labels,
            registry=registry,
        )
        self.newest = Gauge(
            "headwater_lakezone_last_object_timestamp_seconds",
            "Modification time of the zone's newest object at the last usage scan.",
            labels,
            registry=registry,
        )

    @classmethod
    def of(cls, metrics: Any) -> LakeMetrics | None:
        registry = getattr(metrics, "registry", None)
        if registry is None:
            return None
        key = id(registry)
        if key not in cls._by_registry:
            cls._by_registry[key] = cls(registry)
        return cls._by_registry[key]

    def publish(self, owner: Owner, status: Obj) -> None:
        labels = (owner.namespace, owner.name)
        if status.get("sizeBytes") is not None:
            self.size.labels(*labels).set(status["sizeBytes"])
            self.objects.labels(*labels).set(status.get("objectCount") or 0)
        newest = parse_time(status.get("lastObjectTime"))
        if newest is not None:
            self.newest.labels(*labels).set(newest.timestamp())

    def forget(self, owner: Owner) -> None:
        for gauge in (self.size, self.objects, self.newest):
            with contextlib.suppress(KeyError):
                gauge.remove(owner.namespace, owner.name)


class LakeZoneReconciler:
    kind = "LakeZone"

    def __init__(self, resync_seconds: float | None = None, clock: Clock = _utcnow):
        # The resync is also how often drift of bucket settings and access is detected.
        self.resync_seconds = resync_seconds or float(os.environ.get(RESYNC_ENV, DEFAULT_RESYNC))
        self.clock = clock
        # The object store each zone last reached, by uid. Deleting a namespace removes the
        # DataPlatform and the credentials Secret before the zones (whose finalizer holds
        # them): the clean-up then uses what the zone last used instead of orphaning it.
        self._last_target: dict[str, Target] = {}

    def needs_finalizer(self, body: Obj) -> bool:
        """Buckets, MinIO users and policies live outside Kubernetes, but only a zone that
        has found its object store can have made any: one that never did (a missing
        platform, say) has nothing to clean and must not hold up its namespace's deletion
        when no operator is around."""
        return bool((body.get("status") or {}).get("endpoint"))

    # --- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, body: Obj, ctx: Context) -> Outcome:
        spec = LakeZoneSpec.model_validate(body.get("spec") or {})
        owner = Owner.from_body(body)
        prev = body.get("status") or {}
        if len(owner.name) > MAX_NAME:
            raise InvalidSpec(
                f"metadata.name: a LakeZone name must be at most {MAX_NAME} characters "
                "(its children carry it in label values)"
            )
        check_immutable(spec, prev)
        check_siblings(ctx, body, spec)
        status: Obj = {k: prev[k] for k in OBSERVED if k in prev}
        status.update(layout(spec))
        try:
            target = resolve_target(ctx, owner, spec)
            if target.admin:
                self._check_secret_names(ctx, owner, spec)
        except NotReady as err:
            return Outcome(
                status=status,
                ready=False,
                reason=err.reason,
                message=str(err),
                requeue_after=err.requeue_after,
            )
        status["endpoint"] = target.endpoint
        self._last_target[owner.uid] = target
        # First contact: the finalizer must exist before anything is created on the store.
        # (A zone that never found its store holds none: nothing to clean, and nothing to
        # hold up its namespace's deletion when no operator is around.)
        body = await ctx.ensure_finalizer(body)
        store: ObjectStore = self._factory(ctx).get(target.conn)
        try:
            return await self._sync(body, ctx, spec, owner, prev, status, store, target)
        except ObjectStoreError as err:
            self._count_error(ctx, body)
            raise _translate(err, target) from None

    @staticmethod
    def _factory(ctx: Context) -> ObjectStoreFactory:
        factory: ObjectStoreFactory | None = ctx.services.get("s3")
        if factory is None:  # a Context built without registry services (tests, tools)
            factory = ctx.services["s3"] = ObjectStoreFactory()
        return factory

    @staticmethod
    def _count_error(ctx: Context, body: Obj) -> None:
        """A failed object-store call, per system and for this zone's alert rule."""
        metrics = ctx.services.get("metrics")
        if metrics is not None:
            metrics.dataplane_error("s3", body)

    @staticmethod
    def _check_secret_names(ctx: Context, owner: Owner, spec: LakeZoneSpec) -> None:
        """A credentials Secret name that belongs to someone else is never overwritten."""
        for grant in grants(spec, ids_of(owner)):
            if len(grant.secret_name) > 253:
                raise InvalidSpec(
                    f"access: Secret name {grant.secret_name[:40]}... is longer than 253 "
                    "characters; set secretName",
                )
            existing = ctx.secret(owner.namespace, grant.secret_name)
            if existing is not None and not _owned_by(existing, owner):
                raise NotReady(
                    Reason.SECRET_CONFLICT,
                    f"Secret {grant.secret_name!r} for principal {grant.principal!r} exists and "
                    "is not managed by this LakeZone; delete it or choose another secretName",
                )

    async def _sync(
        self,
        body: Obj,
        ctx: Context,
        spec: LakeZoneSpec,
        owner: Owner,
        prev: Obj,
        status: Obj,
        store: ObjectStore,
        target: Target,
    ) -> Outcome:
        ids = ids_of(owner)
        want = bucket_settings(spec, ids)
        zone_grants = grants(spec, ids)
        fingerprint = stable_hash(
            want.fingerprint(), [(g.principal, g.access) for g in zone_grants], target.admin
        )
        expected = prev.get("appliedHash") == fingerprint  # anything that changes now is drift

        report = await ctx.blocking(store.ensure_bucket, want)
        changes = list(report.changes)
        events: list[tuple[str, str, str]] = []
        if report.created:
            events.append(("Normal", Reason.BUCKET_CREATED, report.changes[0]))
        if target.admin:
            access_changes, issued = await self._minio_access(
                ctx, spec, owner, store, target, zone_grants, revoke=not expected
            )
            status["policy"] = "minio-users" if zone_grants else "none"
            events.extend(
                ("Normal", Reason.CREDENTIALS_ISSUED, f"generated keys for {p!r} in Secret {s!r}")
                for p, s in issued
            )
        else:
            access_changes = await self._bucket_policy(ctx, spec, owner, store, want)
            status["policy"] = "bucket-policy" if zone_grants else "none"
        changes += access_changes
        if expected and changes:
            events.append(
                (
                    "Warning",
                    Reason.DRIFT_REPAIRED,
                    f"bucket {want.bucket} was changed outside the operator; restored: "
                    + "; ".join(changes),
                )
            )
        status.update(
            bucketExists=True,
            versioning=report.versioning,
            lifecycleRules=report.rule_ids,
            objectLock=report.object_lock,
            principals=[
                {
                    "name": g.principal,
                    "access": g.access,
                    **({"secretName": g.secret_name} if target.admin else {}),
                }
                for g in zone_grants
            ],
            appliedHash=fingerprint,
        )
        if report.multipart_cleanup:
            status["multipartCleanup"] = report.multipart_cleanup
        else:
            status.pop("multipartCleanup", None)
        next_scan = await self._usage(ctx, spec, status, store)
        lake_metrics = LakeMetrics.of(ctx.services.get("metrics"))
        if lake_metrics is not None:
            lake_metrics.publish(owner, status)
        return Outcome(
            status=status,
            ready=True,
            reason=Reason.READY,
            events=events,
            requeue_after=min(self.resync_seconds, next_scan),
        )

    async def _minio_access(
        self,
        ctx: Context,
        spec: LakeZoneSpec,
        owner: Owner,
        store: ObjectStore,
        target: Target,
        zone_grants: list[Grant],
        revoke: bool,
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """MinIO users and policies, and the Secrets with their keys. Returns the changes
        made to principals that already had keys, and the (principal, Secret) newly keyed.

        Users of principals no longer in the spec are looked for (a listing of every policy
        on the server) only when the spec changed since the last complete pass."""
        credentials: dict[str, Credentials] = {}
        issued: list[tuple[str, str]] = []
        changes: list[str] = []
        for grant in zone_grants:
            existing = ctx.secret(owner.namespace, grant.secret_name)
            secret_key = (
                secret_value(existing, "secretKey")
                if secret_value(existing, "accessKey") == grant.access_key
                else None
            )
            fresh = secret_key is None
            if secret_key is None:
                secret_key = secrets.token_urlsafe(30)
                issued.append((grant.principal, grant.secret_name))
            credentials[grant.principal] = Credentials(grant.access_key, secret_key)
            done = await ctx.blocking(store.ensure_grant, grant, secret_key, fresh)
            if not fresh:
                changes += done
        ids = ids_of(owner)
        if revoke:
            await ctx.blocking(
                store.revoke, ids.policy_prefix, [g.principal for g in zone_grants], ids.access_key
            )
        objects = render_lakezone(
            spec, owner, LakeContext(target.endpoint, target.region, credentials)
        )
        await ctx.applier.reconcile(owner, objects)
        return changes, issued

    async def _bucket_policy(
        self,
        ctx: Context,
        spec: LakeZoneSpec,
        owner: Owner,
        store: ObjectStore,
        want: BucketSettings,
    ) -> list[str]:
        ids = ids_of(owner)
        changes = await ctx.blocking(
            store.ensure_bucket_policy,
            want.bucket,
            bucket_policy_statements(spec, ids),
            ids.sid_prefix,
        )
        await ctx.applier.reconcile(owner, render_lakezone(spec, owner, LakeContext()))
        return changes

    async def _usage(
        self, ctx: Context, spec: LakeZoneSpec, status: Obj, store: ObjectStore
    ) -> float:
        """Rescan usage when the slow timer is due; returns seconds until the next scan."""
        now = self.clock()
        last = parse_time(status.get("lastUsageScanTime"))
        interval = float(spec.usage_scan_interval_seconds)
        if last is not None and (now - last).total_seconds() < interval:
            return max(1.0, interval - (now - last).total_seconds())
        usage = await ctx.blocking(store.usage, spec.bucket, spec.prefix)
        status.update(objectCount=usage.objects, sizeBytes=usage.bytes, lastUsageScanTime=_ts(now))
        if usage.newest is not None:
            status["lastObjectTime"] = _ts(usage.newest)
        else:
            status.pop("lastObjectTime", None)
        return interval

    # --- deletion -------------------------------------------------------------------------------

    async def finalize(self, body: Obj, ctx: Context) -> Outcome:
        outcome = await self._finalize(body, ctx)
        if outcome.finalized:
            self._last_target.pop(Owner.from_body(body).uid, None)
        return outcome

    async def _finalize(self, body: Obj, ctx: Context) -> Outcome:
        owner = Owner.from_body(body)
        lake_metrics = LakeMetrics.of(ctx.services.get("metrics"))
        if lake_metrics is not None:
            lake_metrics.forget(owner)
        try:
            spec = LakeZoneSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return _done("Warning", Reason.CLEANUP_INCOMPLETE, "invalid spec: nothing cleaned")
        try:
            target = resolve_target(ctx, owner, spec)
        except NotReady as err:
            remembered = self._last_target.get(owner.uid)
            if remembered is None:  # e.g. the operator restarted after the platform went
                return _done(
                    "Warning",
                    Reason.CLEANUP_INCOMPLETE,
                    f"{err}; bucket {spec.bucket} and any access granted were left as they are",
                )
            log.info(
                "LakeZone %s/%s: %s; cleaning up on %s as last reconciled",
                owner.namespace,
                owner.name,
                err,
                remembered.endpoint,
            )
            target = remembered
        store = self._factory(ctx).get(target.conn)
        elapsed = self._elapsed(body)
        try:
            await self._revoke(ctx, spec, owner, store, target)
            if spec.deletion_policy == "Retain":
                return _done(
                    "Normal",
                    Reason.BUCKET_RETAINED,
                    f"deletionPolicy Retain: {layout(spec)['url']} and its data were kept; "
                    "the zone's access grants were revoked",
                )
            return await self._delete_data(ctx, body, spec, owner, store, elapsed)
        except ObjectStoreError as err:
            self._count_error(ctx, body)
            if spec.deletion_policy == "Retain" or elapsed >= spec.deletion_timeout_seconds:
                return _done(
                    "Warning",
                    Reason.CLEANUP_INCOMPLETE,
                    f"gave up cleaning up after {int(elapsed)}s: {err}; bucket {spec.bucket} "
                    "and what it holds were left in place",
                )
            retry = _translate(err, target)
            return Outcome(
                status={},
                ready=False,
                reason=retry.reason,
                message=f"deleting: {retry}",
                requeue_after=min(DELETE_RETRY, max(1.0, spec.deletion_timeout_seconds - elapsed)),
            )

    def _elapsed(self, body: Obj) -> float:
        started = parse_time((body.get("metadata") or {}).get("deletionTimestamp"))
        return 0.0 if started is None else max(0.0, (self.clock() - started).total_seconds())

    async def _revoke(
        self, ctx: Context, spec: LakeZoneSpec, owner: Owner, store: ObjectStore, target: Target
    ) -> None:
        """Remove the zone's users and policies (or bucket-policy statements), whatever the
        deletionPolicy: access lives and dies with the zone, like its credentials Secrets."""
        ids = ids_of(owner)
        if target.admin:
            await ctx.blocking(store.revoke, ids.policy_prefix, [], ids.access_key)
        elif await ctx.blocking(store.bucket_exists, spec.bucket):
            await ctx.blocking(store.ensure_bucket_policy, spec.bucket, [], ids.sid_prefix)

    async def _delete_data(
        self,
        ctx: Context,
        body: Obj,
        spec: LakeZoneSpec,
        owner: Owner,
        store: ObjectStore,
        elapsed: float,
    ) -> Outcome:
        url = layout(spec)["url"]
        if not (body.get("status") or {}).get("appliedHash"):
            # Never reconciled successfully (e.g. stalled on a conflict): the bucket may be
            # someone else's, so nothing is deleted.
            return _done(
                "Normal",
                Reason.BUCKET_RETAINED,
                f"{url}: the zone never took hold of the bucket; nothing was deleted",
            )
        if not await ctx.blocking(store.bucket_exists, spec.bucket):
            return _done("Normal", Reason.BUCKET_DELETED, f"{url}: bucket already gone")
        result = await ctx.blocking(store.purge, spec.bucket, spec.prefix)
        if result.locked or result.other_failures:
            what = _leftover(result.locked, result.locked_until, result.other_failures)
            if elapsed >= spec.deletion_timeout_seconds:
                # The zone's lifecycle rules stay: they expire the data once the locks end.
                return _done(
                    "Warning",
                    Reason.RETENTION_LOCKED if result.locked else Reason.CLEANUP_INCOMPLETE,
                    f"gave up deleting {url} after {int(elapsed)}s: {what}; deleted "
                    f"{result.deleted} versions, the rest and the bucket are left in place",
                )
            remaining = spec.deletion_timeout_seconds - elapsed
            return Outcome(
                status={},
                ready=False,
                reason=Reason.RETENTION_LOCKED if result.locked else Reason.CLEANUP_INCOMPLETE,
                message=f"deleting {url}: {what}; they are kept (never force-deleted). "
                f"Giving up in {int(remaining)}s (deletionTimeoutSeconds), leaving them and "
                "the bucket in place",
                requeue_after=min(DELETE_RETRY, max(1.0, remaining)),
            )
        shared = self._bucket_shared(ctx, body, spec)
        if not shared and await ctx.blocking(store.remove_bucket_if_empty, spec.bucket):
            return _done(
                "Normal",
                Reason.BUCKET_DELETED,
                f"deleted {result.deleted} object versions and bucket {spec.bucket}",
            )
        await ctx.blocking(store.remove_lifecycle_rules, spec.bucket, ids_of(owner).rule_prefix)
        return _done(
            "Normal",
            Reason.BUCKET_DELETED,
            f"deleted {result.deleted} object versions under {url}; bucket {spec.bucket} kept "
            + ("(other LakeZones use it)" if shared else "(it holds objects outside the zone)"),
        )

    @staticmethod
    def _bucket_shared(ctx: Context, body: Obj, spec: LakeZoneSpec) -> bool:
        meta = body["metadata"]
        for other in ctx.find("LakeZone", meta.get("namespace", "")):
            ometa = other.get("metadata") or {}
            ospec = other.get("spec") or {}
            if ometa.get("name") != meta["name"] and ospec.get("bucket") == spec.bucket:
                return True
        return False


def _owned_by(obj: Obj, owner: Owner) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(LABEL_OWNER_KIND) == owner.kind.lower()
        and labels.get(LABEL_OWNER_NAME) == owner.name
    )


def _translate(err: ObjectStoreError, target: Target) -> InvalidSpec | Retry:
    where = f"object store {target.endpoint} (DataPlatform {target.platform!r})"
    if err.kind == "immutable":
        return InvalidSpec(str(err), Reason.IMMUTABLE_FIELD)
    if err.kind == "unavailable":
        return Retry(
            f"{where} unreachable: {err}", Reason.OBJECT_STORE_UNAVAILABLE, RETRY_UNAVAILABLE
        )
    if err.kind == "auth":
        return Retry(
            f"{where} refused the credentials: {err}", Reason.AUTHENTICATION_FAILED, RETRY_REFUSED
        )
    return Retry(f"{where} refused a request: {err}", Reason.OBJECT_STORE_REFUSED, RETRY_REFUSED)


def _leftover(locked: int, until: dt.datetime | None, others: list[str]) -> str:
    parts = []
    if locked:
        parts.append(
            f"{locked} object versions are under retention lock or legal hold"
            + (f" (until {_ts(until)} at the latest)" if until else "")
        )
    if others:
        parts.append(f"{len(others)} could not be deleted ({', '.join(others[:3])})")
    return "; ".join(parts)


def _done(event_type: str, reason: str, message: str) -> Outcome:
    return Outcome(
        status={},
        ready=False,
        reason=Reason.DELETING,
        finalized=True,
        events=[(event_type, reason, message)],
    )
