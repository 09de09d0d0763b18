"""The leaderboard's queries against the real ClickHouse engine (chDB): the sums behind
"change since yesterday" (each delta id once) and the filtered, ranked board."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.demo import plan_event
from comstream.generator import DemoStream, simulated_clock
from comstream.replay import replay
from processors.events import Event
from sinks.clickhouse import SourcedDelta, Store
from streams.app import WorkerState
from streams.dimensions import Dimensions
from streams.settings import Settings
from streams.web_ui import leaderboard_payload

from .test_pipeline import START

SIMPLE = Path(__file__).resolve().parents[2] / "plans" / "simple.yaml"


def _events() -> list[Event]:
    stream = DemoStream(seed=9, reps=5, customers=30)
    flow = list(stream.events(simulated_clock(START, timedelta(minutes=30)), orders=120))
    return [plan_event(SIMPLE, START - timedelta(days=1)), *stream.dimensions(START), *flow]


def test_sums_before_an_instant_count_each_delta_once(tmp_path: Path) -> None:
    deltas = replay(_events()).deltas
    period = "2026-11"
    mine = [d for d in deltas if d.booked_period == period]
    assert mine
    cut = sorted(d.occurred_at for d in mine)[len(mine) // 2]
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for d in mine:
        if d.occurred_at < cut:
            expected[(d.rep_id, d.currency)] += d.amount
    store = Store(f"chdb://{tmp_path / 'ch'}")
    try:
        store.ensure_schema()
        store.insert_batch([SourcedDelta("t", 0, i, d) for i, d in enumerate(deltas)])
        # the same deltas again from other positions (a re-emission after a crash)
        store.insert_batch([SourcedDelta("t", 1, i, d) for i, d in enumerate(deltas[:40])])

        got = store.period_sums_before(period, cut)
        assert got == {k: v for k, v in expected.items() if k in got}
        assert {k for k, v in expected.items() if v != 0} <= set(got)

        rep = mine[0].rep_id
        only = store.period_sums_before(period, cut, [rep])
        assert set(only) <= {k for k in got if k[0] == rep}
        assert store.period_sums_before(period, cut, []) == {}

        # at or after the last delta: the leaderboard total of the period
        after = store.period_sums_before(period, max(d.occurred_at for d in mine) + timedelta(1))
        board = {(r.rep_id, r.currency): r.commission for r in store.leaderboard(period, 1000)}
        assert after == board
        with pytest.raises(ValueError):
            store.period_sums_before(period, datetime(2026, 11, 5))
    finally:
        store.close()


def test_leaderboard_payload_filters_ranks_and_counts_today(tmp_path: Path) -> None:
    events = _events()
    deltas = replay(events).deltas
    dims = Dimensions()
    for e in events:
        dims.apply_event(e)
    store = Store(f"chdb://{tmp_path / 'ch'}")
    try:
        store.ensure_schema()
        store.insert_batch([SourcedDelta("t", 0, i, d) for i, d in enumerate(deltas)])
        ws = WorkerState(Settings(data_dir=tmp_path), store, dims)
        every = leaderboard_payload(ws, store, "2026-11", None, None, 50)
        assert every["rows"] and [r["rank"] for r in every["rows"]] == list(
            range(1, len(every["rows"]) + 1)
        )
        # the history is from 2026-11-02, long before today: nothing changed today
        assert {r["change_today"] for r in every["rows"]} == {"0.00"}
        team = dims.reps[every["rows"][-1]["rep_id"]].team_id
        mine = leaderboard_payload(ws, store, "2026-11", team, None, 50)
        assert mine["rows"] and all(r["team_id"] == team for r in mine["rows"])
        assert [r["rank"] for r in mine["rows"]] == list(range(1, len(mine["rows"]) + 1))
        expected = [r["rep_id"] for r in every["rows"] if r["team_id"] == team]
        assert [r["rep_id"] for r in mine["rows"]] == expected
        assert len(leaderboard_payload(ws, store, "2026-11", team, None, 1)["rows"]) == 1
    finally:
        store.close()
