"""Commission periods: ``2026-11`` (a calendar month) and ``2026-Q4`` (a calendar quarter).

A period is cut in a plan's time zone from an event's business time (never wall time).
A period named in the set of closed periods is closed; a delta whose period is closed is
booked in the first open period after it (see docs/semantics-decisions.md).
"""

from __future__ import annotations

import re
from collections.abc import Set
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

MONTH = "month"
QUARTER = "quarter"
PERIOD_KINDS = (MONTH, QUARTER)

_MONTH_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_QUARTER_RE = re.compile(r"^([0-9]{4})-Q([1-4])$")


# (tz, kind) -> (start, end, period id) of the period last computed, bounds in UTC: a memo
# that lets consecutive events of one period skip the time zone conversion.
_RANGES: dict[tuple[tzinfo, str], tuple[datetime, datetime, str]] = {}


def period_of(at: datetime, kind: str, tz: tzinfo) -> str:
    """The id of the ``kind`` period (``month`` or ``quarter``) that the instant ``at``
    falls in, in time zone ``tz``. ``at`` must be timezone-aware."""
    key = (tz, kind)
    hit = _RANGES.get(key)
    if hit is not None and at.tzinfo is UTC and hit[0] <= at < hit[1]:
        return hit[2]
    local = at.astimezone(tz)
    year = local.year
    if kind == MONTH:
        first = local.month
        period = f"{year:04d}-{first:02d}"
        months = 1
    else:
        quarter = (local.month + 2) // 3
        first = quarter * 3 - 2
        period = f"{year:04d}-Q{quarter}"
        months = 3
    after = first + months
    start = datetime(year, first, 1, tzinfo=tz).astimezone(UTC)
    end_local = (
        datetime(year + 1, after - 12, 1, tzinfo=tz)
        if after > 12
        else datetime(year, after, 1, tzinfo=tz)
    )
    end = end_local.astimezone(UTC)
    if start <= at < end:
        _RANGES[key] = (start, end, period)
    return period


def is_period(text: str) -> bool:
    """Whether ``text`` is a period id (``YYYY-MM`` or ``YYYY-Qn``)."""
    return bool(_MONTH_RE.match(text) or _QUARTER_RE.match(text))


@lru_cache(maxsize=4096)
def period_kind(period: str) -> str:
    """``month`` or ``quarter``; raises ``ValueError`` for a text that is not a period id."""
    if _MONTH_RE.match(period):
        return MONTH
    if _QUARTER_RE.match(period):
        return QUARTER
    raise ValueError(f"{period!r} is not a period id (YYYY-MM or YYYY-Qn)")


@lru_cache(maxsize=4096)
def next_period(period: str) -> str:
    """The period right after ``period`` (same kind)."""
    m = _MONTH_RE.match(period)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"
    q = _QUARTER_RE.match(period)
    if q:
        year, quarter = int(q.group(1)), int(q.group(2))
        return f"{year + 1:04d}-Q1" if quarter == 4 else f"{year:04d}-Q{quarter + 1}"
    raise ValueError(f"{period!r} is not a period id (YYYY-MM or YYYY-Qn)")


@lru_cache(maxsize=4096)
def last_day(period: str) -> date:
    """The last calendar day of ``period``."""
    m = _MONTH_RE.match(period)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
    else:
        q = _QUARTER_RE.match(period)
        if not q:
            raise ValueError(f"{period!r} is not a period id (YYYY-MM or YYYY-Qn)")
        year, month = int(q.group(1)), int(q.group(2)) * 3
    first_of_next = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return first_of_next - timedelta(days=1)


def book_period(origin: str, closed: Set[str]) -> str:
    """Where a delta whose cause falls in ``origin`` is booked: ``origin`` itself when it
    is open, else the first period after it that is not in ``closed``."""
    if origin not in closed:
        return origin
    period = next_period(origin)
    while period in closed:
        period = next_period(period)
    return period
