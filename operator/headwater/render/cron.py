"""Next run of a five-field cron expression (the subset Kubernetes CronJobs accept).

Pure and small on purpose: the operator only needs "when is the next run" for
`status.nextScheduleTime`, so a dependency for full cron semantics is not worth it. The
expression has already passed `api.streamjob.CRON_STRICT`. Day-of-month and day-of-week
follow Vixie cron: when both are restricted, a day matching either one runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = {
    **{
        m: i + 1
        for i, m in enumerate(
            ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        )
    },
    **{d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
}
# (low, high) of minute, hour, day of month, month, day of week
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_HORIZON_YEARS = 5  # give up after that (e.g. "0 0 30 2 *" never runs)


def _value(token: str) -> int:
    return _NAMES[token.upper()] if token.upper() in _NAMES else int(token)


def _field(text: str, low: int, high: int) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _value(first), _value(last)
        else:
            start = _value(base)
            end = high if step_text else start
        out.update(range(start, end + 1, max(step, 1)))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = MACROS.get(expression.strip().lower(), expression).split()
        if len(fields) != 5:
            raise ValueError(f"cron: expected 5 fields, got {len(fields)}")
        parsed = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)]
        weekdays = frozenset(d % 7 for d in parsed[4])  # 7 is Sunday too
        return cls(
            parsed[0],
            parsed[1],
            parsed[2],
            parsed[3],
            weekdays,
            fields[2] in ("*", "?"),
            fields[4] in ("*", "?"),
        )

    def _day_matches(self, t: dt.datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """First matching minute strictly after `after` (an aware datetime), in its zone."""
        t = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        while t.year <= after.year + _HORIZON_YEARS:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = (t + dt.timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + dt.timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute in self.minutes:
                return t
            t += dt.timedelta(minutes=1)
        return None


def next_run(
    expression: str, after: dt.datetime, time_zone: str | None = None
) -> dt.datetime | None:
    """Next run of `expression` after `after`, evaluated in `time_zone` (UTC when unset),
    returned in UTC. Wall-clock arithmetic: around DST changes a run may shift by an hour,
    which is what the CronJob controller does too."""
    zone = ZoneInfo(time_zone) if time_zone else dt.UTC
    local = after.astimezone(zone).replace(tzinfo=None)
    found = Cron.parse(expression).next_after(local)
    if found is None:
        return None
    return found.replace(tzinfo=zone).astimezone(dt.UTC)
