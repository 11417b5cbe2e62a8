"""A de-duplicating work queue with one shared timer for delayed work.

Semantics follow client-go's workqueue: a key is queued at most once; a key added while it
is being processed is processed again afterwards (never concurrently); `schedule(key, t)`
sets the key's single pending timer (the last call wins), which is how periodic resyncs and
error back-off share one heap instead of one task per object.

Priority levels: `add(key, priority)` with 0 served first; without one a key gets the last
(routine) level. The controller puts what a user waits on -- a resource created or changed,
or one whose references changed -- ahead of routine work (children's status echoes,
timers): when 1,000 resources arrive together, their children's status updates would
otherwise queue ahead of the resources not yet looked at once. Within a level the order is
FIFO; a queued key added again with a better priority moves up.
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
    def __init__(self, levels: int = 2) -> None:
        self._levels: list[deque[K]] = [deque() for _ in range(max(1, levels))]
        self.routine = len(self._levels) - 1
        # queued key -> its level; deque entries that disagree are stale and skipped
        self._queued: dict[K, int] = {}
        self._processing: set[K] = set()
        self._dirty: dict[K, int] = {}
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

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    @property
    def scheduled(self) -> int:
        return len(self._due)

    def add(self, key: K, priority: int | None = None) -> None:
        level = self.routine if priority is None else min(max(0, priority), self.routine)
        if key in self._processing:
            self._dirty[key] = min(self._dirty.get(key, level), level)
            return
        queued = self._queued.get(key)
        if queued is not None and queued <= level:
            return
        self._queued[key] = level
        self._levels[level].append(key)
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
        for level, entries in enumerate(self._levels):
            while entries:
                key = entries.popleft()
                if self._queued.get(key) == level:
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
