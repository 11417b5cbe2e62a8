"""Condition helpers following the Kubernetes API conventions (and kstatus).

* conditions are a list keyed by `type`;
* `lastTransitionTime` changes only when `status` changes;
* `Ready` summarises; `Reconciling` is True while work is in flight; `Stalled` is True when
  nothing will change without a spec change. Argo CD and Flux read health from exactly these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..constants import COND_READY, COND_RECONCILING, COND_STALLED, Reason

Obj = dict[str, Any]


RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime(RFC3339)


def rfc3339(when: dt.datetime) -> str:
    """A timestamp as status and Kubernetes write it (UTC, seconds)."""
    return when.astimezone(dt.UTC).strftime(RFC3339)


def parse_time(text: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp from status or metadata; None when absent or malformed."""
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Cond:
    type: str
    status: bool | None  # None -> Unknown
    reason: str
    message: str = ""


def _status(value: bool | None) -> str:
    return "Unknown" if value is None else ("True" if value else "False")


def merge(
    existing: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Cond],
    generation: int,
    *,
    timestamp: str | None = None,
    keep: Iterable[str] = (),
) -> list[Obj]:
    """New condition list: `updates` applied over `existing`, transition times preserved.

    Types neither updated nor listed in `keep` are dropped, so a condition that no longer
    applies disappears instead of lingering with stale content.
    """
    ts = timestamp or now()
    old = {c["type"]: dict(c) for c in existing or []}
    out: list[Obj] = []
    seen = set()
    for cond in updates:
        seen.add(cond.type)
        status = _status(cond.status)
        prev = old.get(cond.type)
        changed = prev is None or prev.get("status") != status
        out.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason,
                "message": cond.message[:32000],
                "observedGeneration": generation,
                "lastTransitionTime": ts if changed else prev.get("lastTransitionTime", ts),  # type: ignore[union-attr]
            }
        )
    keep_set = set(keep)
    out.extend(c for t, c in old.items() if t not in seen and t in keep_set)
    order = {COND_READY: 0, COND_RECONCILING: 1, COND_STALLED: 2}
    out.sort(key=lambda c: (order.get(c["type"], 3), c["type"]))
    return out


def summary(
    *,
    ready: bool,
    reason: str,
    message: str = "",
    stalled: bool = False,
    extra: Iterable[Cond] = (),
) -> list[Cond]:
    """The three standard conditions (+ kind-specific ones) from one verdict."""
    conds = [
        Cond(COND_READY, ready, Reason.READY if ready else reason, message if not ready else "")
    ]
    if stalled:
        conds.append(Cond(COND_STALLED, True, reason, message))
        conds.append(Cond(COND_RECONCILING, False, reason, ""))
    elif ready:
        conds.append(Cond(COND_STALLED, False, Reason.READY, ""))
        conds.append(Cond(COND_RECONCILING, False, Reason.READY, ""))
    else:
        conds.append(Cond(COND_STALLED, False, reason, ""))
        conds.append(Cond(COND_RECONCILING, True, reason, message))
    conds.extend(extra)
    return conds


def get(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for cond in conditions or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_true(
    obj: Mapping[str, Any] | None, type_: str = COND_READY, *, current: bool = True
) -> bool:
    """Whether a CR has `type_`=True for its current generation."""
    if obj is None:
        return False
    status = obj.get("status") or {}
    cond = get(status.get("conditions"), type_)
    if cond is None or cond.get("status") != "True":
        return False
    if current:
        gen = obj.get("metadata", {}).get("generation")
        return bool(status.get("observedGeneration") == gen)
    return True
