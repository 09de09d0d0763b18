"""What a stage message reads and writes in the worker's tables: the serialized size of
each stage state, stored whole and as the worker stores it (a head plus one entry per
order or applied id and one placement bucket per 30 days, :mod:`processors.storage`), and
the time to decode and encode it.

    .venv/bin/python -m bench.state_sizes [--events 60000]

The events are the latency benchmark's (``bench/latency_bench.py``: the integration
tests' generated flow, CRM first), run through the in-memory engine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from comstream.replay import replay
from processors import serde, storage
from processors.customers import Placements
from processors.pmap import PMap
from processors.reps import Applied, RepState
from tests.integration.test_pipeline import generated, n_dimension_events

EVENTS_PER_ORDER = 2.5


def _measure(name: str, values: Sequence[Any], sample: int = 2000) -> None:
    """Print the mean and largest size of ``values`` serialized, and the mean time of one
    decode + encode over up to ``sample`` of them."""
    blobs = [serde.dumps(v) for v in values]
    sizes = [len(b) for b in blobs]
    some = blobs[:sample]
    start = time.perf_counter()
    for b in some:
        serde.dumps(serde.loads(b))
    per = (time.perf_counter() - start) / max(1, len(some))
    print(
        f"{name:<44} {len(sizes):>8,} {statistics.mean(sizes):>10,.0f} B "
        f"{max(sizes):>10,} B {per * 1e6:>10,.0f} µs"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60_000, help="order-flow events")
    args = ap.parse_args()
    events = generated(orders=int(args.events / EVENTS_PER_ORDER) + 10, seed=17)
    events = events[: n_dimension_events(events) + args.events]
    engine = replay(events).engine
    customers = list(engine._customers.values())
    periods = [
        RepState(rep.rep_id, (p,)) for rep in engine._rep_states.values() for p in rep.periods
    ]
    print(f"{len(events):,} events; states: count, mean size, largest, decode + encode")
    _measure("order state (stored whole)", list(engine.order_states().values()))
    _measure("customer state, whole (before session 5)", customers)
    _measure(
        "customer head, session 5 (instants kept)", [replace(c, orders=PMap()) for c in customers]
    )
    _measure("customer head", [replace(c, orders=PMap(), active_us=()) for c in customers])
    _measure("customer order entry", [o for c in customers for o in c.orders.values()])
    buckets: list[Placements] = []
    for c in customers:
        by_bucket: dict[int, dict[str, int]] = {}
        for oid, o in c.orders.items():
            if not o.cancelled:
                by_bucket.setdefault(o.placed_us // storage.BUCKET_US, {})[oid] = o.placed_us
        buckets += [Placements(b, tuple(m), tuple(m.values())) for b, m in by_bucket.items()]
    _measure("customer placement bucket (30 days)", buckets)
    _measure("rep-period state, whole (before session 5)", periods)
    heads = [RepState(p.rep_id, (replace(p.periods[0], applied=PMap()),)) for p in periods]
    _measure("rep-period head", heads)
    applied = [Applied(t, e) for p in periods for t, e in p.periods[0].applied.items()]
    _measure("rep-period applied entry", applied)


if __name__ == "__main__":
    main()
