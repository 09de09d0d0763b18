"""``comstream reconcile --period P``: the I/O around :mod:`comstream.reconcile`.

Reads, in this order (so that every letter of a handled message is in the snapshot):
the end offsets of the upstream topics and their messages up to those ends, the
worker's committed ingest offsets (consumer group = the Faust app id), the dead-letter
topic to its end, the downstream lag (stage topics, the sink's group), and the ledger's
per-order sums of the period (through the worker's ``/api/orders/commission``, or
directly with ``--dsn`` when no worker holds the embedded ClickHouse). No consumer group
is joined and nothing is committed.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from rich.console import Console
from rich.table import Table

from processors.events import Event
from processors.periods import is_period
from schemas.codec import decode_event
from schemas.errors import CodecError
from streams.kafka import KafkaUnavailable
from streams.settings import Settings

from .dlq import read_letters
from .errors import ComstreamError
from .reconcile import (
    DEFAULT_PAYMENT_WAIT,
    EXIT_UNAVAILABLE,
    LedgerRow,
    Report,
    Upstream,
    check_events,
    compare_ledger,
    expected_rows,
    letters_in_period,
    payment_exceptions,
    processing_order,
    uncredited,
    unsettled_work,
)


class ReconcileUnavailable(ComstreamError):
    """A source the check needs (Kafka, the worker's API, ClickHouse) did not answer."""


def _consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )


def _partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    meta = consumer.list_topics(topic, timeout=timeout)
    if topic not in meta.topics or meta.topics[topic].error is not None:
        raise KafkaUnavailable(f"topic {topic} does not exist")
    return sorted(meta.topics[topic].partitions)


def watermarks(
    consumer: Consumer, topics: Iterable[str], timeout: float = 30.0
) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (low, end) offsets now."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for topic in topics:
        for p in _partitions(consumer, topic, timeout):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            out[(topic, p)] = (low, high)
    return out


def read_upstream(
    consumer: Consumer,
    snapshot: dict[tuple[str, int], tuple[int, int]],
    timeout: float = 120.0,
) -> dict[tuple[str, int], list[Upstream]]:
    """Every message of each partition between its snapshot (low, end) offsets."""
    out: dict[tuple[str, int], list[Upstream]] = defaultdict(list)
    todo = {tp: end for tp, (low, end) in snapshot.items() if end > low}
    if not todo:
        return out
    consumer.assign([TopicPartition(t, p, snapshot[(t, p)][0]) for (t, p) in todo])
    deadline = time.monotonic() + timeout
    while todo:
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"timed out reading {sorted(todo)}")
        for msg in consumer.consume(5000, timeout=1.0):
            tp = (msg.topic() or "", msg.partition() or 0)
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    todo.pop(tp, None)
                    continue
                raise KafkaUnavailable(f"reading {tp}: {error}")
            offset = msg.offset() or 0
            end = todo.get(tp)
            if end is None or offset >= end:
                todo.pop(tp, None)
                continue
            out[tp].append(Upstream(tp[0], tp[1], offset, msg.timestamp()[1], msg.value()))
            if offset + 1 >= end:
                todo.pop(tp, None)
    consumer.unassign()
    return out


def committed_offsets(
    settings: Settings, group: str, tps: Iterable[tuple[str, int]], timeout: float = 30.0
) -> dict[tuple[str, int], int]:
    """The group's committed offsets (the next offset it would read); absent when none."""
    wanted = [TopicPartition(t, p) for t, p in tps]
    if not wanted:
        return {}
    consumer = _consumer(settings, group)
    try:
        got = consumer.committed(wanted, timeout=timeout)
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in got if tp.offset >= 0}


def in_flight(settings: Settings, consumer: Consumer) -> dict[str, int]:
    """Messages written downstream but not yet committed by their reader: the stage
    topics (the worker's group) and the deltas topic (the sink's group)."""
    t = settings.topics
    out: dict[str, int] = {}
    for group, topics in (
        (settings.app_id, (t.customer_stage, t.order_stage, t.rep_stage)),
        (f"{settings.app_id}-sink", (t.deltas,)),
    ):
        marks = watermarks(consumer, topics)
        done = committed_offsets(settings, group, marks)
        for (topic, p), (low, end) in marks.items():
            out[topic] = out.get(topic, 0) + max(0, end - max(low, done.get((topic, p), low)))
    return out


def in_flight_messages(
    settings: Settings, consumer: Consumer
) -> list[tuple[str, bytes | None, bytes | None]]:
    """The downstream messages not yet committed by their reader, as (stage, key,
    value): stage ``customer``, ``order``, ``rep`` (the worker's group) or ``deltas``
    (the sink's group)."""
    t = settings.topics
    stage_of = {
        t.customer_stage: "customer",
        t.order_stage: "order",
        t.rep_stage: "rep",
        t.deltas: "deltas",
    }
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for group, topics in (
        (settings.app_id, (t.customer_stage, t.order_stage, t.rep_stage)),
        (f"{settings.app_id}-sink", (t.deltas,)),
    ):
        marks = watermarks(consumer, topics)
        done = committed_offsets(settings, group, marks)
        for tp, (low, end) in marks.items():
            start = max(low, done.get(tp, low))
            if end > start:
                ranges[tp] = (start, end)
    out: list[tuple[str, bytes | None, bytes | None]] = []
    todo = dict(ranges)
    if not todo:
        return out
    consumer.assign([TopicPartition(tp[0], tp[1], start) for tp, (start, _) in todo.items()])
    deadline = time.monotonic() + 120
    while todo:
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"timed out reading {sorted(todo)}")
        for msg in consumer.consume(5000, timeout=1.0):
            tp = (msg.topic() or "", msg.partition() or 0)
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    todo.pop(tp, None)
                    continue
                raise KafkaUnavailable(f"reading {tp}: {error}")
            offset = msg.offset() or 0
            span = todo.get(tp)
            if span is None or offset >= span[1]:
                todo.pop(tp, None)
                continue
            out.append((stage_of[tp[0]], msg.key(), msg.value()))
            if offset + 1 >= span[1]:
                todo.pop(tp, None)
    consumer.unassign()
    return out


def read_newer(
    settings: Settings, snapshot: dict[tuple[str, int], tuple[int, int]]
) -> dict[tuple[str, int], list[Upstream]]:
    """The upstream messages published after ``snapshot`` was taken (up to now)."""
    consumer = _consumer(settings, f"{settings.app_id}-reconcile")
    try:
        now = watermarks(consumer, {t for t, _ in snapshot})
        later = {
            tp: (snapshot[tp][1] if tp in snapshot else low, end)
            for tp, (low, end) in now.items()
            if end > (snapshot[tp][1] if tp in snapshot else low)
        }
        return read_upstream(consumer, later)
    except KafkaException as exc:
        raise ReconcileUnavailable(f"Kafka at {settings.bootstrap}: {exc}") from exc
    finally:
        consumer.close()


def pending_events(
    messages: dict[tuple[str, int], list[Upstream]], committed: dict[tuple[str, int], int]
) -> list[Event | None]:
    """The upstream events at or after the worker's committed offsets (None: one that
    does not decode)."""
    out: list[Event | None] = []
    for tp, msgs in messages.items():
        done = committed.get(tp, 0)
        for m in msgs:
            if m.offset < done:
                continue
            try:
                out.append(decode_event(m.value) if m.value is not None else None)
            except CodecError:
                out.append(None)
    return out


def ledger_rows(period: str, url: str | None, dsn: str | None) -> tuple[list[LedgerRow], str]:
    """The ledger's per-order sums of the deltas caused in ``period`` (wherever booked)
    and where they came from."""
    if dsn:
        from sinks.clickhouse import SinkError, Store
        from sinks.reconcile import order_commission

        try:
            store = Store(dsn)
            try:
                rows = order_commission(store, period, "origin")
            finally:
                store.close()
        except SinkError as exc:
            raise ReconcileUnavailable(str(exc)) from exc
        source = dsn
    else:
        from .leaderboard import WorkerUnavailable, get_json

        assert url is not None
        try:
            body = get_json(url, f"/api/orders/commission?period={period}&by=origin", timeout=120)
        except WorkerUnavailable as exc:
            raise ReconcileUnavailable(
                f"{exc} (is the worker running? without one, use --dsn)"
            ) from exc
        rows = body["rows"]
        source = url
    return [
        LedgerRow(
            r["order_id"], r["rep_id"], r["currency"], Decimal(str(r["amount"])), int(r["deltas"])
        )
        for r in rows
    ], source


def build_report(
    settings: Settings,
    period: str,
    url: str | None,
    dsn: str | None,
    payment_wait: timedelta = DEFAULT_PAYMENT_WAIT,
) -> Report:
    """Read everything and reconcile (see the module docstring for the order)."""
    t = settings.topics
    upstream = t.upstream
    rank = {
        topic: i
        for i, topic in enumerate((t.reps, t.plans, t.periods, t.customers, t.orders, t.payments))
    }
    consumer = _consumer(settings, f"{settings.app_id}-reconcile")
    try:
        try:
            snapshot = watermarks(consumer, upstream)
            messages = read_upstream(consumer, snapshot)
            committed = committed_offsets(settings, settings.app_id, snapshot)
            letters = list(read_letters(settings))
            flight = in_flight(settings, consumer)
            flying = in_flight_messages(settings, consumer)
        except KafkaException as exc:
            raise ReconcileUnavailable(f"Kafka at {settings.bootstrap}: {exc}") from exc
    finally:
        consumer.close()
    ordered = processing_order([messages[tp] for tp in sorted(messages)], rank)
    events = check_events(
        ordered,
        committed,
        (s.record for s in letters),
        upstream,
        snapshot,
        compacted=(t.customers, t.reps, t.plans, t.periods),
    )
    rows, source = ledger_rows(period, url, dsn)
    # the worker went on while this ran: what reached the upstream topics after the
    # snapshot may already be in the ledger that was just read, and is not settled
    newer = read_newer(settings, snapshot)
    overpaid, waiting = payment_exceptions(events.engine, datetime.now(UTC), payment_wait)
    expected = expected_rows(events.engine.deltas, period)
    pending = [*pending_events(messages, committed), *pending_events(newer, {})]
    unsettled = unsettled_work(pending, flying, events.engine)
    ledger = compare_ledger(expected, rows, events.payments, unsettled)
    return Report(
        period=period,
        events=events,
        ledger=ledger,
        ledger_source=source,
        uncredited=uncredited(events.engine, period),
        overpaid=overpaid,
        waiting_payments=waiting,
        dead_letters=letters_in_period(
            ((s.offset, s.record) for s in letters),
            period,
            events.occurred_at,
            events.occurred_by_event,
        ),
        in_flight=flight,
    )


# ---------------------------------------------------------------------------- output


def _table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(f"{v:,.2f}" if isinstance(v, Decimal) else str(v) for v in row))
    return table


def render(report: Report, console: Console) -> None:
    """The report as rich tables, the verdict last."""
    ev = report.events
    balance_rows = [
        (b.topic, b.events_in, b.processed, b.dead_lettered, b.pending, b.unaccounted)
        for b in (*ev.topics.values(), ev.total)
    ]
    console.print(
        _table(
            "events in = processed + dead-lettered + pending (+ unaccounted)",
            ("topic", "in", "processed", "dead-lettered", "pending", "unaccounted"),
            balance_rows,
        )
    )
    if ev.issues:
        console.print(
            _table(
                f"imbalance: {len(ev.issues)} issue(s)",
                ("kind", "source", "event", "detail"),
                (
                    (i.kind, f"{i.topic}[{i.partition}]@{i.offset}", i.event_id or "", i.detail)
                    for i in ev.issues
                ),
            )
        )
    flight = sum(report.in_flight.values())
    console.print(
        f"in flight downstream (stages, sink): {flight}; "
        f"letters whose source is gone or beyond the snapshot: {ev.letters_ignored}; "
        f"letters resolved by a replay: {ev.letters_replayed}; "
        f"ledger read from {report.ledger_source}"
    )
    lc = report.ledger
    if lc.unsettled:
        left = "every order" if lc.unsettled == ["*"] else f"{len(lc.unsettled)} orders"
        console.print(f"not compared, not settled yet (input pending or work in flight): {left}")
    console.print(
        _table(
            f"paid, no commission in {report.period}: {len(lc.paid_no_commission)}",
            ("order", "payments", "paid", "expected"),
            (
                (
                    r["order_id"],
                    r["payments"],
                    r["paid"],
                    ", ".join(
                        f"{e['rep_id']} {e['amount']} {e['currency']}" for e in r["expected"]
                    ),
                )
                for r in lc.paid_no_commission
            ),
        )
    )
    if lc.order_differences:
        console.print(
            _table(
                f"per-order differences in {report.period}: {len(lc.order_differences)}",
                ("order", "rep", "currency", "expected", "ledger", "difference"),
                (
                    (
                        r["order_id"] or "(accelerator)",
                        r["rep_id"],
                        r["currency"],
                        r["expected"],
                        r["ledger"],
                        r["difference"],
                    )
                    for r in lc.order_differences
                ),
            )
        )
    if lc.rep_differences:
        console.print(
            _table(
                f"per-rep differences in {report.period}: {len(lc.rep_differences)}",
                ("rep", "currency", "expected", "ledger", "difference"),
                (
                    (r["rep_id"], r["currency"], r["expected"], r["ledger"], r["difference"])
                    for r in lc.rep_differences
                ),
            )
        )
    console.print(
        _table(
            f"overpaid orders (paid more than the order total): {len(report.overpaid)}",
            ("order", "currency", "total", "paid", "excess"),
            (
                (r["order_id"], r["currency"], r["total"], r["paid"], r["excess"])
                for r in report.overpaid
            ),
        )
    )
    console.print(
        _table(
            f"payments waiting for their order: {len(report.waiting_payments)}",
            ("order", "payments", "amount", "first received", "hours waiting"),
            (
                (
                    r["order_id"],
                    r["payments"],
                    r["amount"],
                    r["first_received_at"],
                    r["waiting_hours"],
                )
                for r in report.waiting_payments
            ),
        )
    )
    console.print(
        _table(
            f"uncredited orders placed in or before {report.period}: {len(report.uncredited)}",
            ("order", "customer", "placed", "total", "paid", "cancelled"),
            (
                (
                    r["order_id"],
                    r["customer_id"],
                    r["placed_at"],
                    r["total"],
                    r["paid"],
                    r["cancelled"],
                )
                for r in report.uncredited
            ),
        )
    )
    console.print(
        _table(
            f"dead letters of {report.period}: {len(report.dead_letters)}",
            ("#", "reason", "from", "event", "occurred", "detail"),
            (
                (
                    r["dlq_offset"],
                    r["reason"],
                    f"{r['topic']}[{r['partition']}]@{r['offset']}",
                    f"{r['event_type'] or '?'} {r['event_id'] or ''}".strip(),
                    r["occurred_at"] or "undated",
                    r["detail"],
                )
                for r in report.dead_letters
            ),
        )
    )
    if flight and not lc.ok:
        console.print(
            f"[yellow]note: {flight} messages are still in flight downstream; differences "
            "may close once they reach the ledger: re-run when in flight is 0[/]"
        )
    verdict = {
        0: "[green]balanced; the ledger agrees[/]",
        1: "[red]events do NOT balance[/]",
        3: "[red]events balance, but the ledger misses or differs from commission[/]",
    }[report.exit_code]
    total = ev.total
    console.print(
        f"{verdict}: in {total.events_in} = processed {total.processed} + dead-lettered "
        f"{total.dead_lettered} + pending {total.pending}"
        + (f" + unaccounted {total.unaccounted}" if total.unaccounted else "")
    )


def reconcile_command(
    settings: Settings,
    period: str,
    fmt: str,
    url: str | None,
    dsn: str | None,
    payment_wait_hours: float = DEFAULT_PAYMENT_WAIT.total_seconds() / 3600,
) -> int:
    """Run the check and print it; the exit status is in docs/reconcile.md."""
    if not is_period(period):
        print(f"--period {period!r}: expected YYYY-MM or YYYY-Qn", file=sys.stderr)
        return 2
    if not payment_wait_hours >= 0:
        print(f"--payment-wait {payment_wait_hours}: expected hours >= 0", file=sys.stderr)
        return 2
    wait = timedelta(hours=payment_wait_hours)
    try:
        report = build_report(settings, period, url or settings.web_url, dsn, wait)
    except (ReconcileUnavailable, KafkaUnavailable) as exc:
        print(f"reconcile: cannot check: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if fmt == "json":
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        render(report, Console())
    return report.exit_code
