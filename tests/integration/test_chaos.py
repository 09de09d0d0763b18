"""Chaos, short enough for CI: the worker is killed with SIGKILL at random moments while
events flow, the broker is restarted once, and at the end every rep's total for every
period in ClickHouse equals the batch replay to the cent, with no delta id twice.
(``bench/`` holds the longer version.)"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.broker import LocalBroker
from comstream.dlq import read_letters
from comstream.publish import publish_events
from comstream.replay import replay
from tests.integration.test_pipeline import FACTS_PLAN, generated, n_dimension_events
from tests.integration.workers import RunningWorker, deployment, free_port, launch, wait_until

pytestmark = pytest.mark.integration


def kill(worker: RunningWorker) -> None:
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)


def _explain(worker: RunningWorker, expected: dict[tuple[str, str, str], Decimal]) -> None:
    """What a failed comparison needs for a diagnosis (docs/exactly-once.md): the totals
    that differ, the worker's counters and every dead letter."""
    got = worker.totals()
    for key in sorted(set(got) | set(expected)):
        if got.get(key) != expected.get(key):
            print(f"total {key}: ledger {got.get(key)}, replay {expected.get(key)}")
    print("status:", worker.get("/api/status"))
    print("log of the workers:", worker.log_tail(200), sep="\n")
    for s in read_letters(worker.settings):
        r = s.record
        print(f"letter {r.topic}[{r.partition}]@{r.offset}: {r.reason}: {r.detail[:200]}")


def test_kills_and_a_broker_restart_leave_totals_exact(
    kafka_bootstrap: str, local_broker: LocalBroker | None, tmp_path: Path
) -> None:
    rng = random.Random(99)
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=600, seed=21, plan=FACTS_PLAN)
    expected = replay(events).totals()
    n_dims = n_dimension_events(events)
    flow = events[n_dims:]
    chunks = [flow[i : i + len(flow) // 5 + 1] for i in range(0, len(flow), len(flow) // 5 + 1)]

    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    worker = launch(settings)
    kills = 0
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")
        for i, chunk in enumerate(chunks):
            publish_events(chunk, kafka_bootstrap, settings.topics)
            time.sleep(rng.uniform(0.2, 2.5))  # somewhere mid-processing
            kill(worker)
            kills += 1
            if i == 2 and local_broker is not None:
                local_broker.restart()
            worker = launch(settings)
        try:
            wait_until(lambda: worker.totals() == expected, 240, "totals after chaos == replay")
        except AssertionError:
            _explain(worker, expected)
            raise
        status = worker.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]
        assert kills == len(chunks) >= 5
    finally:
        worker.stop()


def test_two_workers_share_the_partitions_and_one_dies(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = deployment(kafka_bootstrap, tmp_path / "a", partitions=4)
    helper = replace(settings, data_dir=tmp_path / "b", web_port=free_port(), sink=False)
    events = generated(orders=400, seed=8, plan=FACTS_PLAN)
    expected = replay(events).totals()
    n_dims = n_dimension_events(events)
    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    first = launch(settings)  # runs the stages, the sink and the API
    second = launch(helper)  # runs stages only, on the partitions it is given
    try:
        wait_until(
            lambda: (
                first.get("/api/status")["events_in"] + second.get("/api/status")["events_in"]
                >= n_dims
            ),
            60,
            "CRM ingested",
        )
        flow = events[n_dims:]
        publish_events(flow[: len(flow) // 2], kafka_bootstrap, settings.topics)
        wait_until(lambda: second.get("/api/status")["deltas_out"] > 0, 60, "both workers busy")
        kill(second)
        publish_events(flow[len(flow) // 2 :], kafka_bootstrap, settings.topics)
        try:
            wait_until(lambda: first.totals() == expected, 180, "totals == replay after one died")
        except AssertionError:
            _explain(first, expected)
            print("log of the killed worker:", second.log_tail(80), sep="\n")
            raise
        status = first.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]
    finally:
        second.stop()
        first.stop()
