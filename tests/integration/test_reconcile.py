"""``comstream reconcile`` against the real broker, a real worker and the real ClickHouse
engine: a generated stream with planted bad events balances exactly; events published
while the worker is down are pending (not a failure); a ledger missing a paid order's
deltas exits 3; a bad message skipped without a dead letter exits 1."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from comstream.publish import publish_events
from comstream.reconcile_cmd import build_report
from processors.events import Event, OrderPlaced, PaymentReceived
from schemas.codec import encode
from streams.kafka import flush, make_producer
from streams.routing import event_key, event_topic
from streams.settings import Settings
from tests.integration.test_pipeline import START, generated, n_dimension_events
from tests.integration.workers import deployment, launch, wait_until

pytestmark = pytest.mark.integration

PERIOD = "2026-11"


def planted(valid: list[Event], settings: Settings, rng: random.Random) -> list[tuple[str, bytes]]:
    """(topic, value) of each bad message: refused at ingest or by a stage."""
    t = settings.topics
    orders = [e for e in valid if isinstance(e, OrderPlaced)]
    payments = [e for e in valid if isinstance(e, PaymentReceived)]
    bad: list[tuple[str, bytes]] = []
    for _ in range(20):  # random bytes
        topic = rng.choice((t.orders, t.payments, t.customers))
        bad.append((topic, bytes([rng.randrange(1, 256)]) + rng.randbytes(30)))
    for i in range(10):  # a negative payment
        p = replace(rng.choice(payments), event_id=f"neg-{i}", amount=Decimal("-1.00"))
        bad.append((t.payments, encode(p)))
    for i in range(10):  # an unknown currency
        o = replace(rng.choice(orders), event_id=f"cur-{i}", order_id=f"cur-{i}", currency="XQZ")
        bad.append((t.orders, encode(o)))
    return bad


def stage_refused(valid: list[Event], rng: random.Random) -> list[Event]:
    """Valid on their own, refused by a stage: an order id placed again by another event,
    a payment id applied twice. Published after the original (same key, same partition)."""
    orders = [e for e in valid if isinstance(e, OrderPlaced)]
    payments = [e for e in valid if isinstance(e, PaymentReceived)]
    out: list[Event] = []
    for i, o in enumerate(rng.sample(orders, 3)):
        out.append(replace(o, event_id=f"again-{i}"))
    for i, p in enumerate(rng.sample(payments, 3)):
        out.append(replace(p, event_id=f"twice-{i}"))
    return out


def run_cli(settings: Settings, *args: str) -> tuple[int, dict[str, Any], str]:
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP=settings.bootstrap,
        COMSTREAM_TOPIC_PREFIX=settings.topics.prefix,
        COMSTREAM_APP_ID=settings.app_id,
        COMSTREAM_DATA_DIR=str(settings.data_dir),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "comstream.cli", "reconcile", "--period", PERIOD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    body = json.loads(proc.stdout) if "--format" in args and proc.stdout.strip() else {}
    return proc.returncode, body, proc.stdout + proc.stderr


def counts(body: dict[str, Any], topic: str | None = None) -> tuple[int, int, int, int, int]:
    rows = body["balance"]["topics"]
    b = body["balance"]["total"] if topic is None else next(r for r in rows if r["topic"] == topic)
    return b["events_in"], b["processed"], b["dead_lettered"], b["pending"], b["unaccounted"]


def test_reconcile_balances_and_catches_what_is_missing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(44)
    settings = deployment(kafka_bootstrap, tmp_path / "run")
    t = settings.topics
    events = generated(orders=120, seed=8)
    n_dims = n_dimension_events(events)
    flow = events[n_dims:]
    bad = planted(events, settings, rng)
    refused = stage_refused(events, rng)

    publish_events(events[:n_dims], kafka_bootstrap, t)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")
        stream: list[tuple[str, bytes | None, bytes]] = [
            (event_topic(e, t), event_key(e), encode(e)) for e in flow
        ]
        for topic, value in bad:
            stream.insert(rng.randrange(len(stream) + 1), (topic, rng.randbytes(4), value))
        stream += [(event_topic(e, t), event_key(e), encode(e)) for e in refused]
        # silent money (issue 17): an overpayment of a paid order, a payment of no order
        paid = next(e for e in flow if isinstance(e, PaymentReceived))
        silent = [
            replace(paid, event_id="over-1", payment_id="over-1", amount=Decimal("999999999.00")),
            replace(paid, event_id="ghost-1", payment_id="ghost-1", order_id="ghost-order"),
        ]
        stream += [(event_topic(e, t), event_key(e), encode(e)) for e in silent]
        producer = make_producer(kafka_bootstrap)
        for topic, key, value in stream:
            producer.produce(topic, key=key, value=value)
            producer.poll(0)
        flush(producer)
        total = n_dims + len(stream)
        n_bad = len(bad) + len(refused)

        def settled() -> bool:
            report = build_report(settings, PERIOD, settings.web_url, None)
            return (
                report.events.total.pending == 0
                and sum(report.in_flight.values()) == 0
                and report.exit_code == 0
            )

        wait_until(lambda: worker.get("/api/status")["events_in"] >= total, 180, "all ingested")
        wait_until(settled, 180, "reconcile balanced with nothing pending")

        code, body, out = run_cli(settings, "--format", "json", "--url", settings.web_url)
        assert code == 0, out
        assert body["balanced"] and body["ledger_ok"]
        assert counts(body) == (total, total - n_bad, n_bad, 0, 0)
        n_orders = sum(1 for topic, _, _ in stream if topic == t.orders)
        orders_bad = sum(1 for topic, _ in bad if topic == t.orders) + 3
        assert counts(body, t.orders) == (n_orders, n_orders - orders_bad, orders_bad, 0, 0)
        assert body["issues"] == []
        assert body["paid_no_commission"] == []
        assert body["order_differences"] == [] and body["rep_differences"] == []
        reasons = Counter(r["reason"].split(":")[0] for r in body["dead_letters"])
        # letters of the period: all but the random bytes are dated by their event
        assert reasons["invalid.amount_negative"] == 10
        assert reasons["invalid.currency_unknown"] == 10
        assert reasons["conflict.order_exists"] == 3
        assert reasons["conflict.duplicate_payment_id"] == 3
        assert reasons["decode.error"] == 20  # dated by when the worker refused them
        assert [o["order_id"] for o in body["overpaid"]] == [paid.order_id]
        assert Decimal(body["overpaid"][0]["excess"]) > Decimal("999000000")
        assert [(w["order_id"], w["payments"]) for w in body["waiting_payments"]] == [
            ("ghost-order", 1)
        ]
        # the table format says the same, and the worker's own counters agree
        code, _, text = run_cli(settings, "--url", settings.web_url)
        assert code == 0, text
        assert f"in {total} = processed {total - n_bad} + dead-lettered {n_bad} + pending 0" in (
            " ".join(text.split())
        )
        assert worker.get("/api/status")["dead_letters"] == n_bad
    finally:
        worker.stop()

    # published while no worker runs: pending, which is not an imbalance (ledger via --dsn)
    late = [
        replace(e, event_id=f"late-{i}", order_id=f"late-{i}")
        for i, e in enumerate([e for e in flow if isinstance(e, OrderPlaced)][:4])
    ]
    late_pay = [
        PaymentReceived(
            f"late-pay-{i}",
            START + timedelta(days=3),
            o.order_id,
            f"lp-{i}",
            Decimal(10),
            START + timedelta(days=3),
        )
        for i, o in enumerate(late)
    ]
    publish_events([*late, *late_pay], kafka_bootstrap, t)
    dsn = settings.clickhouse_dsn
    code, body, out = run_cli(settings, "--format", "json", "--dsn", dsn)
    assert code == 0, out
    assert counts(body) == (total + 8, total - n_bad, n_bad, 8, 0)

    # a copy of the ledger without one paid order's deltas: "paid, no commission", exit 3
    copy = tmp_path / "ledger-copy"
    shutil.copytree(settings.data_dir / "clickhouse", copy, symlinks=True)
    victim = drop_a_paid_order(f"chdb://{copy}")
    code, body, out = run_cli(settings, "--format", "json", "--dsn", f"chdb://{copy}")
    assert code == 3, out
    assert body["balanced"] and not body["ledger_ok"]
    assert [r["order_id"] for r in body["paid_no_commission"]] == [victim]
    assert body["rep_differences"]  # the victim's reps are short by its commission

    # a bad message the worker's group skipped without a dead letter: lost, exit 1
    producer = make_producer(kafka_bootstrap)
    producer.produce(t.reps, key=b"r", value=b"\x05not avro")
    flush(producer)
    skip_past(settings, t.reps)
    code, body, out = run_cli(settings, "--format", "json", "--dsn", dsn)
    assert code == 1, out
    assert not body["balanced"]
    assert [(i["kind"], i["topic"]) for i in body["issues"]] == [("lost", t.reps)]
    assert counts(body) == (total + 9, total - n_bad, n_bad, 8, 1)


DROP_A_PAID_ORDER = """
import sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn=sys.argv[1])
rows = c.query(
    "SELECT order_id FROM commission_deltas FINAL WHERE booked_period = {p:String} "
    "AND order_id != '' GROUP BY order_id "
    "HAVING countIf(cause_event_type = 'PaymentReceived') > 0 AND sum(amount) > 0 "
    "ORDER BY order_id LIMIT 1",
    parameters={"p": sys.argv[2]},
).result_rows
victim = rows[0][0]
c.command(
    "ALTER TABLE commission_deltas DELETE WHERE order_id = {o:String} "
    "SETTINGS mutations_sync = 1",
    parameters={"o": victim},
)
print(victim)
"""


def drop_a_paid_order(dsn: str) -> str:
    """Delete every delta of one order that was paid and commissioned in the period, in
    its own process (chDB: one process per data path); returns its id."""
    proc = subprocess.run(
        [sys.executable, "-c", DROP_A_PAID_ORDER, dsn, PERIOD],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def skip_past(settings: Settings, topic: str) -> None:
    """Commit the worker's group offset of ``topic`` to its end, as a worker that
    dropped a message without a dead letter would have."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": settings.app_id})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.commit(offsets=[TopicPartition(topic, 0, high)], asynchronous=False)
    finally:
        consumer.close()
