"""``comstream reconcile`` on a live pipeline and right after a close (issue 17, item 7):
while events flow it compares only settled work and exits 0 with the rest listed as
unsettled; a payment received just before the period's close and published with it is
booked by the worker where it lands (in the period, or in the next as a prior-period
adjustment of it) and reconcile agrees either way; on the quiet, closed period it exits
0. Real broker, real worker, real ClickHouse engine."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from comstream.publish import publish_events
from comstream.reconcile_cmd import build_report
from processors.events import Event, PaymentReceived, PeriodClosed
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import deployment, launch, wait_until

pytestmark = pytest.mark.integration

PERIOD = "2026-11"


def test_reconcile_on_a_live_pipeline_and_after_a_close_exits_0(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = deployment(kafka_bootstrap, tmp_path / "live")
    events = generated(orders=240, seed=17)
    n_dims = n_dimension_events(events)
    flow = events[n_dims:]
    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")

        def feed(chunks: list[list[Event]]) -> None:
            for chunk in chunks:
                publish_events(chunk, kafka_bootstrap, settings.topics)
                time.sleep(0.3)

        chunks = [flow[i : i + 25] for i in range(0, len(flow), 25)]
        feeder = threading.Thread(target=feed, args=(chunks,))
        feeder.start()
        live_runs = []
        try:
            while feeder.is_alive() or not live_runs:
                report = build_report(settings, PERIOD, settings.web_url, None)
                live_runs.append(
                    (report.exit_code, len(report.ledger.unsettled), report.events.total.pending)
                )
                assert report.exit_code == 0, (
                    report.ledger.paid_no_commission,
                    report.ledger.order_differences,
                    report.ledger.rep_differences,
                )
        finally:
            feeder.join()
        print("live runs (exit, unsettled orders, pending):", live_runs)

        # a payment received 0.4 s before the close, published with it
        paid = next(e for e in flow if isinstance(e, PaymentReceived))
        close_at = paid.received_at.replace(day=30, hour=23, minute=59, second=59)
        late = replace(
            paid,
            event_id="just-before-close",
            payment_id="just-before-close",
            amount=paid.amount / 2,
            received_at=close_at - timedelta(milliseconds=400),
            occurred_at=close_at - timedelta(milliseconds=400),
        )
        close = PeriodClosed(f"period-closed:{PERIOD}", close_at, PERIOD, "u-admin")
        publish_events([late, close], kafka_bootstrap, settings.topics)

        def quiet() -> bool:
            r = build_report(settings, PERIOD, settings.web_url, None)
            return r.events.total.pending == 0 and sum(r.in_flight.values()) == 0

        wait_until(quiet, 180, "a quiet pipeline")
        wait_until(lambda: PERIOD in worker.get("/api/status")["closed_periods"], 30, "closed")
        report = build_report(settings, PERIOD, settings.web_url, None)
        assert report.exit_code == 0, (
            report.ledger.paid_no_commission,
            report.ledger.order_differences,
            report.ledger.rep_differences,
        )
        assert report.ledger.unsettled == []
        assert build_report(settings, "2026-12", settings.web_url, None).exit_code == 0
    finally:
        worker.stop()
