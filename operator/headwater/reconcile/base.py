"""The controller: one level-based loop for every kind.

Kopf feeds watch events of the Headwater CRs into `Controller.observe`; informer caches feed
child and Secret events in. Both only *enqueue keys*. Workers take keys from one
de-duplicating queue and call the kind's `reconcile(body, ctx)`, which computes everything
from the current state of the world (never from the event), writes status when it changed,
and is re-run on a timer (the resync) or when anything it depends on changes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from ..constants import (
    ANNOTATION_PAUSED,
    API_VERSION,
    COND_READY,
    COND_RECONCILING,
    FINALIZER,
    LABEL_OWNER_KIND,
    LABEL_OWNER_NAME,
    Reason,
)
from ..kube import conditions
from ..kube.apply import Applier, workload_ready
from ..kube.cache import ClusterCache
from ..kube.client import ApiError, Kube
from ..kube.events import EventRecorder, scrub
from .queue import WorkQueue

log = logging.getLogger("headwater")
Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name
T = TypeVar("T")


class InvalidSpec(Exception):
    """The spec can't be acted on until the user changes it (-> Stalled, no retry)."""

    def __init__(self, message: str, reason: str = Reason.INVALID_SPEC):
        super().__init__(message)
        self.reason = reason


class NotReady(Exception):
    """Something the resource reads is not usable yet (a reference without status, a missing
    endpoint): reported as Ready=False with `reason`. With no `requeue_after` the resource
    waits for that reference to change (dependency tracking re-enqueues it)."""

    def __init__(self, reason: str, message: str, requeue_after: float | None = None):
        super().__init__(message)
        self.reason = reason
        self.requeue_after = requeue_after


class Retry(Exception):
    """A temporary condition: report it and try again after `delay` seconds."""

    def __init__(self, message: str, reason: str, delay: float = 30.0):
        super().__init__(message)
        self.reason = reason
        self.delay = delay


def secret_value(secret: Mapping[str, Any] | None, key: str) -> str | None:
    """One decoded value of a Secret (as the cache holds it), or None."""
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value).decode() if value is not None else None


def validation_message(err: ValidationError) -> str:
    """`spec.kafka.managed.replicas: Input should be ...` lines from a pydantic error."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"spec.{loc}: {msg}" if loc else f"spec: {msg}")
    return "; ".join(parts)


@dataclass
class Outcome:
    """What one reconcile decided."""

    status: Obj
    ready: bool
    reason: str
    message: str = ""
    stalled: bool = False
    extra_conditions: list[conditions.Cond] = field(default_factory=list)
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # type, reason, message
    # For deletion: True when external clean-up finished and the finalizer may go.
    finalized: bool = False


class Reconciler(Protocol):
    kind: str
    resync_seconds: float

    def needs_finalizer(self, body: Obj) -> bool:
        """Whether deleting this CR must clean something outside Kubernetes."""

    async def reconcile(self, body: Obj, ctx: Context) -> Outcome: ...

    async def finalize(self, body: Obj, ctx: Context) -> Outcome: ...


# Ready=False reasons that mean "on the way" rather than "something is wrong".
TRANSITIONAL = frozenset(
    {
        Reason.PROGRESSING,
        Reason.COMPONENTS_NOT_READY,
        Reason.REFERENCE_NOT_READY,
        Reason.UPGRADING,
        Reason.DELETING,
    }
)

# Work-queue priorities. What a user waits on comes first, in dependency order: a platform
# before what runs on it (its workloads take longest to start, so they start first, and its
# dependents are looked at when their reference can be ready), then sources, then the rest.
# Children's status echoes and timers come last, except a workload turning Ready.
PRIORITY = {"DataPlatform": 0, "DataSource": 1}
PRIORITY_OTHER = 2
PRIORITY_ROUTINE = 3
_WORKLOADS = frozenset({"Deployment", "StatefulSet"})


def priority_of(key: Key) -> int:
    """The queue level of a resource that was created or changed, or whose references did."""
    return PRIORITY.get(key[0], PRIORITY_OTHER)


# How long a namespace whose deletion refused a create is left alone before trying again.
TERMINATING_RECHECK_SECONDS = 60.0


@dataclass
class Settings:
    """Operator tuning; see README "Scaling"."""

    workers: int = 16
    threads: int = 8
    # Writes (applies, prunes) in flight at once across all workers; 0 = 2 x workers.
    api_concurrency: int = 0
    max_backoff: float = 300.0
    namespaces: tuple[str, ...] = ()
    operator_namespace: str = "headwater-system"
    resync_jitter: float = 0.1
    dataplane_timeout: float = 10.0
    # in-cluster host:port -> host:port the operator can reach (dataplane/endpoints.py)
    endpoint_overrides: dict[str, str] = field(default_factory=dict)
    # Kinds whose reconcilers render and validate but never call their data plane
    # (HEADWATER_DATAPLANE_DISABLED; benchmarks and dry runs). Honoured by CdcConnector.
    dataplane_disabled: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    """Latest body of every Headwater CR, fed by Kopf's watch; indexed by kind and namespace
    so `Context.find` costs the namespace's objects, not the whole store."""

    def __init__(self) -> None:
        self._objs: dict[Key, Obj] = {}
        self._by_ns: dict[tuple[str, str], dict[str, Obj]] = {}

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objs.get((kind, namespace, name))

    def put(self, key: Key, body: Obj) -> None:
        """Keep the newest body: a watch event can arrive after the response of our own
        write (status patch, finalizer) and must not roll the store back."""
        old = self._objs.get(key)
        if old is not None and _rv(old) > _rv(body) and _uid(old) == _uid(body):
            return
        self._objs[key] = body
        self._by_ns.setdefault((key[0], key[1]), {})[key[2]] = body

    def pop(self, key: Key) -> Obj | None:
        bucket = self._by_ns.get((key[0], key[1]))
        if bucket is not None:
            bucket.pop(key[2], None)
            if not bucket:
                del self._by_ns[(key[0], key[1])]
        return self._objs.pop(key, None)

    def items(self, kind: str | None = None) -> list[Obj]:
        return [o for (k, _, _), o in self._objs.items() if kind is None or k == kind]

    def in_namespace(self, kind: str, namespace: str) -> list[Obj]:
        return list(self._by_ns.get((kind, namespace), {}).values())

    def __len__(self) -> int:
        return len(self._objs)


# What the current reconcile read: (namespace, kind, name or "*"). Whatever a reconcile reads,
# it depends on: a change to any of it enqueues the reader again. Tracked per task, so the
# dependency graph follows the code instead of a hand-written list that drifts from it.
_reads: contextvars.ContextVar[set[tuple[str, str, str]] | None] = contextvars.ContextVar(
    "headwater_reads", default=None
)


# Names in a dependency on every CR of a kind in a namespace (see Context.find).
ANY, ANY_WITH_STATUS = "*", "*+status"


def _track(ns: str, kind: str, name: str) -> None:
    reads = _reads.get()
    if reads is not None:
        reads.add((ns, kind, name))


@dataclass
class Context:
    """Everything a reconciler may use. Tests build one without Kopf."""

    kube: Kube
    cache: ClusterCache
    applier: Applier
    store: Store
    events: EventRecorder
    settings: Settings
    executor: ThreadPoolExecutor
    services: dict[str, Any] = field(default_factory=dict)  # data-plane client factories

    enqueue: Callable[[Key], None] = lambda key: None
    # Set by the Controller: adds our finalizer to a CR (resourceVersion-guarded).
    add_finalizer: Callable[[Obj], Awaitable[Obj]] | None = None

    async def ensure_finalizer(self, body: Obj) -> Obj:
        """Add the clean-up finalizer now, in the middle of a reconcile, before anything is
        created outside Kubernetes; returns the updated body."""
        if FINALIZER in (body["metadata"].get("finalizers") or []):
            return body
        if self.add_finalizer is None:
            raise RuntimeError("this Context cannot add finalizers")
        return await self.add_finalizer(body)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A Headwater CR from the store; the caller now depends on it."""
        _track(namespace, kind, name)
        return self.store.get(kind, namespace, name)

    def find(self, kind: str, namespace: str, *, status: bool = False) -> list[Obj]:
        """All CRs of a kind in a namespace; the caller now depends on every one of them:
        on their metadata and spec, and with `status=True` on what they publish too."""
        _track(namespace, kind, ANY_WITH_STATUS if status else ANY)
        return self.store.in_namespace(kind, namespace)

    def secret(self, namespace: str, name: str) -> Obj | None:
        """A Secret from the cache; the caller now depends on it."""
        _track(namespace, "Secret", name)
        return self.cache.secret(namespace, name)

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking data-plane call off the event loop, in the bounded pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args))


def _rv(body: Mapping[str, Any]) -> int:
    try:
        return int(body.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _uid(body: Mapping[str, Any]) -> str:
    return str(body.get("metadata", {}).get("uid") or "")


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return body["kind"], meta.get("namespace", ""), meta["name"]


def _meaningful(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What, when changed, needs a reconcile of the object itself (not its status)."""
    meta = body.get("metadata", {})
    return (
        meta.get("generation"),
        meta.get("deletionTimestamp"),
        tuple(meta.get("finalizers") or ()),
        tuple(sorted((meta.get("annotations") or {}).items())),
        meta.get("uid"),
    )


def _changed_by_others(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A new generation or a deletion: what no write of the controller itself makes."""
    a, b = old.get("metadata", {}), new.get("metadata", {})
    return (a.get("generation"), a.get("deletionTimestamp")) != (
        b.get("generation"),
        b.get("deletionTimestamp"),
    )


def _visible(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What dependents read from an object: its spec and the endpoints it publishes."""
    status = body.get("status") or {}
    return (
        body.get("metadata", {}).get("generation"),
        status.get("observedGeneration"),
        repr(status.get("endpoints")),
        repr(status.get("topics")),
        repr(status.get("pathTemplate")),
    )


def _ready(body: Mapping[str, Any]) -> str | None:
    cond = conditions.get((body.get("status") or {}).get("conditions"), COND_READY)
    return cond.get("status") if cond else None


class Controller:
    def __init__(
        self,
        kube: Kube,
        reconcilers: Iterable[Reconciler],
        settings: Settings | None = None,
        *,
        cache: ClusterCache | None = None,
        services: dict[str, Any] | None = None,
        metrics: Any = None,
    ):
        self.settings = settings or Settings()
        self.kube = kube
        self.cache = cache or ClusterCache(kube, self.settings.namespaces or None)
        self.store = Store()
        self.queue: WorkQueue[Key] = WorkQueue(levels=PRIORITY_ROUTINE + 1)
        self.reconcilers = {r.kind: r for r in reconcilers}
        self._by_lower = {k.lower(): k for k in self.reconcilers}
        self._failures: dict[Key, int] = {}
        self._terminating: dict[str, float] = {}  # namespace -> when a create was refused
        self._dependents: dict[tuple[str, str, str], set[Key]] = {}
        self._refs: dict[Key, set[tuple[str, str, str]]] = {}
        self.executor = ThreadPoolExecutor(self.settings.threads, thread_name_prefix="dataplane")
        self.ctx = Context(
            kube=kube,
            cache=self.cache,
            applier=Applier(
                kube,
                self.cache,
                concurrency=self.settings.api_concurrency or 2 * self.settings.workers,
            ),
            store=self.store,
            events=EventRecorder(kube),
            settings=self.settings,
            executor=self.executor,
            services=services or {},
            enqueue=self.queue.add,
            add_finalizer=lambda body: self._add_finalizer(key_of(body), body),
        )
        self.metrics = metrics
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = asyncio.Event()
        self.cache.listeners.append(self._on_cache_event)
        self.ctx.applier.release = lambda obj: self._on_cache_event("MODIFIED", obj)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.cache.start()
        self._tasks.append(asyncio.create_task(self.queue.run_timer(), name="queue-timer"))
        await self.cache.wait_synced()
        for i in range(self.settings.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"worker-{i}"))
        self.started.set()
        log.info(
            "controller started: %d workers, %d cached children/secrets",
            self.settings.workers,
            self.cache.size(),
        )

    async def stop(self) -> None:
        self.queue.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.ctx.events.close()
        await self.cache.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- event intake ------------------------------------------------------------------------

    def observe(self, body: Obj, event_type: str | None = None) -> None:
        """A watch event of a Headwater CR (called from Kopf's on.event handler)."""
        key = key_of(body)
        if event_type == "DELETED":
            old = self.store.pop(key)
            self.queue.forget(key)
            self._failures.pop(key, None)
            self._set_refs(key, ())
            if old is not None:
                self._enqueue_dependents(key)
            return
        old = self.store.get(*key)
        self.store.put(key, body)
        if self.store.get(*key) is not body:
            return  # older than the response of our own write already stored
        if old is None and key[1] in self._terminating:
            self._namespace_recreated(key[1], body)
        if old is None or _meaningful(old) != _meaningful(body):
            self.queue.add(key, priority_of(key))  # new or changed by someone: before echoes
        self._changed(key, old, body)

    def _changed(self, key: Key, old: Obj | None, new: Obj) -> None:
        """Wake the dependents of `key` that care about the change from `old` to `new`."""
        if old is None:
            self._enqueue_dependents(key)
            return
        spec = _changed_by_others(old, new)
        was, now = _ready(old), _ready(new)
        if _visible(old) != _visible(new) or was == "True" != now:
            self._enqueue_dependents(key, spec_changed=spec)
        elif was != now:
            # Became Ready: a dependent that is Ready already has nothing to redo (at 1,000
            # CRs, re-reconciling each as its platform became Ready was 600 passes); one
            # still waiting retries now instead of after its backoff.
            self._enqueue_dependents(key, waiting_only=True, spec_changed=spec)

    def _namespace_terminating(self, namespace: str) -> bool:
        marked = self._terminating.get(namespace)
        if marked is None:
            return False
        if time.time() - marked > TERMINATING_RECHECK_SECONDS:
            del self._terminating[namespace]  # look again: one refused create re-marks it
            return False
        return True

    def _namespace_recreated(self, namespace: str, body: Obj) -> None:
        """A terminating namespace accepts no new objects: a CR created after the mark lives
        in a new namespace of the same name."""
        created = conditions.parse_time(body["metadata"].get("creationTimestamp"))
        if created is not None and created.timestamp() > self._terminating[namespace]:
            del self._terminating[namespace]

    def _set_refs(self, key: Key, refs: Iterable[tuple[str, str, str]]) -> None:
        new = set(refs)
        for ref in self._refs.get(key, set()) - new:
            deps = self._dependents.get(ref)
            if deps is not None:
                deps.discard(key)
                if not deps:
                    del self._dependents[ref]
        for ref in new:
            self._dependents.setdefault(ref, set()).add(key)
        if new:
            self._refs[key] = new
        else:
            self._refs.pop(key, None)

    def _enqueue_dependents(
        self, key: Key, waiting_only: bool = False, spec_changed: bool = True
    ) -> None:
        """Wake what read `key`. Readers of every CR of its kind that look at specs only
        (a LakeZone checking its bucket's other zones) are woken by new, changed or deleted
        ones, not by status: at 20 zones a namespace, each zone's first status write woke
        the others for a pass of MinIO calls that found nothing to do."""
        kind, ns, name = key
        refs = [(ns, kind, name), (ns, kind, ANY_WITH_STATUS)]
        if spec_changed:
            refs.append((ns, kind, ANY))
        for ref in refs:
            for dep in self._dependents.get(ref, ()):
                if dep == key:
                    continue
                if waiting_only and not self.queue.is_processing(dep):
                    body = self.store.get(*dep)
                    if body is not None and _ready(body) == "True":
                        continue  # (one mid-pass may be about to report a failure)
                self.queue.add(dep, priority_of(dep))

    def _on_cache_event(self, event: str, obj: Obj) -> None:
        if event == "SYNC":
            return  # initial listing: the CR watch enqueues everything anyway
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        ns = meta.get("namespace", "")
        owner_kind = self._by_lower.get(labels.get(LABEL_OWNER_KIND, ""))
        owner_name = labels.get(LABEL_OWNER_NAME)
        owner = (owner_kind, ns, owner_name) if owner_kind and owner_name else None
        # The echo of our own apply (the reconcile that wrote it saw it already), or an
        # event of an object being written (looked at again once the write's answer is in).
        own = event != "DELETED" and (
            self.ctx.applier.is_own_write(obj) or self.ctx.applier.hold(obj)
        )
        if obj.get("kind") == "Secret":
            # Others reading a Secret hear of it even when we wrote it (a platform's copy
            # of Connect credentials), the reconcile that wrote it does not need to.
            for dep in self._dependents.get((ns, "Secret", meta.get("name", "")), ()):
                if not own or dep != owner:
                    self.queue.add(dep)
        if own or owner is None or self.store.get(*owner) is None:
            return
        # A child's status echo waits behind new work, where the updates of a rollout in
        # progress coalesce. When the owner's last workload turns Ready, the owner can turn
        # Ready: that echo goes in at the owner's level (at 1,000 CRs the platforms were
        # Ready ~15 s after their workloads, behind 600 first passes).
        if obj.get("kind") in _WORKLOADS and all(
            workload_ready(o)[0]
            for o in self.cache.owned_by(ns, owner[0], owner[2])
            if o.get("kind") in _WORKLOADS
        ):
            self.queue.add(owner, priority_of(owner))
        else:
            self.queue.add(owner)

    def resync_all(self) -> None:
        for body in self.store.items():
            self.queue.add(key_of(body))

    # --- processing --------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.process(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let a bug kill a worker
                log.exception("unexpected error reconciling %s/%s/%s", *key)
                self._backoff(key)
            finally:
                self.queue.done(key)

    def _deleted_meanwhile(self, key: Key, err: ApiError) -> bool:
        """Whether a 404 met during a pass means the resource itself is gone.

        Only a 404 about the resource (or one after its DELETED event) does: a 404 about
        anything else — a RoleBinding whose Role the server could not find for a client
        without the `bind` verb, a referenced object removed meanwhile — is an error to log
        and retry, not a reason to drop the resource silently.
        """
        if self.store.get(*key) is None:
            return True
        details = err.body.get("details") or {}
        return bool(details.get("name") == key[2] and details.get("kind") == f"{key[0].lower()}s")

    def _backoff(self, key: Key) -> float:
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        delay = min(self.settings.max_backoff, 2.0 ** min(n, 12)) * (1 + random.random() * 0.2)
        self.queue.schedule(key, delay)
        return delay

    def _resync(self, key: Key, rec: Reconciler, after: float | None = None) -> None:
        base = after if after is not None else rec.resync_seconds
        jitter = 1 + (random.random() * 2 - 1) * self.settings.resync_jitter
        self.queue.schedule(key, max(0.5, base * jitter))

    async def process(self, key: Key) -> None:
        body = self.store.get(*key)
        rec = self.reconcilers.get(key[0])
        if body is None or rec is None:
            return
        meta = body["metadata"]
        started = time.perf_counter()
        result = "ok"
        reads: set[tuple[str, str, str]] = set()
        token = _reads.set(reads)
        try:
            if meta.get("deletionTimestamp"):
                result = await self._delete(key, body, rec)
                return
            if self._namespace_terminating(key[1]):
                # The namespace controller is deleting the children one by one; re-creating
                # each would only be refused. The CR itself goes with the namespace.
                result = "skipped"
                self.queue.schedule(key, TERMINATING_RECHECK_SECONDS)
                return
            if _paused(body):
                result = "paused"
                await self._write_paused(key, body)
                return
            if rec.needs_finalizer(body) and FINALIZER not in (meta.get("finalizers") or []):
                body = await self._add_finalizer(key, body)
            outcome = await self._run(rec, body)
            if outcome.stalled:
                result = "stalled"
            elif not outcome.ready:
                result = "not_ready"
            await self._finish(key, body, rec, outcome)
            await self._after_reconcile(key)
        except ApiError as err:
            result = "error"
            if err.not_found and self._deleted_meanwhile(key, err):
                return  # the DELETED event cleans up
            if err.namespace_terminating:
                result = "skipped"
                if key[1] not in self._terminating:
                    log.info("namespace %s is being deleted: not reconciling in it", key[1])
                self._terminating[key[1]] = time.time()
                self.queue.schedule(key, TERMINATING_RECHECK_SECONDS)
                return
            delay = self._backoff(key)
            log.warning(
                "%s %s/%s: API error %s; retry in %.0fs", key[0], key[1], key[2], err, delay
            )
        except Exception:
            result = "error"  # counted, then logged and backed off by the worker
            raise
        finally:
            _reads.reset(token)
            if self.store.get(*key) is not None:
                self._set_refs(key, reads)
            if self.metrics is not None:
                self.metrics.observe_reconcile(
                    key[0], result, time.perf_counter() - started, key[1], key[2]
                )

    async def _after_reconcile(self, key: Key) -> None:
        """Generic follow-up for every kind: the alerts service writes the resource's own
        PrometheusRule (apply group "alerts"). Never fails the reconcile."""
        alerts = self.ctx.services.get("alerts")
        body = self.store.get(*key)  # with the status just written
        if alerts is None or body is None:
            return
        try:
            await alerts.reconcile_rules(self.ctx, body)
        except Exception:
            log.exception("%s %s/%s: alert rules not updated", *key)

    async def _run(self, rec: Reconciler, body: Obj) -> Outcome:
        """Call the reconciler, turning expected failures into outcomes."""
        try:
            return await rec.reconcile(body, self.ctx)
        except ValidationError as err:
            return Outcome(
                status={},
                ready=False,
                reason=Reason.INVALID_SPEC,
                message=validation_message(err),
                stalled=True,
            )
        except InvalidSpec as err:
            return Outcome(
                status={}, ready=False, reason=err.reason, message=str(err), stalled=True
            )
        except Retry as err:
            return Outcome(
                status={}, ready=False, reason=err.reason, message=str(err), requeue_after=err.delay
            )
        except ApiError as err:
            if err.namespace_terminating:
                raise  # process() stops reconciling in that namespace
            if err.invalid or err.status in (400, 403):
                # The API server refused what we rendered (or RBAC forbids it): retrying at
                # full speed won't help; report it and retry slowly.
                return Outcome(
                    status={},
                    ready=False,
                    reason=Reason.APPLY_FAILED,
                    message=scrub(err.message),
                    requeue_after=max(60.0, rec.resync_seconds),
                )
            raise

    async def _finish(self, key: Key, body: Obj, rec: Reconciler, outcome: Outcome) -> None:
        meta = body["metadata"]
        generation = int(meta.get("generation", 1))
        old_status = body.get("status") or {}
        status = (
            dict(old_status)
            if outcome.status == {} and (outcome.stalled or outcome.requeue_after)
            else {}
        )
        status.update(outcome.status)
        status["observedGeneration"] = generation
        status["conditions"] = conditions.merge(
            old_status.get("conditions"),
            conditions.summary(
                ready=outcome.ready,
                reason=outcome.reason,
                message=scrub(outcome.message),
                stalled=outcome.stalled,
                extra=outcome.extra_conditions,
            ),
            generation,
        )
        await self._write_status(key, body, status)
        await self._emit_transitions(body, old_status, status, outcome)
        if outcome.stalled:
            self._failures.pop(key, None)
            self.queue.unschedule(key)  # nothing to do until the spec changes
            return
        if outcome.requeue_after is not None and not outcome.ready:
            n = self._failures.get(key, 0) + 1
            self._failures[key] = n
            delay = min(self.settings.max_backoff, outcome.requeue_after * (1.5 ** (n - 1)))
            self._resync(key, rec, delay)
            return
        self._failures.pop(key, None)
        self._resync(key, rec, outcome.requeue_after)

    async def _write_status(self, key: Key, body: Obj, status: Obj) -> None:
        old = body.get("status") or {}
        # A None in a merge patch deletes the key, so the stored status never holds one:
        # compare without them, or every pass would send the same no-op patch again.
        status = _without_none(status)
        if old == status:
            return
        patch = {k: v for k, v in status.items()}
        for gone in set(old) - set(status):
            patch[gone] = None
        meta = body["metadata"]
        updated = await self.kube.patch(
            API_VERSION,
            key[0],
            meta.get("namespace"),
            meta["name"],
            {"status": patch},
            subresource="status",
        )
        self._keep_ahead(key, updated)

    def _keep_ahead(self, key: Key, updated: Obj) -> None:
        """Put the answer of our own write in the store, ahead of the watch, so the next
        reconcile sees it. Its watch event will then look unchanged (and older ones are
        refused), so whatever it shows that is new is acted on here: a spec edit or a
        deletion made while the write was in flight, what dependents read."""
        prev = self.store.get(*key)
        self.store.put(key, updated)
        if prev is None or self.store.get(*key) is not updated:
            return  # gone, or the watch already brought something newer
        if _changed_by_others(prev, updated):
            self.queue.add(key, priority_of(key))
        self._changed(key, prev, updated)

    async def _emit_transitions(self, body: Obj, old: Obj, new: Obj, outcome: Outcome) -> None:
        before = conditions.get(old.get("conditions"), COND_READY)
        after = conditions.get(new.get("conditions"), COND_READY)
        if after is not None and (
            before is None
            or before.get("status") != after.get("status")
            or before.get("reason") != after.get("reason")
        ):
            if after["status"] == "True":
                await self.ctx.events.emit(body, "Normal", "Ready", f"{body['kind']} is ready")
            elif after["reason"] not in TRANSITIONAL or (
                before is not None and before.get("status") == "True"
            ):
                # Waiting (for pods, for a referenced resource) is what every new resource
                # does first: an Event only when it is a failure or a Ready resource
                # degrades. At 1,000 new CRs those Warnings were a third of all writes.
                await self.ctx.events.emit(
                    body, "Warning", after["reason"], after.get("message") or after["reason"]
                )
        for ev_type, reason, message in outcome.events:
            await self.ctx.events.emit(body, ev_type, reason, message)

    async def _write_paused(self, key: Key, body: Obj) -> None:
        status = copy.deepcopy(body.get("status") or {})
        generation = int(body["metadata"].get("generation", 1))
        existing = status.get("conditions") or []
        ready = conditions.get(existing, COND_READY)
        keep = [c["type"] for c in existing if c["type"] != COND_RECONCILING]
        conds = [
            conditions.Cond(COND_RECONCILING, False, Reason.PAUSED, "reconciliation is paused")
        ]
        if ready is None:
            conds.append(
                conditions.Cond(COND_READY, None, Reason.PAUSED, "reconciliation is paused")
            )
        status["conditions"] = conditions.merge(existing, conds, generation, keep=keep)
        await self._write_status(key, body, status)

    async def _add_finalizer(self, key: Key, body: Obj) -> Obj:
        meta = body["metadata"]
        finalizers = [*(meta.get("finalizers") or []), FINALIZER]
        updated = await self.kube.patch(
            API_VERSION,
            key[0],
            meta.get("namespace"),
            meta["name"],
            {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
        )
        self._keep_ahead(key, updated)
        return updated

    async def _delete(self, key: Key, body: Obj, rec: Reconciler) -> str:
        meta = body["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return "deleting"
        try:
            outcome = await rec.finalize(body, self.ctx)
        except (Retry, ApiError) as err:
            delay = err.delay if isinstance(err, Retry) else self._backoff(key)
            reason = err.reason if isinstance(err, Retry) else Reason.DELETING
            outcome = Outcome(
                status={}, ready=False, reason=reason, message=str(err), requeue_after=delay
            )
        if outcome.finalized:
            finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            try:
                await self.kube.patch(
                    API_VERSION,
                    key[0],
                    meta.get("namespace"),
                    meta["name"],
                    {
                        "metadata": {
                            "finalizers": finalizers,
                            "resourceVersion": meta["resourceVersion"],
                        }
                    },
                )
            except ApiError as err:
                if not err.conflict:
                    raise  # a 404 means it is gone; others back off in process()
                # Our copy is older than the object (a status write raced the deletion).
                # Nothing else would wake this key: the object will not change again.
                self._backoff(key)
                return "deleting"
            for ev_type, reason, message in outcome.events:
                if ev_type == "Warning":
                    # In a namespace being deleted the Event is refused; keep it in the log.
                    log.warning("%s %s/%s: %s: %s", *key, reason, scrub(message))
                await self.ctx.events.emit(body, ev_type, reason, message)
            return "finalized"
        await self._finish(key, body, rec, outcome)
        return "deleting"


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _paused(body: Obj) -> bool:
    spec = body.get("spec") or {}
    annotations = body.get("metadata", {}).get("annotations") or {}
    return bool(spec.get("paused")) or annotations.get(ANNOTATION_PAUSED) == "true"
