"""A de-duplicating work queue with one shared timer for delayed work.

Semantics follow client-go's workqueue: a key is queued at most once; a key added while it
is being processed is processed again afterwards (never concurrently); `schedule(key, t)`
sets the key's single pending timer (the last call wins), which is how periodic resyncs and
error back-off share one heap instead of one task per object.
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
        self._ready: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._ready)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def scheduled(self) -> int:
        return len(self._due)

    def add(self, key: K) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.append(key)
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
        self._dirty.discard(key)
        if key in self._queued:
            self._queued.discard(key)
            with contextlib.suppress(ValueError):
                self._ready.remove(key)

    async def get(self) -> K:
        while not self._ready:
            if self._closed:
                raise asyncio.CancelledError
            self._wake.clear()
            await self._wake.wait()
        key = self._ready.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

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
