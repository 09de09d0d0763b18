"""The vertical slice end to end: real broker, real worker process, real ClickHouse
engine (chDB inside the worker). Totals must equal the batch replay to the cent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.demo import plan_event
from comstream.generator import DemoStream, simulated_clock
from comstream.publish import publish_events
from comstream.replay import replay
from processors.events import CustomerChanged, Event, OrderPlaced, PlanPublished, RepChanged
from schemas.codec import decode_event
from schemas.jsonl import format_event
from streams.kafka import read_whole
from streams.settings import Settings
from tests.integration.workers import RunningWorker, deployment, launch, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SIMPLE = REPO / "plans" / "simple.yaml"
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


FACTS_PLAN = REPO / "tests" / "integration" / "facts_plan.yaml"


def generated(orders: int, seed: int = 11, plan: Path = SIMPLE) -> list[Event]:
    """The plan, the reps and every customer's first CRM record, then the order flow with
    CRM changes (owner and tier) in the middle of it, as upstream systems publish them.

    Kafka orders nothing across topics: a CRM change may be read before or after an order
    published after it. CRM facts count by business time (docs/semantics-decisions.md),
    so the comparison with the batch replay is exact either way.
    """
    stream = DemoStream(seed=seed, reps=12, customers=80)
    flow = list(stream.events(simulated_clock(START, timedelta(minutes=3)), orders=orders))
    events: list[Event] = [plan_event(plan, START - timedelta(days=1))]
    events += stream.dimensions(START)
    events += flow
    return events


def n_dimension_events(events: list[Event]) -> int:
    """How many events lead the stream before the order flow: plans, reps and the CRM's
    first records (published and ingested first, as a deployment starts)."""
    for i, e in enumerate(events):
        if not isinstance(e, PlanPublished | RepChanged | CustomerChanged):
            return i
    return len(events)


def stream_into_worker(settings: Settings, events: list[Event], bootstrap: str) -> RunningWorker:
    """Publish the plans and the CRM's first records, start a worker, wait until it has
    read them (as a deployment starts), then publish the rest at once."""
    n_dims = n_dimension_events(events)
    publish_events(events[:n_dims], bootstrap, settings.topics)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")
        publish_events(events[n_dims:], bootstrap, settings.topics)
    except BaseException:
        worker.stop()
        raise
    return worker


def test_stream_totals_equal_replay_to_the_cent(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=400)
    expected = replay(events).totals()
    assert expected and any(v != 0 for v in expected.values())

    worker = stream_into_worker(settings, events, kafka_bootstrap)
    try:
        wait_until(lambda: worker.totals() == expected, 180, "stream totals == replay")
        status = worker.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]  # no delta id twice
        assert status["dead_letters"] == 0
        board = worker.get("/api/leaderboard?period=2026-11&limit=5")
        assert len(board["rows"]) == 5
        top = max(v for (_, p, _), v in expected.items() if p == "2026-11")
        assert Decimal(board["rows"][0]["commission"]) == top
    finally:
        worker.stop()


def test_customer_facts_race_orders_and_totals_still_equal_replay(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A plan that reads the CRM tier and the count of the customer's earlier orders, the
    whole flow published at once (CRM changes among the orders): the worker reads topics
    and partitions in its own order, and counts both by business time, as the replay
    does in file order."""
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=500, seed=17, plan=FACTS_PLAN)
    expected = replay(events).totals()
    rules = {t.rule_id for d in replay(events).deltas for t in d.lines}
    assert {"key-account", "repeat", "other"} <= rules
    worker = stream_into_worker(settings, events, kafka_bootstrap)
    try:
        wait_until(lambda: worker.totals() == expected, 180, "stream totals == replay")
        status = worker.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]
    finally:
        worker.stop()


def test_worker_killed_mid_stream_counts_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=300, seed=5)
    expected = replay(events).totals()
    worker = stream_into_worker(settings, events, kafka_bootstrap)
    try:
        wait_until(lambda: bool(worker.get("/api/status")["deltas_stored"]), 60, "first deltas")
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        worker = launch(settings)
        wait_until(lambda: worker.totals() == expected, 180, "totals after SIGKILL == replay")
        status = worker.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]
    finally:
        worker.stop()


def test_publish_produces_good_lines_and_names_the_bad_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=5)[1:]
    lines = [format_event(e) for e in events]
    lines.insert(3, '{"type":"PaymentReceived","event_id":"x","order_id":"o"')  # line 4
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = dict(
        os.environ, KAFKA_BOOTSTRAP=kafka_bootstrap, COMSTREAM_TOPIC_PREFIX=settings.topics.prefix
    )
    proc = subprocess.run(
        [sys.executable, "-m", "comstream.cli", "publish", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert f"{path}:4: rejected: format.json" in proc.stderr
    assert f"produced {len(events)} events" in proc.stdout
    seen = []
    for topic in settings.topics.upstream:
        seen += [decode_event(m.value) for m in read_whole(kafka_bootstrap, topic) if m.value]
    assert sorted(e.event_id for e in seen) == sorted(e.event_id for e in events)


def test_periods_follow_business_time_whatever_the_arrival_order(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Orders first, then their payments, refunds and cancellations in reverse business
    time, so that nearly every movement reaches the worker after a later one of the same
    order (SEMANTICS.md section 4 as refined in docs/semantics-decisions.md): every
    rep-period total equals the batch replay of the events in business-time order."""
    stream = DemoStream(seed=13, reps=12, customers=80)
    flow = list(stream.events(simulated_clock(START, timedelta(hours=4)), orders=250))
    crm = [e for e in flow if isinstance(e, CustomerChanged)]
    dims: list[Event] = [plan_event(SIMPLE, START - timedelta(days=1))]
    dims += [*stream.dimensions(START), *crm]
    placed = [e for e in flow if type(e).__name__ == "OrderPlaced"]
    moves = [e for e in flow if type(e).__name__ in MOVEMENTS]
    in_time = [*dims, *placed, *moves]
    arrival = [*dims, *placed, *reversed(moves)]
    expected = {k: v for k, v in replay(in_time).totals().items() if v != 0}
    assert len({p for (_, p, _) in expected}) >= 3  # several periods
    late = replay(arrival)
    assert {k: v for k, v in late.totals().items() if v != 0} == expected  # the batch path
    assert len(late.deltas) > len(replay(in_time).deltas)  # late movements restated periods

    settings = deployment(kafka_bootstrap, tmp_path)
    publish_events(dims, kafka_bootstrap, settings.topics)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= len(dims), 60, "CRM")
        publish_events(placed, kafka_bootstrap, settings.topics)
        wait_until(
            lambda: worker.get("/api/status")["events_in"] >= len(dims) + len(placed),
            120,
            "orders ingested",
        )
        publish_events(list(reversed(moves)), kafka_bootstrap, settings.topics)

        def nonzero() -> dict[tuple[str, str, str], Decimal]:
            return {k: v for k, v in worker.totals().items() if v != 0}

        wait_until(lambda: nonzero() == expected, 180, "per-period totals == replay")
        status = worker.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]
        assert status["dead_letters"] == 0
    finally:
        worker.stop()


MOVEMENTS = {"PaymentReceived", "RefundIssued", "OrderCancelled"}


def test_uncredited_orders_are_credited_when_the_owner_becomes_known(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Orders without rep or credits for customers the CRM does not know yet wait as
    uncredited (SEMANTICS.md section 2); the customers' CRM records, published after the
    flow, credit them from the start: the worker's totals equal the replay's. Exercises
    the customer stage's stored order entries (processors.storage) in the real worker."""
    events = generated(orders=200, seed=21)
    n_dims = n_dimension_events(events)
    dims, flow = events[:n_dims], events[n_dims:]
    late_ids = sorted({e.customer_id for e in dims if isinstance(e, CustomerChanged)})[:15]
    late = [e for e in dims if isinstance(e, CustomerChanged) and e.customer_id in late_ids]
    dims = [e for e in dims if e not in late]
    flow = [
        replace(e, rep_id=None, credits=())
        if isinstance(e, OrderPlaced) and e.customer_id in late_ids
        else e
        for e in flow
    ]
    assert sum(1 for e in flow if isinstance(e, OrderPlaced) and e.rep_id is None) >= 10
    before = replay([*dims, *flow]).totals()
    expected = replay([*dims, *flow, *late]).totals()
    assert expected != before  # the late CRM records credit something

    settings = deployment(kafka_bootstrap, tmp_path)
    publish_events(dims, kafka_bootstrap, settings.topics)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= len(dims), 60, "CRM")
        publish_events(flow, kafka_bootstrap, settings.topics)
        wait_until(lambda: worker.totals() == before, 180, "uncredited orders wait")
        publish_events(late, kafka_bootstrap, settings.topics)
        wait_until(lambda: worker.totals() == expected, 120, "credited from the start")
        status = worker.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]
    finally:
        worker.stop()
