"""Reachability probes of external endpoints (blocking; run them through ctx.blocking)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Hashable
from urllib.parse import urlparse

import requests


def tcp(host_ports: list[str], timeout: float = 3.0) -> str | None:
    """None when at least one `host:port` accepts a TCP connection, else the last error."""
    error = "no endpoints"
    for hp in host_ports:
        host, _, port = hp.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return None
        except OSError as err:
            error = f"{hp}: {err.strerror or err}"
    return error


def http(url: str, path: str = "/", timeout: float = 3.0, verify: bool = True) -> str | None:
    """None when `url + path` answers with any HTTP status below 500, else why not."""
    target = url.rstrip("/") + path
    try:
        resp = requests.get(target, timeout=timeout, verify=verify)
    except requests.RequestException as err:
        parsed = urlparse(url)
        return f"{parsed.netloc}: {type(err).__name__}"
    if resp.status_code >= 500:
        return f"{target}: HTTP {resp.status_code}"
    return None


class ProbeCache:
    """Shared, short-lived probe results: many platforms often name the same external
    endpoint (one Kafka Connect, one S3), and every reconcile of each of them wants to know
    whether it answers. One probe per endpoint per `ttl` answers them all; callers that
    arrive while a probe runs wait for it instead of starting their own.

    A failure is kept for less time than a success, so a recovered endpoint is noticed soon.
    """

    def __init__(
        self,
        ttl: float = 15.0,
        failure_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1024,
    ):
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self._clock = clock
        self._max = max_entries
        self._results: dict[Hashable, tuple[float, str | None]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def get(self, key: Hashable, run: Callable[[], Awaitable[str | None]]) -> str | None:
        hit = self._results.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._results.get(key)
            if hit is not None and hit[0] > self._clock():
                return hit[1]  # someone else probed while we waited
            result = await run()
            ttl = self.ttl if result is None else self.failure_ttl
            if len(self._results) >= self._max:
                self._expire()
            self._results[key] = (self._clock() + ttl, result)
            return result

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, (until, _) in self._results.items() if until <= now]:
            del self._results[key]
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]
