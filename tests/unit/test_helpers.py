"""Status helpers, the work queue and the apply layer's pure parts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from headwater.kube import conditions
from headwater.kube.apply import is_subset, normalize, workload_ready
from headwater.kube.events import scrub
from headwater.reconcile.queue import WorkQueue
from headwater.render.common import kafka_cluster_id, stable_hash


def test_condition_transition_time_kept_when_status_unchanged() -> None:
    first = conditions.merge(
        [], conditions.summary(ready=False, reason="Progressing"), 1, timestamp="t1"
    )
    second = conditions.merge(
        first, conditions.summary(ready=False, reason="Other", message="m"), 2, timestamp="t2"
    )
    ready = conditions.get(second, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == "t1"
    assert ready["reason"] == "Other" and ready["observedGeneration"] == 2
    third = conditions.merge(second, conditions.summary(ready=True, reason="x"), 3, timestamp="t3")
    ready = conditions.get(third, "Ready")
    assert ready is not None and ready["status"] == "True" and ready["lastTransitionTime"] == "t3"
    assert ready["reason"] == "Ready"


def test_summary_is_kstatus_shaped() -> None:
    stalled = {
        c.type: c for c in conditions.summary(ready=False, reason="InvalidSpec", stalled=True)
    }
    assert stalled["Stalled"].status is True and stalled["Reconciling"].status is False
    progressing = {c.type: c for c in conditions.summary(ready=False, reason="Progressing")}
    assert progressing["Reconciling"].status is True and progressing["Stalled"].status is False
    ready = {c.type: c for c in conditions.summary(ready=True, reason="Ready")}
    assert ready["Ready"].status is True and ready["Reconciling"].status is False


def test_merge_drops_conditions_that_no_longer_apply() -> None:
    old = [{"type": "Stale", "status": "True", "reason": "X", "lastTransitionTime": "t0"}]
    new = conditions.merge(old, [conditions.Cond("Ready", True, "Ready")], 1)
    assert [c["type"] for c in new] == ["Ready"]


def test_is_true_requires_current_generation() -> None:
    body: dict[str, Any] = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert not conditions.is_true(body)
    body["status"]["observedGeneration"] = 2
    assert conditions.is_true(body)


def test_is_subset() -> None:
    live = {"spec": {"replicas": 3, "template": {"x": [1, {"a": 1, "b": 2}]}, "extra": True}}
    assert is_subset({"spec": {"replicas": 3}}, live)
    assert is_subset({"spec": {"template": {"x": [1, {"a": 1}]}}}, live)
    assert not is_subset({"spec": {"replicas": 2}}, live)
    assert not is_subset({"spec": {"template": {"x": [1]}}}, live)
    assert is_subset({"a": {}}, {})
    assert not is_subset({"flag": True}, {"flag": 1})


def test_normalize_secret_string_data() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"k": "v"},
    }
    out = normalize(obj)
    assert out["data"] == {"k": "dg=="} and "stringData" not in out
    assert "stringData" in obj, "input must not be mutated"


def _sts(
    gen: int, observed: int, ready: int, updated: int, cur: str = "r1", upd: str = "r1"
) -> dict[str, Any]:
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "k", "generation": gen},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "currentRevision": cur,
            "updateRevision": upd,
        },
    }


def test_workload_ready() -> None:
    assert workload_ready(None)[0] is False
    assert workload_ready(_sts(2, 1, 3, 3))[0] is False
    assert workload_ready(_sts(2, 2, 3, 3, "r1", "r2"))[0] is False
    assert workload_ready(_sts(2, 2, 2, 3))[0] is False
    ok, ready, want, msg = workload_ready(_sts(2, 2, 3, 3))
    assert ok and ready == 3 and want == 3 and msg == ""


def test_scrub_hides_secret_values() -> None:
    text = scrub("login failed: password=hunter2, token: abc user=x")
    assert "hunter2" not in text and "abc" not in text and "user=x" in text


def test_kafka_cluster_id_is_stable_and_valid() -> None:
    cid = kafka_cluster_id("7c1a0f1e-1111-2222-3333-444455556666")
    assert cid == kafka_cluster_id("7c1a0f1e-1111-2222-3333-444455556666")
    assert len(cid) == 22 and "=" not in cid


def test_stable_hash_ignores_key_order() -> None:
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


async def _drain(q: WorkQueue[str], n: int, timeout: float = 2.0) -> list[str]:
    got = []
    for _ in range(n):
        key = await asyncio.wait_for(q.get(), timeout)
        got.append(key)
        q.done(key)
    return got


def test_queue_dedups_and_requeues_dirty_keys() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        assert len(q) == 2
        key = await q.get()
        q.add(key)  # re-added while processing: processed again afterwards, not concurrently
        assert len(q) == 1
        q.done(key)
        assert sorted(await _drain(q, 2)) == ["a", "b"]

    asyncio.run(scenario())


def test_queue_serves_by_priority_and_promotes() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue(levels=3)
        for key in ("echo1", "echo2", "echo3"):
            q.add(key)  # routine: the last level
        q.add("job", priority=1)
        q.add("platform", priority=0)
        q.add("echo3", priority=1)  # a routine key that becomes urgent moves up, once
        q.add("echo1", priority=2)  # already queued there: stays where it is
        q.add("platform", priority=1)  # a worse priority never demotes
        assert len(q) == 5
        assert await _drain(q, 5) == ["platform", "job", "echo3", "echo1", "echo2"]
        assert len(q) == 0
        # the better priority survives a re-add while processing
        q.add("x")
        q.add("y", priority=1)
        key = await q.get()
        assert key == "y"
        q.add("y")
        q.add("y", priority=0)
        q.done("y")
        assert await _drain(q, 2) == ["y", "x"]
        # a forgotten key is not served, even from a stale entry
        q.add("gone")
        q.add("gone", priority=0)
        q.forget("gone")
        q.add("last")
        assert await _drain(q, 1) == ["last"]
        with pytest.raises(TimeoutError):
            await _drain(q, 1, timeout=0.2)

    asyncio.run(scenario())


def test_queue_schedule_last_call_wins() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        timer = asyncio.create_task(q.run_timer())
        q.schedule("a", 5.0)
        q.schedule("a", 0.05)
        assert await _drain(q, 1) == ["a"]
        q.schedule("b", 0.05)
        q.unschedule("b")
        with pytest.raises(TimeoutError):
            await _drain(q, 1, timeout=0.3)
        q.close()
        timer.cancel()

    asyncio.run(scenario())


def test_endpoint_overrides() -> None:
    from headwater.dataplane.endpoints import parse_overrides, resolve_hostport, resolve_url

    o = parse_overrides("a.ns.svc:8083=127.0.0.1:58083, m.ns.svc:9000=127.0.0.1:59000")
    assert resolve_url("http://a.ns.svc:8083/connectors", o) == "http://127.0.0.1:58083/connectors"
    assert resolve_url("http://other:8083", o) == "http://other:8083"
    assert resolve_hostport("m.ns.svc:9000", o) == "127.0.0.1:59000"


class _StatusKube:
    """Answers patches like the API server (a new resourceVersion each time; a None in a
    merge patch deletes the key) and records what is created (Events)."""

    def __init__(self) -> None:
        self.patches = 0
        self.created: list[Any] = []

    async def patch(
        self, api_version: str, kind: str, ns: str, name: str, body: Any, **_: Any
    ) -> Any:
        self.patches += 1
        if "status" in body:
            body = {**body, "status": {k: v for k, v in body["status"].items() if v is not None}}
        rv = str(1 + self.patches)
        meta = {"name": name, "namespace": ns, "generation": 1, "resourceVersion": rv}
        return {"kind": kind, "metadata": meta, **body}

    async def create(self, obj: Any) -> Any:
        self.created.append(obj)
        return obj


def test_dependents_are_enqueued_when_our_own_status_write_makes_a_cr_ready() -> None:
    """A reconcile that reads another CR depends on it; when the controller's own status
    write turns that CR Ready, the reader is enqueued at once (not at its next retry)."""
    from headwater.reconcile.base import Controller, Outcome, Settings

    class Platform:
        kind, resync_seconds = "DataPlatform", 300.0

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            return Outcome(status={}, ready=True, reason="Ready")

    class Zone(Platform):
        kind = "LakeZone"

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            ctx.get("DataPlatform", "ns", "p")
            return Outcome(status={}, ready=False, reason="ReferenceNotReady", requeue_after=30)

    def body(kind: str, name: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "metadata": {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1"},
        }

    async def scenario() -> None:
        ctl = Controller(_StatusKube(), [Platform(), Zone()], Settings(workers=1))  # type: ignore[arg-type]
        ctl.observe(body("DataPlatform", "p"))
        ctl.observe(body("LakeZone", "z"))
        await ctl.process(("LakeZone", "ns", "z"))
        ctl.queue.forget(("LakeZone", "ns", "z"))
        ctl.queue.forget(("DataPlatform", "ns", "p"))
        assert len(ctl.queue) == 0
        await ctl.process(("DataPlatform", "ns", "p"))
        assert await asyncio.wait_for(ctl.queue.get(), 1) == ("LakeZone", "ns", "z")
        ctl.executor.shutdown()

    asyncio.run(scenario())


def test_a_platform_becoming_ready_wakes_only_dependents_still_waiting() -> None:
    """Readiness alone changing: Ready dependents have nothing to redo, waiting ones retry
    now; a Ready platform degrading wakes every dependent. A stale watch event (older
    than the response of our own status write) changes nothing."""
    from headwater.reconcile.base import Controller, Outcome, Settings

    platform_ready = [False, True, False]

    class Platform:
        kind, resync_seconds = "DataPlatform", 300.0

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            ok = platform_ready.pop(0)
            return Outcome(status={}, ready=ok, reason="Ready" if ok else "ComponentsNotReady")

    class Zone(Platform):
        kind = "LakeZone"

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            ctx.get("DataPlatform", "ns", "p")
            if body["metadata"]["name"] == "ready":
                return Outcome(status={}, ready=True, reason="Ready")
            return Outcome(status={}, ready=False, reason="ReferenceNotReady", requeue_after=30)

    def body(kind: str, name: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "metadata": {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1"},
        }

    def drain(ctl: Any) -> set[Any]:
        keys = set()
        while (key := ctl.queue._pop()) is not None:
            keys.add(key)
        return keys

    async def scenario() -> None:
        ctl = Controller(_StatusKube(), [Platform(), Zone()], Settings(workers=1))  # type: ignore[arg-type]
        ctl.observe(body("DataPlatform", "p"))
        ctl.observe(body("LakeZone", "ready"))
        ctl.observe(body("LakeZone", "waiting"))
        drain(ctl)
        await ctl.process(("LakeZone", "ns", "ready"))
        await ctl.process(("LakeZone", "ns", "waiting"))
        await ctl.process(("DataPlatform", "ns", "p"))  # first status: endpoints etc. visible
        assert drain(ctl) == {("LakeZone", "ns", "ready"), ("LakeZone", "ns", "waiting")}
        await ctl.process(("DataPlatform", "ns", "p"))  # becomes Ready
        assert drain(ctl) == {("LakeZone", "ns", "waiting")}
        # the watch now delivers the platform's creation event late: ignored
        ctl.observe(body("DataPlatform", "p"))
        assert drain(ctl) == set()
        store = ctl.store.get("DataPlatform", "ns", "p")
        assert store is not None and store["status"]["conditions"]
        await ctl.process(("DataPlatform", "ns", "p"))  # degrades
        assert drain(ctl) == {("LakeZone", "ns", "ready"), ("LakeZone", "ns", "waiting")}
        ctl.executor.shutdown()

    asyncio.run(scenario())


def test_new_resources_are_served_platforms_first_and_before_echoes() -> None:
    """1,000 CRs created at once: platforms (whose workloads take longest to start) are
    looked at first, then sources, then the rest; a child's status echo waits for them."""
    from headwater.reconcile.base import Controller, Settings

    def body(kind: str, name: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "metadata": {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1"},
        }

    async def scenario() -> list[tuple[str, str, str]]:
        ctl = Controller(_StatusKube(), [], Settings(workers=1))  # type: ignore[arg-type]
        ctl.queue.add(("DataPlatform", "ns", "old"))  # e.g. its StatefulSet's status changed
        for kind, name in (
            ("LakeZone", "z"),
            ("CdcConnector", "c"),
            ("DataSource", "d"),
            ("DataPlatform", "p"),
            ("StreamJob", "j"),
        ):
            ctl.observe(body(kind, name))
        order = [await asyncio.wait_for(ctl.queue.get(), 1) for _ in range(6)]
        ctl.executor.shutdown()
        return order

    assert [k[2] for k in asyncio.run(scenario())] == ["p", "d", "z", "c", "j", "old"]


def test_a_platforms_last_workload_turning_ready_is_served_at_its_level() -> None:
    """Status echoes of children wait behind new work, but the echo of a platform's last
    workload turning Ready is what the platform waits for: it goes in at its level."""
    from headwater.constants import LABEL_OWNER_KIND, LABEL_OWNER_NAME
    from headwater.kube.cache import Informer
    from headwater.reconcile.base import Controller, Settings

    class Rec:
        resync_seconds = 300.0

        def __init__(self, kind: str) -> None:
            self.kind = kind

    def body(kind: str, name: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "metadata": {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1"},
        }

    def workload(kind: str, owner: str, ready: int) -> dict[str, Any]:
        labels = {LABEL_OWNER_KIND: "dataplatform", LABEL_OWNER_NAME: owner}
        meta = {"name": f"{owner}-{kind.lower()}", "namespace": "ns", "labels": labels}
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {**meta, "generation": 1, "resourceVersion": "7"},
            "spec": {"replicas": 1},
            "status": {
                "observedGeneration": 1,
                "readyReplicas": ready,
                "updatedReplicas": 1,
                "currentRevision": "r",
                "updateRevision": "r",
            },
        }

    async def scenario() -> list[str]:
        recs = [Rec("DataPlatform"), Rec("LakeZone")]
        ctl = Controller(_StatusKube(), recs, Settings(workers=1))  # type: ignore[arg-type]
        informers = {}
        for kind in ("StatefulSet", "Deployment"):
            inf = Informer(ctl.kube, "apps/v1", kind, None, listener=ctl.cache._listener)
            informers[kind] = inf
            ctl.cache.informers[("apps/v1", kind)] = [inf]
        for name in ("starting", "half", "started"):
            ctl.observe(body("DataPlatform", name))
        while ctl.queue._pop() is not None:
            pass
        ctl.observe(body("LakeZone", "z"))
        for kind, owner, ready in (
            ("StatefulSet", "starting", 0),
            ("Deployment", "half", 0),
            ("StatefulSet", "half", 1),  # Ready, but the platform's Deployment is not
            ("StatefulSet", "started", 1),
        ):
            informers[kind]._handle({"type": "MODIFIED", "object": workload(kind, owner, ready)})
        order = [(await asyncio.wait_for(ctl.queue.get(), 1))[2] for _ in range(4)]
        ctl.executor.shutdown()
        return order

    order = asyncio.run(scenario())
    assert order[:2] == ["started", "z"] and set(order[2:]) == {"starting", "half"}


def test_status_with_none_values_is_written_once() -> None:
    """None deletes a key in a merge patch; a status carrying one must not be re-sent on
    every pass (the API server turns those into no-ops, but they are still requests)."""
    from headwater.reconcile.base import Controller, Outcome, Settings

    class Rec:
        kind, resync_seconds = "LakeZone", 300.0

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            return Outcome(status={"bucket": "b", "objectLock": None}, ready=True, reason="Ready")

    async def scenario() -> int:
        kube = _StatusKube()
        ctl = Controller(kube, [Rec()], Settings(workers=1))  # type: ignore[arg-type]
        ctl.observe(
            {
                "kind": "LakeZone",
                "metadata": {
                    "name": "z",
                    "namespace": "ns",
                    "generation": 1,
                    "resourceVersion": "1",
                },
            }
        )
        for _ in range(3):
            await ctl.process(("LakeZone", "ns", "z"))
        ctl.executor.shutdown()
        return kube.patches

    assert asyncio.run(scenario()) == 1


def test_a_terminating_namespace_is_left_alone_until_recreated() -> None:
    """A create refused with "being terminated" stops reconciles in that namespace (no
    status write, no backoff storm); a CR created later lives in a new namespace of the
    same name and is reconciled again."""
    from headwater.kube.client import ApiError
    from headwater.reconcile.base import Controller, Outcome, Settings

    refused = ApiError(
        403,
        "Forbidden",
        'statefulsets "p-kafka" is forbidden: unable to create new content in namespace '
        "ns because it is being terminated",
        {"details": {"causes": [{"reason": "NamespaceTerminating"}]}},
    )

    class Rec:
        kind, resync_seconds = "DataPlatform", 300.0
        calls = 0
        fail = True

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            self.calls += 1
            if self.fail:
                raise refused
            return Outcome(status={}, ready=True, reason="Ready")

    def body(name: str, created: str) -> dict[str, Any]:
        meta = {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1"}
        return {"kind": "DataPlatform", "metadata": {**meta, "creationTimestamp": created}}

    async def scenario() -> None:
        rec, kube = Rec(), _StatusKube()
        ctl = Controller(kube, [rec], Settings(workers=1))  # type: ignore[arg-type]
        ctl.observe(body("p", "2020-01-01T00:00:00Z"))
        await ctl.process(("DataPlatform", "ns", "p"))
        await ctl.process(("DataPlatform", "ns", "p"))
        assert rec.calls == 1, "reconciled again in a terminating namespace"
        ctl.observe(body("q", "2020-01-01T00:00:00Z"))  # older than the mark: same namespace
        await ctl.process(("DataPlatform", "ns", "q"))
        assert rec.calls == 1
        assert kube.patches == 0, "status written into a terminating namespace"
        rec.fail = False
        ctl.observe(body("r", "2999-01-01T00:00:00Z"))  # created after the refusal
        ctl.store.pop(("DataPlatform", "ns", "p"))
        await ctl.process(("DataPlatform", "ns", "r"))
        assert rec.calls == 2, "a recreated namespace was not reconciled"
        assert kube.patches == 1
        ctl.executor.shutdown()

    asyncio.run(scenario())


def test_events_for_failures_and_ready_not_for_first_waiting() -> None:
    """Every new resource waits first (ReferenceNotReady, Progressing): no Warning for
    that. Ready gets a Normal Event; a Ready resource degrading, or a failure, a Warning."""
    from headwater.reconcile.base import Controller, Outcome, Settings

    kube = _StatusKube()

    class Rec:
        kind, resync_seconds = "CdcConnector", 300.0
        outcomes = [
            Outcome(status={}, ready=False, reason="ReferenceNotReady", requeue_after=5),
            Outcome(status={}, ready=True, reason="Ready"),
            Outcome(status={}, ready=False, reason="ReferenceNotReady", requeue_after=5),
            Outcome(status={}, ready=False, reason="ConnectorFailed", requeue_after=5),
        ]

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            return self.outcomes.pop(0)

    async def scenario() -> None:
        ctl = Controller(kube, [Rec()], Settings(workers=1))  # type: ignore[arg-type]
        meta = {"name": "c", "namespace": "ns", "generation": 1, "resourceVersion": "1"}
        ctl.observe({"kind": "CdcConnector", "metadata": meta})
        for _ in range(4):
            await ctl.process(("CdcConnector", "ns", "c"))
        ctl.executor.shutdown()

    asyncio.run(scenario())
    assert [(e["type"], e["reason"]) for e in kube.created] == [
        ("Normal", "Ready"),
        ("Warning", "ReferenceNotReady"),
        ("Warning", "ConnectorFailed"),
    ]


def test_a_lost_race_on_finalizer_removal_is_retried() -> None:
    """The finalizer is removed with a resourceVersion precondition; when a status write
    raced the deletion the API server answers 409. That must schedule another try (the
    object will not change again, so no watch event would), not count as finalized."""
    from headwater.constants import FINALIZER
    from headwater.kube.client import ApiError
    from headwater.reconcile.base import Controller, Outcome, Settings

    class Kube(_StatusKube):
        async def patch(self, *args: Any, **kwargs: Any) -> Any:
            if self.patches == 0:
                self.patches += 1
                raise ApiError(409, "Conflict", "the object has been modified")
            return await super().patch(*args, **kwargs)

    class Rec:
        kind, resync_seconds = "LakeZone", 300.0

        def needs_finalizer(self, body: Any) -> bool:
            return True

        async def finalize(self, body: Any, ctx: Any) -> Outcome:
            return Outcome(status={}, ready=False, reason="Deleting", finalized=True)

    async def scenario() -> None:
        kube = Kube()
        ctl = Controller(kube, [Rec()], Settings(workers=1))  # type: ignore[arg-type]
        meta = {
            "name": "z",
            "namespace": "ns",
            "generation": 1,
            "resourceVersion": "1",
            "deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": [FINALIZER],
        }
        ctl.observe({"kind": "LakeZone", "metadata": meta})
        await ctl.process(("LakeZone", "ns", "z"))
        assert ctl.queue.scheduled == 1, "a refused finalizer removal was not retried"
        await ctl.process(("LakeZone", "ns", "z"))
        assert kube.patches == 2
        ctl.executor.shutdown()

    asyncio.run(scenario())


def test_ensure_finalizer_adds_once_through_the_controller_hook() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from headwater.constants import FINALIZER
    from headwater.reconcile.base import Context, Settings, Store

    added: list[str] = []

    async def hook(body: dict[str, Any]) -> dict[str, Any]:
        added.append(body["metadata"]["name"])
        return {**body, "metadata": {**body["metadata"], "finalizers": [FINALIZER]}}

    def ctx(with_hook: bool) -> Context:
        return Context(
            kube=None,  # type: ignore[arg-type]
            cache=None,  # type: ignore[arg-type]
            applier=None,  # type: ignore[arg-type]
            store=Store(),
            events=None,  # type: ignore[arg-type]
            settings=Settings(),
            executor=ThreadPoolExecutor(1),
            add_finalizer=hook if with_hook else None,
        )

    async def scenario() -> None:
        bare = {"metadata": {"name": "bronze"}}
        updated = await ctx(True).ensure_finalizer(bare)
        assert updated["metadata"]["finalizers"] == [FINALIZER] and added == ["bronze"]
        assert await ctx(True).ensure_finalizer(updated) is updated  # present: no request
        assert added == ["bronze"]
        with pytest.raises(RuntimeError):
            await ctx(False).ensure_finalizer(bare)

    asyncio.run(scenario())


def test_watch_events_of_an_object_being_written_wait_for_the_answer() -> None:
    """Under load the watch delivers our write before its response: that echo must not
    wake the owner, while a change by someone else in the meantime still must."""
    from headwater.kube.apply import Applier
    from headwater.kube.cache import ClusterCache
    from headwater.render.common import Owner

    released: list[str] = []

    class Kube:
        async def apply(self, obj: Any) -> Any:
            echo = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "5"}}
            other = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "6"}}
            assert applier.hold(echo) and applier.hold(other)
            await asyncio.sleep(0)
            return echo

    applier = Applier(Kube(), ClusterCache(Kube()))  # type: ignore[arg-type]
    applier.release = lambda obj: released.append(obj["metadata"]["resourceVersion"])
    owner = Owner("LakeZone", "z", "ns", "uid-1")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    asyncio.run(applier.reconcile(owner, [cm]))
    assert released == ["6"]
    assert not applier.hold({**cm, "metadata": {**cm["metadata"], "resourceVersion": "7"}})


def test_a_spec_edit_seen_first_in_our_status_writes_answer_is_reconciled() -> None:
    """A user edits the spec while our status write is in flight: the write's answer
    carries the new generation and goes into the store, so the edit's own (older) watch
    event changes nothing there. The answer itself must enqueue the resource."""
    from headwater.reconcile.base import Controller, Outcome, Settings

    class Kube(_StatusKube):
        async def patch(self, *args: Any, **kwargs: Any) -> Any:
            out = await super().patch(*args, **kwargs)
            out["metadata"]["generation"] = 2  # the edit landed before our patch
            return out

    class Rec:
        kind, resync_seconds = "DataSource", 300.0

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            return Outcome(status={}, ready=True, reason="Ready")

    async def scenario() -> None:
        ctl = Controller(Kube(), [Rec()], Settings(workers=1))  # type: ignore[arg-type]
        meta = {"name": "d", "namespace": "ns", "generation": 1, "resourceVersion": "1"}
        ctl.observe({"kind": "DataSource", "metadata": meta})
        assert await asyncio.wait_for(ctl.queue.get(), 1) == ("DataSource", "ns", "d")
        await ctl.process(("DataSource", "ns", "d"))
        ctl.queue.done(("DataSource", "ns", "d"))
        edited = {**meta, "generation": 2, "resourceVersion": "1"}  # older than our answer
        ctl.observe({"kind": "DataSource", "metadata": edited})
        assert await asyncio.wait_for(ctl.queue.get(), 1) == ("DataSource", "ns", "d")
        ctl.executor.shutdown()

    asyncio.run(scenario())


def test_readers_of_a_secret_we_wrote_are_woken_but_not_its_writer() -> None:
    from headwater.constants import LABEL_OWNER_KIND, LABEL_OWNER_NAME
    from headwater.reconcile.base import Controller, Settings

    class Rec:
        resync_seconds = 300.0

        def __init__(self, kind: str) -> None:
            self.kind = kind

    async def scenario() -> set[Any]:
        recs = [Rec("DataPlatform"), Rec("CdcConnector")]
        ctl = Controller(_StatusKube(), recs, Settings(workers=1))  # type: ignore[arg-type]
        for kind, name in (("DataPlatform", "p"), ("CdcConnector", "c")):
            meta = {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1"}
            ctl.observe({"kind": kind, "metadata": meta})
            ctl._set_refs((kind, "ns", name), [("ns", "Secret", "p-connect-secrets")])
        while ctl.queue._pop() is not None:
            pass
        labels = {LABEL_OWNER_KIND: "dataplatform", LABEL_OWNER_NAME: "p"}
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "p-connect-secrets",
                "namespace": "ns",
                "labels": labels,
                "resourceVersion": "9",
            },
        }
        ctl.ctx.applier._applied_rv[ctl.ctx.applier._key(secret)] = "9"  # our own write
        ctl._on_cache_event("MODIFIED", secret)
        woken = set()
        while (key := ctl.queue._pop()) is not None:
            woken.add(key)
        ctl.executor.shutdown()
        return woken

    assert asyncio.run(scenario()) == {("CdcConnector", "ns", "c")}


def test_readers_of_every_zone_wake_on_spec_changes_not_status() -> None:
    """A LakeZone checks the other zones of its bucket (their specs): another zone's status
    write must not wake it, a new generation or a deletion must. Readers that asked for
    status (alert rules) hear of both."""
    from headwater.reconcile.base import ANY, ANY_WITH_STATUS, Controller, Settings

    def body(name: str, generation: int, rv: str, ready: bool) -> dict[str, Any]:
        cond = {"type": "Ready", "status": "True" if ready else "False"}
        return {
            "kind": "LakeZone",
            "metadata": {
                "name": name,
                "namespace": "ns",
                "generation": generation,
                "resourceVersion": rv,
            },
            "status": {"observedGeneration": generation, "conditions": [cond]},
        }

    def woken(ctl: Any) -> set[str]:
        out = set()
        while (key := ctl.queue._pop()) is not None:
            out.add(key[2])
        return out

    ctl = Controller(_StatusKube(), [], Settings(workers=1))  # type: ignore[arg-type]
    for name in ("a", "spec-reader", "status-reader"):
        ctl.observe(body(name, 1, "1", False))
    ctl._set_refs(("LakeZone", "ns", "spec-reader"), [("ns", "LakeZone", ANY)])
    ctl._set_refs(("LakeZone", "ns", "status-reader"), [("ns", "LakeZone", ANY_WITH_STATUS)])
    woken(ctl)
    ctl.observe(body("a", 1, "2", True))  # status only
    assert woken(ctl) == {"status-reader"}
    ctl.observe(body("a", 2, "3", True))  # spec edit
    assert woken(ctl) == {"a", "spec-reader", "status-reader"}
    ctl.executor.shutdown()


def test_a_spec_the_models_refuse_stalls_with_the_field_and_no_retry() -> None:
    """What the schema lets through but the models refuse (pydantic ValidationError from
    inside a reconcile) ends as Stalled/InvalidSpec naming the field, Ready=False, a Warning
    Event, and nothing scheduled: no retry loop until the spec changes."""
    from headwater.api import KINDS_BY_NAME
    from headwater.metrics import Metrics
    from headwater.reconcile.base import Controller, Outcome, Settings

    class Kube(_StatusKube):
        """Answers with the object as the user last wrote it (generation, spec) and a
        resourceVersion newer than anything observed."""

        generation, spec = 1, {}

        async def patch(self, *args: Any, **kwargs: Any) -> Any:
            out = await super().patch(*args, **kwargs)
            out["metadata"]["generation"] = self.generation
            out["metadata"]["resourceVersion"] = str(1000 * (1 + self.patches))
            return {**out, "spec": self.spec}

    class Rec:
        kind, resync_seconds = "DataPlatform", 300.0
        calls = 0

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Outcome:
            self.calls += 1
            KINDS_BY_NAME["DataPlatform"].parse_spec(body.get("spec"))  # the real models
            return Outcome(status={}, ready=True, reason="Ready")

    key = ("DataPlatform", "ns", "p")
    kube, rec, metrics = Kube(), Rec(), Metrics()

    def body(generation: int, rv: str, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": "p", "namespace": "ns", "generation": generation, "resourceVersion": rv}
        return {"kind": "DataPlatform", "metadata": meta, "spec": spec}

    async def scenario() -> dict[str, Any]:
        ctl = Controller(kube, [rec], Settings(workers=1), metrics=metrics)  # type: ignore[arg-type]
        ctl.observe(body(1, "1", {}))
        await ctl.process(key)
        assert key in ctl.queue._due, "a Ready resource is resynced"
        kube.generation, kube.spec = 2, {"kafka": {"managed": {"replicas": 0}}}
        ctl.observe(body(2, "2500", kube.spec))  # newer than our first write
        await ctl.process(key)
        assert rec.calls == 2
        assert ctl.queue.scheduled == 0 and key not in ctl.queue._due, "retry scheduled"
        assert key not in ctl._failures
        stored = ctl.store.get(*key)
        ctl.executor.shutdown()
        assert stored is not None
        return stored

    stored = asyncio.run(scenario())
    status = stored["status"]
    assert status["observedGeneration"] == 2
    conds = {c["type"]: c for c in status["conditions"]}
    field = "spec.kafka.managed.replicas: Input should be greater than or equal to 1"
    assert conds["Stalled"]["status"] == "True"
    assert conds["Stalled"]["reason"] == "InvalidSpec"
    assert field in conds["Stalled"]["message"]
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "InvalidSpec" and field in conds["Ready"]["message"]
    assert conds["Reconciling"]["status"] == "False"
    assert [(e["type"], e["reason"]) for e in kube.created] == [
        ("Normal", "Ready"),
        ("Warning", "InvalidSpec"),
    ]
    assert field in kube.created[1]["message"]
    stalled = {"kind": "DataPlatform", "result": "stalled"}
    assert metrics.registry.get_sample_value("headwater_reconcile_total", stalled) == 1


def test_rbac_bindings_are_applied_after_what_they_bind() -> None:
    """Without the `bind` verb a RoleBinding is only accepted once its Role exists: the
    applier sends bindings in a second round, after every other child has been answered."""
    from headwater.kube.apply import Applier
    from headwater.kube.cache import ClusterCache
    from headwater.render.common import Owner

    answered: list[str] = []

    class Kube:
        async def apply(self, obj: Any) -> Any:
            if obj["kind"] == "RoleBinding":
                assert {"Role", "ServiceAccount"} <= set(answered), answered
            await asyncio.sleep(0.01 if obj["kind"] == "Role" else 0)  # the Role is slowest
            answered.append(obj["kind"])
            return {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}

    def obj(api: str, kind: str) -> dict[str, Any]:
        return {"apiVersion": api, "kind": kind, "metadata": {"name": "p-spark", "namespace": "ns"}}

    rbac = "rbac.authorization.k8s.io/v1"
    applier = Applier(Kube(), ClusterCache(Kube()))  # type: ignore[arg-type]
    owner = Owner("DataPlatform", "p", "ns", "uid-1")
    desired = [obj(rbac, "RoleBinding"), obj(rbac, "Role"), obj("v1", "ServiceAccount")]
    result = asyncio.run(applier.reconcile(owner, desired))
    assert answered == ["ServiceAccount", "Role", "RoleBinding"]
    assert len(result.created) == 3


def test_a_404_about_a_child_is_an_error_not_a_deleted_resource() -> None:
    """A 404 means "deleted meanwhile" only when it is about the resource itself; a 404
    about a child (a RoleBinding whose Role the server cannot find) is logged, counted
    and retried with back-off instead of being dropped silently."""
    from headwater.kube.client import ApiError
    from headwater.reconcile.base import Controller, Settings

    role_missing = ApiError(
        404,
        "NotFound",
        'roles.rbac.authorization.k8s.io "p-spark" not found',
        {"details": {"name": "p-spark", "group": "rbac.authorization.k8s.io", "kind": "roles"}},
    )
    gone = ApiError(
        404,
        "NotFound",
        'dataplatforms.headwater.dev "p" not found',
        {"details": {"name": "p", "group": "headwater.dev", "kind": "dataplatforms"}},
    )

    class Rec:
        kind, resync_seconds = "DataPlatform", 300.0
        error: ApiError = role_missing

        def needs_finalizer(self, body: Any) -> bool:
            return False

        async def reconcile(self, body: Any, ctx: Any) -> Any:
            raise self.error

    async def scenario() -> None:
        rec = Rec()
        ctl = Controller(_StatusKube(), [rec], Settings(workers=1))  # type: ignore[arg-type]
        key = ("DataPlatform", "ns", "p")
        meta = {"name": "p", "namespace": "ns", "generation": 1, "resourceVersion": "1"}
        ctl.observe({"kind": "DataPlatform", "metadata": meta})
        assert await asyncio.wait_for(ctl.queue.get(), 1) == key
        await ctl.process(key)
        ctl.queue.done(key)
        assert ctl._failures.get(key) == 1, "a 404 about a child must back off and retry"
        rec.error = gone
        await ctl.process(key)
        assert ctl._failures.get(key) == 1, "a 404 about the resource itself is not retried"
        ctl.executor.shutdown()

    asyncio.run(scenario())
