"""Event-to-queryable latency of one worker at a steady publish rate.

    python -m bench.latency_bench --rate 2000 --seconds 60
    python -m bench.latency_bench --rate 100 --seconds 120

Starts its own broker under ``var/bench-latency`` (or uses ``KAFKA_BOOTSTRAP``), a fresh
deployment, publishes the plan and CRM and waits for them, then publishes the order flow
at ``--rate`` events per second (paced against the clock, one ``produce`` per event) for
``--seconds``. Each event's publish time is recorded; after the worker has caught up
(every rep-period total equals the batch replay's) the worker is stopped and the ledger
is read directly: for every event that caused a delta, latency = the ledger's
``inserted_at`` of its first delta (the moment it became queryable) - its publish time.
Prints p50, p90, p99 and max, the publish rate achieved, and how long the worker needed
after the last publish to catch up. When the rate is above what the worker sustains the
latency grows with the run's length: the figures then describe the backlog, not a steady
state, and the output says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from datetime import UTC, datetime
from decimal import Decimal

from comstream.broker import LocalBroker
from comstream.publish import publish_events
from comstream.replay import replay
from schemas.codec import encode
from sinks.clickhouse import Store
from streams.kafka import flush, make_producer
from streams.routing import event_key, event_topic
from streams.settings import REPO_ROOT
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import deployment, free_port, launch, wait_until

EVENTS_PER_ORDER = 2.55


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=2000, help="events per second")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to catch up")
    ap.add_argument("--worst", type=int, default=5, help="list the slowest events")
    args = ap.parse_args()
    root = REPO_ROOT / "var" / "bench-latency"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    n_flow = int(args.rate * args.seconds)
    events = generated(orders=int(n_flow / EVENTS_PER_ORDER) + 10, seed=17)
    n_dims = n_dimension_events(events)
    events = events[: n_dims + n_flow]
    flow = events[n_dims:]
    expected = replay(events).totals()

    broker: LocalBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "")
    if not bootstrap:
        broker = LocalBroker(free_port(), free_port(), root / "kafka")
        bootstrap = broker.start()
    try:
        settings = deployment(bootstrap, root / "worker")
        publish_events(events[:n_dims], bootstrap, settings.topics)
        worker = launch(settings)
        try:
            wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 120, "CRM")
            producer = make_producer(bootstrap)
            encoded = [(event_topic(e, settings.topics), event_key(e), encode(e)) for e in flow]
            sent: dict[str, float] = {}
            start = time.monotonic()
            for i, (e, (topic, key, value)) in enumerate(zip(flow, encoded, strict=True)):
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                producer.produce(topic, key=key, value=value)
                sent[e.event_id] = time.time()
                producer.poll(0)
            flush(producer)
            published = time.monotonic()
            achieved = len(flow) / (published - start)
            # caught up: every rep-period total equals the replay's (the order stage books
            # by business time, so a backlog read across topics in another order than the
            # file gives the same periods: docs/exactly-once.md)
            wait_until(
                lambda: nonzero(worker.totals()) == nonzero(expected),
                args.timeout,
                "every rep-period total == replay",
            )
            catch_up = time.monotonic() - published
        finally:
            worker.stop()
            print(f"worker restarts to re-read a message: {worker.restarts()}", flush=True)

        store = Store(settings.clickhouse_dsn)
        try:
            rows = store.query(
                "SELECT cause_event_id, min(inserted_at) FROM commission_deltas "
                "GROUP BY cause_event_id"
            )
        finally:
            store.close()
        by_event = {
            eid: _seconds(at) - sent[eid]
            for eid, at in rows
            if isinstance(at, datetime) and eid in sent
        }
        latencies = sorted(by_event.values())
        steady = catch_up < 5
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
        print(
            f"rate asked {args.rate:,.0f}/s for {args.seconds:.0f} s: {len(flow)} events "
            f"published at {achieved:,.0f}/s; {len(latencies)} of them caused deltas"
        )
        print(f"worker caught up {catch_up:.1f} s after the last publish")
        print(f"rep-period totals equal to the replay: all {len(nonzero(expected))}")
        for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
            print(f"{name}: {percentile(latencies, q) * 1000:,.0f} ms")
        flow_by_id = {e.event_id: e for e in flow}
        for eid in sorted(by_event, key=by_event.__getitem__, reverse=True)[: args.worst]:
            e = flow_by_id[eid]
            print(f"slow: {by_event[eid] * 1000:,.0f} ms {type(e).__name__} {eid} {e!r:.160}")
        if not steady:
            print(
                "NOT STEADY: the worker fell behind this rate; the latencies above measure "
                "the backlog and grow with the run's length"
            )
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(root, ignore_errors=True)


def nonzero(totals: dict[tuple[str, str, str], Decimal]) -> dict[tuple[str, str, str], Decimal]:
    """The (rep, period, currency) totals that are not 0."""
    return {k: v for k, v in totals.items() if v != 0}


def _seconds(at: datetime) -> float:
    """Epoch seconds of a ledger time (UTC; the driver may hand it over naive)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


if __name__ == "__main__":
    main()
