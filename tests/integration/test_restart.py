"""Restarts: a clean stop keeps the worker's local tables, a kill does not
(streams/restart.py, docs/exactly-once.md "A local store ahead of its changelog")."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from comstream.publish import publish_events
from comstream.replay import replay
from processors.events import OrderCancelled, OrderPlaced, PaymentReceived
from tests.integration.test_pipeline import generated, n_dimension_events, stream_into_worker
from tests.integration.workers import deployment, free_port, launch, stages_done, wait_until

pytestmark = pytest.mark.integration


def test_a_clean_stop_under_load_keeps_the_tables_and_a_kill_rebuilds_them(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGTERM while the worker works through a backlog: it finishes what it holds, every
    changelog record is acknowledged, and the next start keeps its local tables and
    carries on from them to the replay's totals. SIGKILL after that: the next start
    rebuilds the tables from the changelogs alone, and the rest of the flow, which pays
    and cancels orders of the first part, still ends at the replay's totals, so the
    changelogs held every state the kept tables had."""
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=500, seed=31)
    cut = n_dimension_events(events) + (len(events) - n_dimension_events(events)) // 2
    first, rest = events[:cut], events[cut:]
    first_totals = replay(first).totals()
    expected = replay(events).totals()
    assert first_totals != expected

    worker = stream_into_worker(settings, first, kafka_bootstrap)
    try:
        status = worker.get("/api/status")
        assert status["local_tables"] == "rebuilt"
        wait_until(lambda: bool(worker.get("/api/status")["deltas_stored"]), 60, "first deltas")
        assert worker.totals() != first_totals, "the stop should find work in progress"
        worker.stop()  # SIGTERM, as a deployment does
        assert worker.proc.returncode == 0, worker.log_tail()

        worker = launch(settings)
        status = worker.get("/api/status")
        assert status["local_tables"] == "kept", worker.log_tail()
        wait_until(lambda: worker.totals() == first_totals, 180, "totals after a clean stop")
        sent = worker.get("/api/status")["changelog_records"]
        assert sent["sent"] > 0 and sent["failed"] == 0

        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        worker = launch(settings)
        assert worker.get("/api/status")["local_tables"] == "rebuilt", worker.log_tail()
        publish_events(rest, kafka_bootstrap, settings.topics)
        wait_until(lambda: worker.totals() == expected, 180, "totals after a kill")
        status = worker.get("/api/status")
        assert status["ledger_rows"] == status["deltas_stored"]  # no delta id twice
    finally:
        worker.stop()


def test_kept_tables_take_up_what_another_worker_wrote_meanwhile(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Worker A stops cleanly; worker B (stages only, its own data directory) works
    through the next part of the flow alone, writing the changelogs; A starts again on
    its kept tables, which lack B's states until Faust's recovery reads the changelogs
    past the offsets A's store keeps. The last part pays and cancels orders of B's part:
    the totals equal the replay's only if A holds B's states."""
    settings = deployment(kafka_bootstrap, tmp_path / "a")
    events = generated(orders=450, seed=37)
    n_dims = n_dimension_events(events)
    third = (len(events) - n_dims) // 3
    parts = [events[: n_dims + third], events[n_dims + third : n_dims + 2 * third]]
    parts.append(events[n_dims + 2 * third :])
    placed_by_b = {e.order_id for e in parts[1] if isinstance(e, OrderPlaced)}
    later = {e.order_id for e in parts[2] if isinstance(e, PaymentReceived | OrderCancelled)}
    assert len(placed_by_b & later) > 20
    worker = stream_into_worker(settings, parts[0], kafka_bootstrap)
    try:
        wait_until(lambda: worker.totals() == replay(parts[0]).totals(), 180, "part one")
        worker.stop()
        other = replace(settings, data_dir=tmp_path / "b", web_port=free_port(), sink=False)
        worker = launch(other)
        publish_events(parts[1], kafka_bootstrap, settings.topics)
        wait_until(lambda: stages_done(settings), 180, "worker B through part two")
        worker.stop()

        worker = launch(settings)
        assert worker.get("/api/status")["local_tables"] == "kept", worker.log_tail()
        publish_events(parts[2], kafka_bootstrap, settings.topics)
        wait_until(lambda: worker.totals() == replay(events).totals(), 180, "all three parts")
    finally:
        worker.stop()
