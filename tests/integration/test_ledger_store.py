"""The ledger's insert path against the real ClickHouse engine (chDB): one insert for a
batch read from several partitions, deduplicated by its offset ranges, the rollup kept
in step, and the resume offsets per partition."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.replay import replay
from processors.events import CommissionDelta
from processors.stages import partition_of
from sinks.clickhouse import SinkError, SourcedDelta, Store

from .test_leaderboard_store import _events


def _by_partition(deltas: list[CommissionDelta], n: int) -> list[SourcedDelta]:
    """The deltas as the sink reads them from ``n`` partitions (key rep_id), sorted by
    partition then offset."""
    offsets: dict[int, int] = defaultdict(int)
    out = []
    for d in deltas:
        p = partition_of(d.rep_id, n)
        out.append(SourcedDelta("commission.deltas", p, offsets[p], d))
        offsets[p] += 1
    return sorted(out, key=lambda s: (s.partition, s.offset))


def _rollup(store: Store) -> dict[tuple[str, str, str], Decimal]:
    rows = store.query(
        "SELECT booked_period, rep_id, currency, sum(amount) FROM rep_period_totals "
        "GROUP BY booked_period, rep_id, currency"
    )
    return {(r, p, c): Decimal(a) for p, r, c, a in rows if a != 0}


def test_a_batch_of_several_partitions_is_one_deduplicated_insert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = replay(_events())
    expected = {k: v for k, v in result.totals().items() if v != 0}
    batch = _by_partition(result.deltas, 4)
    assert len({b.partition for b in batch}) >= 2
    store = Store(f"chdb://{tmp_path / 'ch'}")
    try:
        store.ensure_schema()
        assert store.insert_batch(batch) == len(batch)
        assert {k: v for k, v in store.exact_totals().items() if v != 0} == expected
        assert _rollup(store) == expected
        ends: dict[int, int] = {}
        for b in batch:
            ends[b.partition] = b.offset + 1
        assert store.resume_offsets("commission.deltas") == ends

        # read again after a crash: every id is known, nothing is inserted
        assert store.insert_batch(batch) == 0
        # an insert that happened although the client saw an error, retried with the same
        # batch: the offset-range token alone keeps the ledger and the rollup exact
        monkeypatch.setattr(store, "known_delta_ids", lambda deltas: set())
        assert store.insert_batch(batch) == len(batch)  # sent, and dropped by ClickHouse
        assert store.delta_count() == (len(batch), len(batch))
        assert _rollup(store) == expected
    finally:
        store.close()


def test_a_batch_must_be_one_topic_in_offset_order(tmp_path: Path) -> None:
    deltas = replay(_events()).deltas[:4]
    store = Store(f"chdb://{tmp_path / 'ch'}")
    try:
        store.ensure_schema()
        mixed = [SourcedDelta("a", 0, 0, deltas[0]), SourcedDelta("b", 0, 1, deltas[1])]
        with pytest.raises(SinkError, match="one topic"):
            store.insert_batch(mixed)
        backwards = [SourcedDelta("a", 0, 5, deltas[0]), SourcedDelta("a", 0, 4, deltas[1])]
        with pytest.raises(SinkError, match="must increase"):
            store.insert_batch(backwards)
        assert store.delta_count()[0] == 0
    finally:
        store.close()
