"""Store.statement and Store.statement_totals against the real ClickHouse engine (chDB):
each delta id once, exact Decimals, aware times, and sums equal to the engine's."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from comstream.demo import plan_event
from comstream.generator import DemoStream, simulated_clock
from comstream.replay import replay
from processors.events import CommissionDelta, DeltaKind, Event
from sinks.clickhouse import STATEMENT_COLUMNS, SourcedDelta, Store

from .test_pipeline import START

RICH = Path(__file__).resolve().parents[2] / "plans" / "rich.yaml"


def _events() -> list[Event]:
    stream = DemoStream(seed=5, reps=6, customers=40)
    flow = list(stream.events(simulated_clock(START, timedelta(minutes=5)), orders=150))
    return [plan_event(RICH, START - timedelta(days=1)), *stream.dimensions(START), *flow]


def test_statement_lists_each_delta_once_and_sums_to_the_engine(tmp_path: Path) -> None:
    result = replay(_events())
    deltas = result.deltas
    assert deltas
    store = Store(f"chdb://{tmp_path / 'ch'}")
    try:
        store.ensure_schema()
        store.insert_batch([SourcedDelta("t", 0, i, d) for i, d in enumerate(deltas)])
        # the same deltas again from other Kafka positions (a replay after a crash)
        store.insert_batch([SourcedDelta("t", 1, i, d) for i, d in enumerate(deltas[:50])])

        by_rep_period: dict[tuple[str, str], list[CommissionDelta]] = defaultdict(list)
        for d in deltas:
            by_rep_period[(d.rep_id, d.booked_period)].append(d)
        (rep, period), mine = max(by_rep_period.items(), key=lambda kv: len(kv[1]))

        lines = store.statement(rep, period)
        assert [line["delta_id"] for line in lines] == [
            d.delta_id for d in sorted(mine, key=lambda d: (d.occurred_at, d.delta_id))
        ]
        assert all(set(line) == set(STATEMENT_COLUMNS) for line in lines)
        first = lines[0]
        assert isinstance(first["amount"], Decimal)
        assert first["occurred_at"].utcoffset() == timedelta(0)
        engine = {d.delta_id: d for d in mine}
        for line in lines:
            d = engine[line["delta_id"]]
            assert line["amount"] == d.amount
            assert line["kind"] == d.kind.value
            assert line["order_id"] == d.order_id

        totals = store.statement_totals(rep, period)
        assert totals["deltas"] == len(mine)
        (currency,) = {d.currency for d in mine}
        entry = totals["currencies"][currency]
        assert entry["total"] == sum((d.amount for d in mine), Decimal("0"))
        for kind in DeltaKind:
            want = sum((d.amount for d in mine if d.kind is kind), Decimal("0"))
            assert entry["by_kind"][kind.value] == want
        assert store.statement("nobody", period) == []
        assert store.statement_totals("nobody", period)["currencies"] == {}
        empty = store.statement_page("nobody", period, 0, 10)
        assert (empty.lines, empty.line_count, empty.days) == ([], 0, [])
        assert empty.totals == store.statement_totals("nobody", period)
        page = store.statement_page(rep, period, 1, 2)
        assert page.lines == lines[1:3] and page.line_count == len(lines)
        assert page.totals == totals
    finally:
        store.close()
