"""The one apply layer: server-side apply, owner references, pruning, skip-when-unchanged.

A reconcile hands over the complete desired set of an owner's children. For each object:
  * live (from the informer cache) already matches -> no request at all;
  * otherwise -> server-side apply with field manager `headwater`, force=true.
Children in the cache that carry the owner's inventory labels but are not desired any more
are deleted (with a uid precondition so a re-created object is never hit by mistake).

"Matches" is decided without a GET: every applied object carries the hash of its desired
form in an annotation, and the cache remembers the resourceVersion our last apply produced.
Same hash and same resourceVersion -> unchanged. If someone else changed the object (other
resourceVersion), the desired fields are compared with the live ones to detect drift.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..constants import ANNOTATION_APPLIED_HASH, LABEL_APPLY_GROUP, LABEL_RETAIN
from ..render.common import Owner, stable_hash
from .cache import ClusterCache
from .client import ApiError, Kube

log = logging.getLogger(__name__)
Obj = dict[str, Any]
DEFAULT_GROUP = "main"
BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.created or self.pruned)


def ref(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def normalize(obj: Obj) -> Obj:
    """The desired object as the API server will store it (Secret stringData -> data)."""
    out = copy.deepcopy(obj)
    if out.get("kind") == "Secret" and "stringData" in out:
        data = out.setdefault("data", {})
        for key, value in out.pop("stringData").items():
            data[key] = base64.b64encode(value.encode()).decode()
    return out


def desired_hash(obj: Obj) -> str:
    return stable_hash(obj)


def is_subset(want: Any, have: Any) -> bool:
    """True when every field in `want` has the same value in `have` (extra fields allowed)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return not want and have is None
        return all(is_subset(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return not want and have is None
        return all(is_subset(w, h) for w, h in zip(want, have, strict=True))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return bool(want == have)


class Applier:
    def __init__(self, kube: Kube, cache: ClusterCache, *, concurrency: int = 8):
        self.kube = kube
        self.cache = cache
        self._sem = asyncio.Semaphore(concurrency)
        # (apiVersion, kind, namespace, name) -> resourceVersion our last apply returned
        self._applied_rv: dict[tuple[str, str, str, str], str] = {}
        # Objects being written right now -> watch events of them that arrived meanwhile.
        self._in_flight: dict[tuple[str, str, str, str], list[Obj]] = {}
        # Where held events go once the write's answer shows they were not its own echo.
        self.release: Callable[[Obj], None] = lambda obj: None

    def _key(self, obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]

    def is_own_write(self, obj: Obj) -> bool:
        """Whether `obj` is exactly the version our last apply of it produced."""
        rv = obj.get("metadata", {}).get("resourceVersion")
        return rv is not None and self._applied_rv.get(self._key(obj)) == rv

    def hold(self, obj: Obj) -> bool:
        """Keep back a watch event of an object we are writing right now.

        Under load the watch often delivers our write before its response does, when the
        event cannot be recognised as our own yet: every one woke its owner for a second
        pass (a LakeZone's credentials Secret: another round of MinIO calls). Held events
        are passed to `release` after the response unless they are exactly our write."""
        held = self._in_flight.get(self._key(obj))
        if held is None:
            return False
        held.append(obj)
        return True

    def _settle(self, key: tuple[str, str, str, str]) -> None:
        for obj in self._in_flight.pop(key, ()):
            if not self.is_own_write(obj):
                try:
                    self.release(obj)
                except Exception:  # a listener bug must not fail the write that held it
                    log.exception("releasing a held watch event of %s/%s failed", *key[1:3])

    def unchanged(self, want: Obj, live: Obj | None) -> bool:
        if live is None:
            return False
        meta = live.get("metadata", {})
        if (meta.get("annotations") or {}).get(ANNOTATION_APPLIED_HASH) != want["metadata"][
            "annotations"
        ][ANNOTATION_APPLIED_HASH]:
            return False
        if self._applied_rv.get(self._key(want)) == meta.get("resourceVersion"):
            return True
        # Someone else wrote it since: compare what we own with what is there.
        body = {k: v for k, v in want.items() if k not in ("metadata", "status")}
        wmeta = want["metadata"]
        return (
            is_subset(body, live)
            and is_subset(wmeta.get("labels", {}), meta.get("labels"))
            and is_subset(wmeta.get("annotations", {}), meta.get("annotations"))
        )

    async def _apply_one(self, want: Obj, result: ApplyResult) -> None:
        meta = want["metadata"]
        live = self.cache.get(
            want["apiVersion"], want["kind"], meta.get("namespace", ""), meta["name"]
        )
        if (meta.get("labels") or {}).get(LABEL_RETAIN) == "true" and live is not None:
            result.unchanged += 1  # create-once objects are never rewritten
            return
        if self.unchanged(want, live):
            result.unchanged += 1
            return
        key = self._key(want)
        async with self._sem:
            self._in_flight.setdefault(key, [])
            try:
                if (meta.get("labels") or {}).get(LABEL_RETAIN) == "true":
                    try:
                        applied = await self.kube.create(want)
                    except ApiError as err:
                        if not err.conflict:
                            raise
                        result.unchanged += 1
                        return
                    result.created.append(ref(want))
                else:
                    applied = await self.kube.apply(want)
                    (result.created if live is None else result.applied).append(ref(want))
                self._applied_rv[key] = applied["metadata"].get("resourceVersion", "")
                self.cache.record(applied)
            finally:
                self._settle(key)

    async def reconcile(
        self, owner: Owner, desired: Iterable[Obj], *, group: str = DEFAULT_GROUP
    ) -> ApplyResult:
        """Make the owner's children of `group` exactly `desired`.

        Groups let independent parts of the operator own children of the same CR without
        pruning each other's (e.g. a reconciler's workloads and the generated alert rules).
        """
        result = ApplyResult()
        wanted: list[Obj] = []
        for raw in desired:
            obj = normalize(raw)
            labels = obj["metadata"].setdefault("labels", {})
            if group != DEFAULT_GROUP:
                labels[LABEL_APPLY_GROUP] = group
            digest = desired_hash(obj)
            obj["metadata"].setdefault("annotations", {})[ANNOTATION_APPLIED_HASH] = digest
            wanted.append(obj)
        # RBAC bindings after everything else: a client without the `bind` verb (the chart's
        # least-privilege ServiceAccount) may only bind a Role the API server can look up
        # and whose permissions it holds, so a RoleBinding sent beside its Role is refused
        # with 404 whenever it wins the race.
        first = [o for o in wanted if o["kind"] not in BINDING_KINDS]
        bindings = [o for o in wanted if o["kind"] in BINDING_KINDS]
        for tier in (first, bindings):
            await asyncio.gather(*(self._apply_one(o, result) for o in tier))
        keep = {self._key(o) for o in wanted}
        stale = [
            o
            for o in self.cache.owned_by(owner.namespace, owner.kind, owner.name)
            if self._key(o) not in keep
            and (o["metadata"].get("labels") or {}).get(LABEL_RETAIN) != "true"
            and (o["metadata"].get("labels") or {}).get(LABEL_APPLY_GROUP, DEFAULT_GROUP) == group
        ]
        await asyncio.gather(*(self._prune(o, result) for o in stale))
        return result

    async def _prune(self, obj: Obj, result: ApplyResult) -> None:
        meta = obj["metadata"]
        async with self._sem:
            await self.kube.delete(
                obj["apiVersion"],
                obj["kind"],
                meta.get("namespace"),
                meta["name"],
                uid=meta.get("uid"),
            )
        self.cache.forget(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        self._applied_rv.pop(self._key(obj), None)
        result.pruned.append(ref(obj))


def workload_ready(obj: Obj | None) -> tuple[bool, int, int, str]:
    """(ready, readyReplicas, replicas, message) of a Deployment or StatefulSet, kstatus style."""
    if obj is None:
        return False, 0, 0, "not created yet"
    spec, status = obj.get("spec", {}), obj.get("status", {}) or {}
    want = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    gen, observed = obj["metadata"].get("generation", 0), status.get("observedGeneration", 0)
    if observed < gen:
        return (
            False,
            ready,
            want,
            f"{obj['kind']} {obj['metadata']['name']}: update not observed yet",
        )
    updated = int(status.get("updatedReplicas", 0) or 0)
    if obj["kind"] == "StatefulSet":
        rolling = status.get("updateRevision") and status.get("currentRevision") != status.get(
            "updateRevision"
        )
        if rolling or updated < want:
            return (
                False,
                ready,
                want,
                f"StatefulSet {obj['metadata']['name']}: rolling update {updated}/{want}",
            )
    elif updated < want:
        return (
            False,
            ready,
            want,
            f"Deployment {obj['metadata']['name']}: rolling update {updated}/{want}",
        )
    if obj["kind"] == "Deployment" and int(status.get("replicas", 0) or 0) > want:
        return False, ready, want, f"Deployment {obj['metadata']['name']}: old pods terminating"
    if ready < want:
        return False, ready, want, f"{obj['kind']} {obj['metadata']['name']}: {ready}/{want} ready"
    return True, ready, want, ""
