"""Adversarial input: over a thousand malformed or invalid events planted among valid
ones. The worker never stops, every bad one lands in the dead-letter topic with its
reason, and every valid one counts exactly as in the batch replay."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.dlq import read_letters
from comstream.publish import publish_events
from comstream.replay import replay
from processors.events import Credit, Event, OrderLine, OrderPlaced, PaymentReceived
from schemas.codec import encode
from streams.kafka import flush, make_producer
from streams.routing import event_key, event_topic
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import deployment, launch, wait_until

pytestmark = pytest.mark.integration


def planted(valid: list[Event], rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(topic kind, value bytes, expected reason prefix) for each bad message."""
    orders = [e for e in valid if isinstance(e, OrderPlaced)]
    payments = [e for e in valid if isinstance(e, PaymentReceived)]
    bad: list[tuple[str, bytes, str]] = []
    kinds = ("orders", "payments", "customers", "reps", "plans")
    for _ in range(250):  # random bytes whose first byte is not the framing's magic 0
        body = bytes([rng.randrange(1, 256)]) + rng.randbytes(rng.randrange(0, 200))
        bad.append((rng.choice(kinds), body, "decode.error"))
    for _ in range(150):  # a valid record cut short
        data = encode(rng.choice(orders))
        bad.append(("orders", data[: rng.randrange(1, len(data) - 1)], "decode.error"))
    for _ in range(50):  # an unknown schema id
        bad.append(("payments", b"\x00\x00\x00\x00\x63" + rng.randbytes(20), "decode.error"))
    for i in range(100):  # another schema: a dead letter where an event belongs
        data = encode(replace(rng.choice(payments), event_id=f"x-{i}"))
        other = b"\x00\x00\x00\x00\x0a" + data[5:]
        bad.append(("payments", other, "decode.error"))
    for i in range(100):  # a negative payment against a real order
        p = replace(rng.choice(payments), event_id=f"neg-{i}", amount=Decimal("-5.00"))
        bad.append(("payments", encode(p), "invalid.amount_negative"))
    for i in range(50):  # an absurdly large payment
        p = replace(rng.choice(payments), event_id=f"big-{i}", amount=Decimal(10) ** 13)
        bad.append(("payments", encode(p), "invalid.amount_too_large"))
    for i in range(100):  # an unknown currency
        o = replace(
            rng.choice(orders), event_id=f"cur-{i}", order_id=f"bad-cur-{i}", currency="XQZ"
        )
        bad.append(("orders", encode(o), "invalid.currency_unknown"))
    for i in range(100):  # shares that do not sum to 1
        o = replace(
            rng.choice(orders),
            event_id=f"shr-{i}",
            order_id=f"bad-shr-{i}",
            rep_id=None,
            credits=(Credit("rep-001", Decimal("0.5")), Credit("rep-002", Decimal("0.4"))),
        )
        bad.append(("orders", encode(o), "invalid.shares_sum"))
    for i in range(50):  # a negative quantity
        base = rng.choice(orders)
        line = replace(base.lines[0], quantity=Decimal(-3))
        o = replace(base, event_id=f"qty-{i}", order_id=f"bad-qty-{i}", lines=(line,))
        bad.append(("orders", encode(o), "invalid.quantity_negative"))
    for i in range(50):  # a discount above 100%
        base = rng.choice(orders)
        line = OrderLine("l", "S", "hardware", Decimal(1), Decimal(10), Decimal("1.5"))
        o = replace(base, event_id=f"dsc-{i}", order_id=f"bad-dsc-{i}", lines=(line,))
        bad.append(("orders", encode(o), "invalid.discount_range"))
    for i in range(20):  # an id holding a control character (the stores' key separator)
        o = replace(rng.choice(orders), event_id=f"ctl-{i}", order_id=f"bad\x1f{i}")
        bad.append(("orders", encode(o), "invalid.id_characters"))
    for i in range(50):  # an empty event id
        p = replace(rng.choice(payments), event_id="", payment_id=f"empty-{i}")
        bad.append(("payments", encode(p), "invalid.missing_id"))
    return bad


def test_a_thousand_bad_events_are_dead_lettered_and_the_rest_counts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(2026)
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=150, seed=3)
    n_dims = n_dimension_events(events)
    valid_flow = events[n_dims:]
    bad = planted(events, rng)
    assert len(bad) >= 1000
    expected = replay(events).totals()

    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")
        topic_of = {
            "orders": settings.topics.orders,
            "payments": settings.topics.payments,
            "customers": settings.topics.customers,
            "reps": settings.topics.reps,
            "plans": settings.topics.plans,
        }
        # interleave: the bad ones fall among the valid flow at random positions
        stream: list[tuple[str, bytes | None, bytes]] = [
            (event_topic(e, settings.topics), event_key(e), encode(e)) for e in valid_flow
        ]
        for kind, value, _ in bad:
            pos = rng.randrange(len(stream) + 1)
            stream.insert(pos, (topic_of[kind], rng.randbytes(4), value))
        producer = make_producer(kafka_bootstrap)
        for topic, key, value in stream:
            producer.produce(topic, key=key, value=value)
            producer.poll(0)
        flush(producer)

        total = n_dims + len(stream)
        wait_until(lambda: worker.get("/api/status")["events_in"] >= total, 180, "all ingested")
        wait_until(lambda: worker.totals() == expected, 120, "valid events counted as replay")
        assert worker.proc.poll() is None, "the worker stopped"
        status = worker.get("/api/status")
        assert status["dead_letters"] == len(bad)
        assert status["ledger_rows"] == status["deltas_stored"]
        letters = list(read_letters(settings))
        assert len(letters) == len(bad)
        got = Counter(s.record.reason.split(":")[0] for s in letters)
        want = Counter(reason for _, _, reason in bad)
        assert got == want
        assert {s.record.value for s in letters} == {value for _, value, _ in bad}
    finally:
        worker.stop()

    # the command line shows them too
    env = dict(
        os.environ, KAFKA_BOOTSTRAP=kafka_bootstrap, COMSTREAM_TOPIC_PREFIX=settings.topics.prefix
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "comstream.cli",
            "dlq",
            "list",
            "--json",
            "--reason",
            "invalid.currency",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 100
    assert all(r["event"]["currency"] == "XQZ" for r in rows)


def test_a_message_a_stage_cannot_process_is_dead_lettered_not_lost(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Faust acknowledges the message an agent fails on and goes on with the next one; the
    worker turns such a failure into a ``processing.error`` letter with the original bytes
    instead of dropping the message, keeps running, and the rest still counts."""
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=40, seed=4)
    n_dims = n_dimension_events(events)
    expected = replay(events).totals()
    t = settings.topics
    poison = [
        (t.customer_stage, b"cust-x", b"not a stage message"),
        (t.order_stage, b"ord-x", b'["OrderPlaced", "truncated'),
        (t.rep_stage, b"rep-x", b"\x00\x01\x02"),
    ]
    publish_events(events[:n_dims], kafka_bootstrap, t)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")
        producer = make_producer(kafka_bootstrap)
        for topic, key, value in poison:
            producer.produce(topic, key=key, value=value)
        flush(producer)
        publish_events(events[n_dims:], kafka_bootstrap, t)
        wait_until(lambda: worker.totals() == expected, 120, "valid events counted as replay")
        wait_until(lambda: worker.get("/api/status")["dead_letters"] >= len(poison), 60, "letters")
        assert worker.proc.poll() is None, "the worker stopped"
        letters = [s.record for s in read_letters(settings)]
        assert sorted((r.topic, r.key, r.value) for r in letters) == sorted(poison)
        assert {r.reason for r in letters} == {"processing.error"}
        assert all(r.detail for r in letters)
    finally:
        worker.stop()


def test_payments_finer_than_their_currency_are_dead_lettered_alone(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SEMANTICS.md section 2, "Precision": a payment finer than its order's currency's
    minor unit (USD 10.001: it fits the schema's 4 places, so only the order stage, which
    knows the currency, can refuse it) goes to the dead-letter topic with
    ``invalid.amount_precision``, whether it arrives after its order or before it; every
    other event counts exactly as in a batch replay without it."""
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=40, seed=6)
    n_dims = n_dimension_events(events)
    orders = [e for e in events if isinstance(e, OrderPlaced)]
    assert {o.currency for o in orders} == {"USD"}

    def fine(event_id: str, order: OrderPlaced) -> PaymentReceived:
        at = order.placed_at + timedelta(hours=1)
        return PaymentReceived(event_id, at, order.order_id, event_id, Decimal("10.001"), at)

    after = [fine(f"fine-{i}", o) for i, o in enumerate(orders[:5])]
    late = replace(orders[5], event_id="late-order", order_id="late-o")
    late_fine = fine("late-fine", late)  # published before its order: kept, then refused
    late_good = replace(
        late_fine, event_id="late-good", payment_id="late-good", amount=Decimal("10.01")
    )
    valid = [*events, late, late_good]
    expected = replay(valid).totals()

    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    worker = launch(settings)
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 60, "CRM ingested")
        publish_events(
            [*events[n_dims:], *after, late_fine, late, late_good],
            kafka_bootstrap,
            settings.topics,
        )
        wait_until(lambda: worker.totals() == expected, 120, "valid events counted as replay")
        wait_until(lambda: worker.get("/api/status")["dead_letters"] >= 6, 60, "letters")
        assert worker.proc.poll() is None, "the worker stopped"
        letters = [s.record for s in read_letters(settings)]
        assert {r.reason for r in letters} == {"invalid.amount_precision"}
        assert {r.event_id for r in letters} == {p.event_id for p in [*after, late_fine]}
        assert all("USD" in r.detail and "10.001" in r.detail for r in letters)
        assert worker.totals() == expected
    finally:
        worker.stop()
