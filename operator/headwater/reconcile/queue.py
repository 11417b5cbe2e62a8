"""A de-duplicating work queue with one shared timer for delayed work.

Semantics follow client-go's workqueue: a key is queued at most once; a key added while it
is being processed is processed again afterwards (never concurrently); `schedule(key, t)`
sets the key's single pending timer (the last call wins), which is how periodic resyncs and
error back-off share one heap instead of one task per object.

Two levels: `add(key, urgent=True)` is for what a user waits on -- a resource created or
changed, or a resource it references changing -- and is served before the ordinary work
(children's status echoes, timers). When 1,000 resources arrive together, their children's
status updates would otherwise queue ahead of the resources not yet looked at once. Within a
level the order is FIFO; an ordinary key that becomes urgent moves up.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._urgent: deque[K] = deque()
        self._ready: deque[K] = deque()
        # queued key -> whether urgent; deque entries that disagree are stale and skipped
        self._queued: dict[K, bool] = {}
        self._processing: set[K] = set()
        self._dirty: dict[K, bool] = {}
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def scheduled(self) -> int:
        return len(self._due)

    def add(self, key: K, urgent: bool = False) -> None:
        if key in self._processing:
            self._dirty[key] = self._dirty.get(key, False) or urgent
            return
        queued = self._queued.get(key)
        if queued is not None and (queued or not urgent):
            return
        self._queued[key] = urgent
        (self._urgent if urgent else self._ready).append(key)
        self._wake.set()

    def schedule(self, key: K, delay: float) -> None:
        """Process `key` after `delay` seconds (replaces any earlier schedule of the key)."""
        if delay <= 0:
            self._due.pop(key, None)
            self.add(key)
            return
        due = time.monotonic() + delay
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))
        self._timer_wake.set()

    def unschedule(self, key: K) -> None:
        self._due.pop(key, None)

    def forget(self, key: K) -> None:
        """Drop a key entirely (its object is gone)."""
        self._due.pop(key, None)
        self._dirty.pop(key, None)
        self._queued.pop(key, None)  # its deque entries are skipped as stale

    def _pop(self) -> K | None:
        for entries, urgent in ((self._urgent, True), (self._ready, False)):
            while entries:
                key = entries.popleft()
                if self._queued.get(key) is urgent:
                    del self._queued[key]
                    return key
        return None

    async def get(self) -> K:
        while (key := self._pop()) is None:
            if self._closed:
                raise asyncio.CancelledError
            self._wake.clear()
            await self._wake.wait()
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self.add(key, self._dirty.pop(key))

    async def run_timer(self) -> None:
        """Moves due keys into the ready queue; run as one background task."""
        while not self._closed:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                due, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == due:
                    del self._due[key]
                    self.add(key)
            self._timer_wake.clear()
            timeout = (self._heap[0][0] - now) if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_wake.wait(), timeout)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._timer_wake.set()
