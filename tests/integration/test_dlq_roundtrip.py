"""Correct and publish again (issue 18, item 8): payments refused for a figure finer than
their currency (``invalid.amount_precision``) are taken from the dead-letter topic with
``comstream dlq export`` (and ``dlq list --json``), corrected by hand and sent with
``comstream publish``; the worker then counts them as a batch replay of the corrected
events does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.dlq import read_letters
from comstream.publish import publish_events
from comstream.replay import replay
from processors.events import OrderPlaced, PaymentReceived
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import deployment, launch, wait_until

pytestmark = pytest.mark.integration


def test_dead_letters_corrected_and_published_again_count(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=30, seed=11)
    n_dims = n_dimension_events(events)
    orders = [e for e in events if isinstance(e, OrderPlaced)]

    def fine(i: int, order: OrderPlaced) -> PaymentReceived:
        at = order.placed_at + timedelta(hours=1)
        return PaymentReceived(f"fine-{i}", at, order.order_id, f"fine-{i}", Decimal("10.001"), at)

    bad = [fine(i, o) for i, o in enumerate(orders[:2])]
    corrected = [replace(p, amount=Decimal("10.00")) for p in bad]
    expected = replay([*events, *corrected]).totals()
    env = dict(
        os.environ, KAFKA_BOOTSTRAP=kafka_bootstrap, COMSTREAM_TOPIC_PREFIX=settings.topics.prefix
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "comstream.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")
        publish_events(events[n_dims:], kafka_bootstrap, settings.topics)
        # the orders first: a payment refused when it reaches its accepted order is in its
        # letter (one kept until its order arrives is refused in the order's message)
        wait_until(lambda: worker.totals() == replay(events).totals(), 120, "orders counted")
        publish_events(bad, kafka_bootstrap, settings.topics)
        wait_until(lambda: worker.get("/api/status")["dead_letters"] >= 2, 120, "letters")
        letters = {s.record.event_id: s.offset for s in read_letters(settings)}
        assert set(letters) == {"fine-0", "fine-1"}

        # fine-0 through `dlq export`, fine-1 through the lines of `dlq list --json`
        fix = tmp_path / "fix.jsonl"
        done = cli("dlq", "export", "--offset", str(letters["fine-0"]), "--out", str(fix))
        assert done.returncode == 0, done.stderr
        assert "wrote 1 events" in done.stderr
        fix.write_text(fix.read_text().replace('"10.0010"', '"10.00"'))
        listed = cli("dlq", "list", "--json", "--reason", "invalid.amount_precision")
        assert listed.returncode == 0, listed.stderr
        line = next(ln for ln in listed.stdout.splitlines() if '"fine-1"' in ln)
        (tmp_path / "listed.jsonl").write_text(line.replace('"10.0010"', '"10.00"') + "\n")

        for name in ("fix.jsonl", "listed.jsonl"):
            sent = cli("publish", str(tmp_path / name))
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert "produced 1 events (1 PaymentReceived)" in sent.stdout
        wait_until(lambda: worker.totals() == expected, 120, "corrected payments counted")
        assert worker.get("/api/status")["dead_letters"] == 2  # nothing refused again
        assert json.loads(line)["event"]["event_id"] == "fine-1"
    finally:
        worker.stop()
