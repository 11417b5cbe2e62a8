"""EventRecorder posts in the background: emit never waits for the API server."""

from __future__ import annotations

import asyncio
from typing import Any

from headwater.kube.client import ApiError
from headwater.kube.events import EventRecorder

OBJ = {
    "apiVersion": "headwater.dev/v1alpha1",
    "kind": "DataPlatform",
    "metadata": {"name": "shop", "namespace": "data", "uid": "u1", "resourceVersion": "7"},
}


class SlowKube:
    """Accepts creates after `delay`; the first `fail` of them are refused."""

    def __init__(self, delay: float = 0.0, fail: int = 0):
        self.delay = delay
        self.fail = fail
        self.created: list[dict[str, Any]] = []
        self.gate = asyncio.Event()

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        await self.gate.wait()
        await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise ApiError(500, "InternalError", "etcd hiccup")
        self.created.append(body)
        return body


def test_emit_returns_before_the_post_and_flush_posts_everything() -> None:
    async def main() -> None:
        kube = SlowKube()
        rec = EventRecorder(kube, senders=2)  # type: ignore[arg-type]
        for i in range(5):
            await rec.emit(OBJ, "Normal", "Ready", f"ready {i} password=hunter2")
        assert kube.created == []  # the API server has not answered yet, emit did not wait
        kube.gate.set()
        await rec.flush()
        assert sorted(e["message"] for e in kube.created) == [
            f"ready {i} password=***" for i in range(5)
        ]
        ev = kube.created[0]
        assert ev["involvedObject"]["uid"] == "u1" and ev["metadata"]["namespace"] == "data"
        await rec.close()

    asyncio.run(main())


def test_a_full_backlog_drops_and_counts_and_a_refused_post_is_not_fatal() -> None:
    async def main() -> None:
        kube = SlowKube(fail=1)
        rec = EventRecorder(kube, senders=1, backlog=3)  # type: ignore[arg-type]
        for i in range(10):
            await rec.emit(OBJ, "Warning", "Failed", f"e{i}")
        # one is being posted by the sender, three wait in the backlog, the rest are dropped
        await asyncio.sleep(0)
        assert rec.dropped >= 5
        kube.gate.set()
        await rec.flush()
        assert len(kube.created) == 10 - rec.dropped - 1  # the first post was refused
        await rec.emit(OBJ, "Normal", "Ready", "after")  # senders still alive
        await rec.flush()
        assert kube.created[-1]["message"] == "after"
        await rec.close()

    asyncio.run(main())


def test_close_stops_the_senders() -> None:
    async def main() -> None:
        kube = SlowKube()
        kube.gate.set()
        rec = EventRecorder(kube)  # type: ignore[arg-type]
        await rec.emit(OBJ, "Normal", "Ready", "x")
        tasks = list(rec._tasks)
        await rec.close()
        assert len(kube.created) == 1
        assert all(t.done() for t in tasks)

    asyncio.run(main())
