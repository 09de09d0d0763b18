"""What the live leaderboard needs: a "the ledger changed" signal from the sink thread to
the web server's event loop, and the leaderboard rows with names, teams, regions, quota
attainment and the change since the start of today.

The sink runs in a thread; the web server on the worker's event loop. The sink calls
:meth:`LedgerSignal.notify` after every insert; each waiting server-sent-events response
is woken through ``loop.call_soon_threadsafe`` on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from processors.events import RepChanged
from processors.messages import RepFacts
from processors.periods import QUARTER, last_day, period_kind
from processors.plans import PlanBook
from sinks.clickhouse import LeaderRow

CENTS = Decimal("0.01")


class LedgerSignal:
    """A version number that goes up with every ledger change; coroutines wait for it to
    move. :meth:`notify` may be called from any thread; :meth:`wait` runs on a loop."""

    def __init__(self) -> None:
        self.version = 0
        self.closed = False
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self, rows: int = 0) -> None:
        """The ledger changed (``rows`` inserted; unused but for the log). Thread-safe."""
        with self._lock:
            self.version += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        """Wake every waiter for good (the worker stops)."""
        self.closed = True
        self.notify()

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout`` seconds (then
        possibly still ``seen``), or at once when closed."""
        if self.version != seen or self.closed:
            return self.version
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            if self.version == seen:  # a notify between the check and the add
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(entry[1].wait(), timeout)
        finally:
            with self._lock:
                self._waiters.discard(entry)
        return self.version


def start_of_day(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day (the leaderboard's "today" starts there)."""
    return datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)


def quota_for(plans: PlanBook, rep: RepChanged | None, rep_id: str, period: str) -> Decimal | None:
    """The rep's revenue quota for ``period`` under the plan in effect on the period's
    last day, or None when that plan has no tiers. A quarterly quota seen in a month is a
    third of it (pro rata); a monthly quota seen in a quarter, three times it."""
    try:
        kind = period_kind(period)
        on = last_day(period)
    except ValueError:
        return None
    plan = plans.select(RepFacts.of(rep_id, rep), on)
    if plan is None or plan.tiers is None:
        return None
    quota = plan.tiers.quota_for(rep_id)
    if plan.period == kind:
        return quota
    return quota / 3 if plan.period == QUARTER else quota * 3


def board_rows(
    rows: list[LeaderRow],
    before_today: Mapping[tuple[str, str], Decimal],
    reps: Mapping[str, RepChanged],
    plans: PlanBook,
    period: str,
    team: str | None = None,
    region: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The leaderboard as JSON-ready rows, filtered by team and region and ranked within
    the filter: rank, rep, name, team, region, currency, commission, revenue, quota,
    attainment (revenue / quota, a fraction as text, None without a quota),
    change_today (commission minus ``before_today``), deltas."""
    out: list[dict[str, Any]] = []
    for r in rows:
        rep = reps.get(r.rep_id)
        team_id = rep.team_id if rep else None
        rep_region = rep.region if rep else None
        if team and team_id != team:
            continue
        if region and rep_region != region:
            continue
        quota = quota_for(plans, rep, r.rep_id, period)
        attainment = None if not quota else (r.revenue_base / quota).quantize(Decimal("0.0001"))
        change = r.commission - before_today.get((r.rep_id, r.currency), Decimal(0))
        out.append(
            {
                "rank": len(out) + 1,
                "rep_id": r.rep_id,
                "name": rep.name if rep else None,
                "team_id": team_id,
                "region": rep_region,
                "currency": r.currency,
                "commission": str(r.commission.quantize(CENTS)),
                "revenue_base": str(r.revenue_base.quantize(CENTS)),
                "quota": None if quota is None else str(quota.quantize(CENTS)),
                "attainment": None if attainment is None else str(attainment),
                "change_today": str(change.quantize(CENTS)),
                "deltas": r.deltas,
            }
        )
        if len(out) >= limit:
            break
    return out
