"""Informer caches: list + watch, kept in memory, so a steady-state reconcile reads nothing
from the API server.

Children are selected server-side by `app.kubernetes.io/managed-by=headwater`, so the cache
holds only what the operator made. Secrets (credentials the CRs reference) are cached too,
the way controller-runtime's cached client does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..constants import LABEL_MANAGED_BY, LABEL_OWNER_KIND, LABEL_OWNER_NAME, MANAGED_BY
from .client import ApiError, Kube

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Listener = Callable[[str, Obj], None]

MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"

# Kinds the operator creates as children. Informers for optional kinds (monitoring CRDs) are
# started only when the API server serves them.
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
)
OPTIONAL_CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)


def _slim(obj: Obj) -> Obj:
    """Drop what the operator never reads (managedFields are often half of an object)."""
    meta = obj.get("metadata")
    if meta:
        meta.pop("managedFields", None)
    return obj


class Informer:
    """One list+watch loop over one kind (and optionally one namespace)."""

    def __init__(
        self,
        kube: Kube,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        listener: Listener | None = None,
        transform: Callable[[Obj], Obj] = _slim,
        optional: bool = False,
    ):
        self.kube = kube
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.listener = listener
        self.transform = transform
        self.optional = optional
        self.objects: dict[tuple[str, str], Obj] = {}
        self.synced = asyncio.Event()
        self._rv = ""

    def _key(self, obj: Obj) -> tuple[str, str]:
        meta = obj["metadata"]
        return meta.get("namespace", ""), meta["name"]

    def _emit(self, event: str, obj: Obj) -> None:
        if self.listener is not None:
            try:
                self.listener(event, obj)
            except Exception:  # a listener bug must not kill the informer
                log.exception("informer listener failed for %s", self.kind)

    def upsert(self, obj: Obj) -> None:
        """Record an object we just wrote, before its watch event arrives."""
        obj.setdefault("apiVersion", self.api_version)
        obj.setdefault("kind", self.kind)
        key = self._key(obj)
        old = self.objects.get(key)
        if old is not None and _rv_int(old) > _rv_int(obj):
            return
        self.objects[key] = self.transform(obj)

    def forget(self, namespace: str, name: str) -> None:
        self.objects.pop((namespace, name), None)

    async def _relist(self) -> None:
        items, rv = await self.kube.list(
            self.api_version,
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {self._key(o): self.transform(o) for o in items}
        gone = [o for k, o in self.objects.items() if k not in fresh]
        self.objects = fresh
        self._rv = rv
        for obj in gone:
            self._emit("DELETED", obj)
        for obj in fresh.values():
            self._emit("SYNC", obj)

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                if not self._rv:
                    await self._relist()
                    self.synced.set()
                async for event in self.kube.watch(
                    self.api_version,
                    self.kind,
                    self.namespace,
                    resource_version=self._rv,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                ):
                    self._handle(event)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except ApiError as err:
                if err.gone:
                    self._rv = ""  # too old: list again
                    continue
                if err.not_found and self.optional:
                    # The kind's CRD was removed: stop; ClusterCache.refresh_optional starts a
                    # new informer if it comes back.
                    log.info("%s is no longer served; its informer stops", self.kind)
                    self.objects.clear()
                    return
                log.warning("watch %s failed: %s; retrying in %.1fs", self.kind, err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                if err.status in (403, 404):
                    self._rv = ""
            except Exception as err:  # network trouble: back off and resume
                log.warning("watch %s interrupted: %r; retrying in %.1fs", self.kind, err, delay)
                await asyncio.sleep(delay + random.random() * delay)
                delay = min(delay * 2, 30)

    def _handle(self, event: Obj) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            status = obj.get("code", 500)
            raise ApiError(status, obj.get("reason", ""), obj.get("message", ""), obj)
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv:
            self._rv = rv
        if kind == "BOOKMARK":
            return
        obj.setdefault("apiVersion", self.api_version)
        obj.setdefault("kind", self.kind)
        key = self._key(obj)
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = self.transform(obj)
        self._emit(kind or "MODIFIED", obj)


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _rv_int(obj: Obj) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


@dataclass(frozen=True)
class ChildKey:
    api_version: str
    kind: str
    namespace: str
    name: str


class ClusterCache:
    """Children of every Headwater CR, and Secrets, by informer."""

    def __init__(self, kube: Kube, namespaces: Iterable[str] | None = None):
        self.kube = kube
        patterns = list(namespaces or [])
        # Exact names get one informer each; any glob (`team-*`, like Kopf's --namespace)
        # means one cluster-wide informer per kind, filtered here.
        self.patterns = patterns if any(is_glob(p) for p in patterns) else []
        self.namespaces: list[str | None] = (
            [None] if not patterns or self.patterns else list(patterns)
        )
        self.informers: dict[tuple[str, str], list[Informer]] = {}
        # (namespace, owner kind lower-case, owner name) -> set of child keys
        self._owned: dict[tuple[str, str, str], set[ChildKey]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.listeners: list[Listener] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def watches(self, namespace: str) -> bool:
        return not self.patterns or any(fnmatch.fnmatchcase(namespace, p) for p in self.patterns)

    def _listener(self, event: str, obj: Obj) -> None:
        if not self.watches(obj.get("metadata", {}).get("namespace", "")):
            return
        self._index(event, obj)
        for listener in self.listeners:
            listener(event, obj)

    def _add(self, api_version: str, kind: str, **kw: Any) -> None:
        informers = [
            Informer(self.kube, api_version, kind, ns, listener=self._listener, **kw)
            for ns in self.namespaces
        ]
        self.informers[(api_version, kind)] = informers
        for inf in informers:
            task = asyncio.create_task(inf.run(), name=f"informer-{kind}")
            task.add_done_callback(functools.partial(self._ended, (api_version, kind)))
            self._tasks.append(task)

    def _ended(self, key: tuple[str, str], _: object = None) -> None:
        """An informer returned (its optional kind stopped being served): forget the kind."""
        informers = self.informers.get(key, [])
        if informers and all(inf.optional for inf in informers):
            self.informers.pop(key, None)

    async def start(self, *, optional: bool = True) -> None:
        for api_version, kind in CHILD_KINDS:
            if kind == "Secret":
                # All Secrets minus the noisy types nobody references from a CR: we need both
                # our own children and the credentials users point at.
                self._add(
                    api_version,
                    kind,
                    field_selector="type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token",
                )
            else:
                self._add(api_version, kind, label_selector=MANAGED_SELECTOR)
        if optional:
            await self.refresh_optional()

    async def refresh_optional(self) -> list[str]:
        """Start informers for optional kinds that became served. Returns kinds started."""
        started = []
        for api_version, kind in OPTIONAL_CHILD_KINDS:
            if (api_version, kind) in self.informers:
                continue
            try:
                served = await self.kube.resources.served(api_version, kind)
            except ApiError:
                served = False
            if served:
                self._add(api_version, kind, label_selector=MANAGED_SELECTOR, optional=True)
                started.append(kind)
        return started

    def serves(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.informers

    async def wait_synced(self, timeout: float = 120) -> None:
        events = [inf.synced.wait() for infs in self.informers.values() for inf in infs]
        await asyncio.wait_for(asyncio.gather(*events), timeout)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    # --- reads -------------------------------------------------------------------------------

    def _informer(self, api_version: str, kind: str, namespace: str) -> Informer | None:
        for inf in self.informers.get((api_version, kind), []):
            if inf.namespace in (None, namespace):
                return inf
        return None

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        if not self.watches(namespace):
            return None
        inf = self._informer(api_version, kind, namespace)
        return None if inf is None else inf.objects.get((namespace, name))

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self.get("v1", "Secret", namespace, name)

    def owned_by(self, namespace: str, owner_kind: str, owner_name: str) -> list[Obj]:
        out = []
        for key in list(self._owned.get((namespace, owner_kind.lower(), owner_name), ())):
            obj = self.get(key.api_version, key.kind, key.namespace, key.name)
            if obj is not None:
                out.append(obj)
        return out

    def record(self, obj: Obj) -> None:
        """Put an object we just wrote into the cache (and the owner index)."""
        meta = obj["metadata"]
        inf = self._informer(obj["apiVersion"], obj["kind"], meta.get("namespace", ""))
        if inf is not None:
            inf.upsert(obj)
            self._index("MODIFIED", obj)

    def forget(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        inf = self._informer(api_version, kind, namespace)
        if inf is not None:
            obj = inf.objects.get((namespace, name))
            inf.forget(namespace, name)
            if obj is not None:
                self._index("DELETED", obj)

    def _index(self, event: str, obj: Obj) -> None:
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        owner_kind, owner_name = labels.get(LABEL_OWNER_KIND), labels.get(LABEL_OWNER_NAME)
        if not owner_kind or not owner_name:
            return
        ns = meta.get("namespace", "")
        key = ChildKey(obj.get("apiVersion", ""), obj.get("kind", ""), ns, meta["name"])
        bucket = self._owned.setdefault((ns, owner_kind, owner_name), set())
        if event == "DELETED":
            bucket.discard(key)
            if not bucket:
                self._owned.pop((ns, owner_kind, owner_name), None)
        else:
            bucket.add(key)

    def size(self) -> int:
        return sum(len(inf.objects) for infs in self.informers.values() for inf in infs)
