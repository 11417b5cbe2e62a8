"""Kubernetes Events on condition transitions (never on every reconcile).

Posting is asynchronous, as client-go's event broadcaster does it: `emit` queues the Event
and returns; a few sender tasks post them. A reconcile never waits for an Event (at 1,000
resources that wait was one API round trip per transition, per worker), and when the API
server falls behind the backlog is bounded: Events beyond it are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from .client import ApiError, Kube

log = logging.getLogger(__name__)

# Values that look like credentials never leave the operator, even inside a message.
_SECRETISH = re.compile(r"(?i)(password|passwd|secret|token)(\s*[=:]\s*)([^\s,;]+)")


def scrub(message: str) -> str:
    return _SECRETISH.sub(lambda m: f"{m.group(1)}{m.group(2)}***", message)


class EventRecorder:
    def __init__(
        self,
        kube: Kube,
        component: str = "headwater-operator",
        *,
        senders: int = 4,
        backlog: int = 1000,
    ):
        self.kube = kube
        self.component = component
        self.senders = senders
        self.backlog = backlog
        self.dropped = 0
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def emit(
        self, obj: Mapping[str, Any], event_type: str, reason: str, message: str
    ) -> None:
        """Queue an Event about `obj`; it is posted in the background."""
        body = self._event(obj, event_type, reason, message)
        if self._queue is None:
            self._queue = asyncio.Queue(self.backlog)
            self._tasks = [
                asyncio.create_task(self._send(), name=f"events-{i}") for i in range(self.senders)
            ]
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            self.dropped += 1
            log.debug("event backlog full: dropped %s %s", reason, body["involvedObject"])

    async def flush(self) -> None:
        """Wait until every queued Event has been posted (or refused)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self, timeout: float = 5.0) -> None:
        """Post what is queued (within `timeout`), then stop the senders."""
        if self._queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queue = None

    async def _send(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            body = await queue.get()
            try:
                await self._post(body)
            finally:
                queue.task_done()

    def _event(
        self, obj: Mapping[str, Any], event_type: str, reason: str, message: str
    ) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        ns = meta.get("namespace", "default")
        ts = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'unknown')}.{uuid.uuid4().hex[:12]}",
                "namespace": ns,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": ns,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": scrub(message)[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": ts[:19] + "Z",
            "lastTimestamp": ts[:19] + "Z",
            "eventTime": ts,
            "action": "Reconcile",
            "count": 1,
        }

    async def _post(self, body: dict[str, Any]) -> None:
        try:
            await self.kube.create(body)
        except ApiError as err:  # events are best effort
            log.debug("could not post event: %s", err)
        except Exception as err:
            log.debug("could not post event: %r", err)
