"""The ledger side of ``comstream reconcile`` against the real ClickHouse engine (chDB):
per-order sums of one booked period, each delta id once, equal to the engine's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from comstream.reconcile import LedgerRow, compare_ledger, expected_rows
from comstream.replay import replay
from sinks.clickhouse import SourcedDelta, Store
from sinks.reconcile import order_commission

from .test_leaderboard_store import _events

pytestmark = pytest.mark.integration


def test_order_commission_counts_each_delta_id_once(tmp_path: Path) -> None:
    deltas = replay(_events()).deltas
    period = "2026-11"
    expected = expected_rows(deltas, period)
    assert expected
    store = Store(f"chdb://{tmp_path / 'ch'}")
    try:
        store.ensure_schema()
        store.insert_batch([SourcedDelta("t", 0, i, d) for i, d in enumerate(deltas)])
        # rows repeated behind the sink's back: still one per delta id in the sums
        store._command("INSERT INTO commission_deltas SELECT * FROM commission_deltas LIMIT 50")
        rows, distinct = store.delta_count()
        assert rows == distinct + 50
        got = [
            LedgerRow(r["order_id"], r["rep_id"], r["currency"], r["amount"], r["deltas"])
            for r in order_commission(store, period, "origin")
        ]
        assert got == expected  # expected_rows sums by origin period, as by="origin"
        assert compare_ledger(expected, got, {}).ok
        assert order_commission(store, "1999-01") == []
        assert order_commission(store, "1999-01", "origin") == []
        # booked in the period: the same here, where nothing was booked elsewhere
        booked = sum((r["amount"] for r in order_commission(store, period)), Decimal(0))
        assert booked == sum((d.amount for d in deltas if d.booked_period == period), Decimal(0))
        with pytest.raises(ValueError):
            order_commission(store, period, "sideways")
    finally:
        store.close()
