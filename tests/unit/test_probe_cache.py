"""ProbeCache: one probe per external endpoint per TTL, however many platforms ask."""

from __future__ import annotations

import asyncio

from headwater.dataplane.probe import ProbeCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_callers_share_one_probe() -> None:
    calls: list[str] = []

    async def slow() -> str | None:
        calls.append("probe")
        await asyncio.sleep(0.05)
        return None

    async def main() -> list[str | None]:
        cache = ProbeCache()
        return await asyncio.gather(*(cache.get(("http", "connect"), slow) for _ in range(50)))

    results = asyncio.run(main())
    assert results == [None] * 50
    assert calls == ["probe"]


def test_results_expire_and_failures_expire_sooner() -> None:
    clock = Clock()
    answers = iter(["connection refused", None, None, "HTTP 503"])
    calls = 0

    async def probe() -> str | None:
        nonlocal calls
        calls += 1
        return next(answers)

    async def main() -> None:
        cache = ProbeCache(ttl=15, failure_ttl=5, clock=clock)
        key = ("http", "s3")
        assert await cache.get(key, probe) == "connection refused"
        clock.now += 4
        assert await cache.get(key, probe) == "connection refused"  # still cached
        clock.now += 2
        assert await cache.get(key, probe) is None  # failure expired after 5 s: probed again
        clock.now += 14
        assert await cache.get(key, probe) is None  # success kept for 15 s
        assert calls == 2
        clock.now += 2
        assert await cache.get(key, probe) is None
        assert calls == 3
        assert await cache.get(("http", "other"), probe) == "HTTP 503"  # other endpoint
        assert calls == 4

    asyncio.run(main())


def test_a_failing_probe_is_not_cached() -> None:
    """An exception (a bug, a cancelled reconcile) must not leave a poisoned entry."""
    attempts = 0

    async def flaky() -> str | None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("boom")
        return None

    async def main() -> None:
        cache = ProbeCache()
        try:
            await cache.get("k", flaky)
        except RuntimeError:
            pass
        else:
            raise AssertionError("the exception was swallowed")
        assert await cache.get("k", flaky) is None
        assert attempts == 2

    asyncio.run(main())


def test_expired_entries_are_dropped_when_full() -> None:
    clock = Clock()

    async def ok() -> str | None:
        return None

    async def main() -> ProbeCache:
        cache = ProbeCache(ttl=1, clock=clock, max_entries=10)
        for i in range(10):
            await cache.get(i, ok)
        clock.now += 2
        await cache.get("new", ok)
        return cache

    cache = asyncio.run(main())
    assert set(cache._results) == {"new"}
