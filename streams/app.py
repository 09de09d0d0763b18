"""The Faust app: topics, tables and agents. Wiring only: decode, call ``processors``,
persist the state, send the outputs on.

Pipeline (ARCHITECTURE.md):

    upstream topics --ingest--> comstream.customer-stage (key customer_id)
                               comstream.order-stage    (key order_id)
                               commission.dlq           (bad input, with the original bytes)
    customer-stage --customers table--> order-stage (accepted orders, resolved credit)
    order-stage    --orders table-----> rep-stage (deltas, key rep_id), customer-stage
    rep-stage      --rep table--------> commission.deltas (Avro, key rep_id) --sink--> ClickHouse
    customer/order/rep stages ---------> commission.facts (BI facts of the states, key
                                         entity) --fact sink--> ClickHouse (docs/bi.md)

Each stage's table is written only by the agent that reads the stage's own topic, keyed
like that topic, so co-partitioning is explicit. Agent concurrency is 1. The customers and
rep-periods tables hold each state as a head plus one entry per order / applied id
(:mod:`processors.storage`); the rep-periods table is keyed ``rep|period|currency``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TP, EventT
from faust.web import Response, View

from processors import facts, payouts, serde, stages, storage
from processors.events import (
    CommissionDelta,
    CustomerChanged,
    DeadLetter,
    Event,
    PlanPublished,
    RepChanged,
)
from processors.validation import validate_event
from schemas.codec import DeadLetterRecord, decode_event, encode
from schemas.errors import CodecError
from sinks.clickhouse import Store

from . import faust_fixes
from .audit_sink import AuditSink
from .continuity import ContinuityGuard, StallWatch, first_waiting_record
from .dimensions import Dimensions
from .live import LedgerSignal
from .restart import ChangelogTally, counted_table
from .settings import Settings
from .sink import DeltaSink
from .users import Users

log = logging.getLogger(__name__)

FaustEvent = EventT[bytes]

# The exit status of a worker that could neither process a message nor dead-letter it.
EXIT_UNPROCESSED = 70
DEAD_LETTER_TIMEOUT_S = 30.0
STALL_CHECK_S = 5.0
DRAIN_QUIET_S = 0.5

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def no_store(view: View) -> Response:
    """The answer of a route that reads ClickHouse on a worker that runs no sink (404)."""
    return view.json(
        {"error": "this worker runs no ClickHouse sink; ask the one that does"}, status=404
    )


@dataclass
class WorkerState:
    """What the web views read about this worker process."""

    settings: Settings
    store: Store | None  # None: this worker runs no sink and serves no ClickHouse reads
    dims: Dimensions
    counters: Counter[str] = field(default_factory=Counter)
    sink: DeltaSink | None = None
    ledger_signal: LedgerSignal = field(default_factory=LedgerSignal)
    users: Users = field(default_factory=Users)
    audit_sink: AuditSink | None = None  # the sink worker's audit-log writer
    changelog: ChangelogTally = field(default_factory=ChangelogTally)
    tables_kept: bool = False  # this start kept the local tables (streams.restart)
    # set by build_app: stop fetching and wait until no agent holds a message
    drain: Callable[[float], Awaitable[bool]] | None = None


def build_app(ws: WorkerState) -> faust.App:
    """A Faust app for ``ws.settings``. Nothing is created at import time."""
    s = ws.settings
    t = s.topics
    n = s.partitions
    faust_fixes.apply()
    app = faust.App(
        s.app_id,
        broker=f"kafka://{s.bootstrap}",
        store="rocksdb://",
        datadir=str(s.data_dir / "worker"),
        topic_partitions=n,
        table_standby_replicas=s.standby_replicas,
        web_host=s.web_host,
        web_bind=s.web_host,
        web_port=s.web_port,
        web_tables_enabled=False,
        web_graph_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=s.producer_linger_ms / 1000,
        broker_commit_every=1000,
        broker_session_timeout=s.session_timeout_s,
        broker_heartbeat_interval=max(1, s.session_timeout_s // 4),
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        key_serializer="raw",
        value_serializer="raw",
        Table=counted_table(ws.changelog),
    )
    upstream = app.topic(t.customers, t.orders, t.payments, t.plans, t.periods, t.reps, **RAW)
    customer_topic = app.topic(t.customer_stage, partitions=n, **RAW)
    order_topic = app.topic(t.order_stage, partitions=n, **RAW)
    rep_topic = app.topic(t.rep_stage, partitions=n, **RAW)
    deltas_topic = app.topic(t.deltas, partitions=n, **RAW)
    dlq_topic = app.topic(t.dlq, partitions=1, **RAW)
    audit_topic = app.topic(t.audit, partitions=n, **RAW)
    facts_topic = app.topic(t.facts, partitions=n, **RAW)

    # bytes key and value types make Faust use the raw codec for the changelog too
    table_opts: dict[str, Any] = {
        "partitions": n,
        "default": None,
        "key_type": bytes,
        "value_type": bytes,
    }
    customers = app.Table("customers", **table_opts)
    orders = app.Table("orders", **table_opts)
    rep_periods = app.Table("rep-periods", **table_opts)
    split_stores: dict[int, Callable[..., tuple[Any, list[Any]]]] = {
        id(customers): storage.apply_customer,
        id(rep_periods): storage.apply_rep,
    }

    stage_topics = {
        stages.CUSTOMER_STAGE: customer_topic,
        stages.ORDER_STAGE: order_topic,
        stages.REP_STAGE: rep_topic,
    }

    async def dead_letter(
        event: FaustEvent, letter: DeadLetter, value: bytes | None = None
    ) -> Awaitable[Any]:
        """Send a dead letter carrying the message being processed (or ``value``); the
        result is awaitable and completes when the broker has acknowledged it."""
        msg = event.message
        record = DeadLetterRecord(
            reason=letter.reason,
            detail=letter.detail,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=value if value is not None else (msg.value or b""),
            event_id=letter.event_id,
            event_type=letter.event_type,
            dead_at=datetime.now(UTC),
        )
        sent = await dlq_topic.send(key=msg.key, value=encode(record))
        ws.counters["dead_letters"] += 1
        return sent

    async def send_outputs(event: FaustEvent, outputs: list[Any]) -> None:
        for out in outputs:
            if isinstance(out, DeadLetter):
                await dead_letter(event, out)
                continue
            target, key = stages.address(out)
            await stage_topics[target].send(key=key.encode(), value=serde.dumps(out))

    async def send_fact(fact: facts.Fact | None) -> None:
        """Send the BI fact of a state (None: the state has none yet). Re-sent after a
        crash replay it is identical, and the store keeps one row per version."""
        if fact is None:
            return
        if isinstance(fact, facts.OrderFact):
            key = "o:" + fact.order_id
        elif isinstance(fact, facts.CustomerFact):
            key = "c:" + fact.customer_id
        else:
            key = "r:" + fact.rep_id
        await facts_topic.send(key=key.encode(), value=serde.dumps(fact))
        ws.counters["facts_out"] += 1

    async def broadcast(event: Event) -> None:
        """Send ``event`` to every partition of the stages that apply it to all states."""
        payload = serde.dumps(event)
        for target in stages.broadcast_targets(event):
            for partition in range(n):
                await stage_topics[target].send(key=b"*", value=payload, partition=partition)

    def committed_offset(topic: str, partition: int) -> int | None:
        # the consumer's copy of the committed offsets, set when partitions are assigned
        offsets = getattr(app.consumer, "_committed_offset", {})
        value = offsets.get(TP(topic, partition))
        return value if isinstance(value, int) else None

    continuity = ContinuityGuard(
        s.bootstrap, s.app_id, committed_offset, lambda: app.consumer_generation_id
    )

    def exit_unread(why: str) -> None:
        """End the process at once: nothing more is acknowledged, and the restarted worker
        reads again from the committed offsets (the supervisor restarts on this status)."""
        log.critical("%s; exiting (%d) so that it is read again", why, EXIT_UNPROCESSED)
        print(f"comstream worker: {why}", file=sys.stderr, flush=True)
        logging.shutdown()
        os._exit(EXIT_UNPROCESSED)

    async def guarded(event: FaustEvent, handle: Callable[[FaustEvent], Awaitable[None]]) -> None:
        """Process one message so that an error cannot lose it. Faust acknowledges the
        message an agent is on when the agent's loop fails as well as when it moves on,
        and restarts a failed agent with the next message: an exception escaping here
        would drop the message without a trace. Instead it becomes a dead letter
        (``processing.error``, with the original bytes and the exception) and the worker
        goes on; when not even that can be delivered, or the worker is stopped halfway
        through the message, the process ends at once, before anything is acknowledged,
        and the message is read again after the restart (docs/exactly-once.md). Likewise
        when the runtime hands over a message past records it never handed over
        (:mod:`streams.continuity`)."""
        msg = event.message
        try:
            skip = await continuity.check(msg.topic, msg.partition, msg.offset)
            if skip is not None:
                exit_unread(f"before {msg.topic}[{msg.partition}]@{msg.offset}: {skip}")
            await handle(event)
            continuity.done()
        except asyncio.CancelledError:
            # Faust cancels its agents when the worker stops, and its stream iterator
            # acknowledges the message on the way out, half processed (some outputs sent,
            # others not). End the process first: the message is read again next start.
            stopping = app.should_stop
            log.warning(
                "%s while processing %s[%d]@%d; exiting before it is acknowledged",
                "stopped" if stopping else "cancelled",
                msg.topic,
                msg.partition,
                msg.offset,
            )
            logging.shutdown()
            os._exit(0 if stopping else EXIT_UNPROCESSED)
        except Exception as exc:
            log.exception("processing %s[%d]@%d failed", msg.topic, msg.partition, msg.offset)
            ws.counters["processing_errors"] += 1
            try:
                letter = DeadLetter("processing.error", f"{type(exc).__name__}: {exc}")
                await asyncio.wait_for(await dead_letter(event, letter), DEAD_LETTER_TIMEOUT_S)
            except BaseException:
                exit_unread(f"cannot dead-letter {msg.topic}[{msg.partition}]@{msg.offset}")
            continuity.done()

    agent_topics = {
        *(t.customers, t.orders, t.payments, t.plans, t.periods, t.reps),
        *(t.customer_stage, t.order_stage, t.rep_stage),
    }
    watch = StallWatch()

    def movement() -> tuple[Any, ...]:
        """Changes whenever the worker moves: messages handed over, states applied, a
        rebalance, a table recovery reading changelogs."""
        recovery = cast(Any, app.tables).recovery
        offsets = (*recovery.active_offsets.values(), *recovery.standby_offsets.values())
        return (
            continuity.handed,
            ws.counters["states_applied"],
            app.consumer_generation_id,
            sum(o for o in offsets if o is not None),
        )

    async def watch_for_stall() -> None:
        """End the worker when it stopped moving while a message is being processed or
        waits in an assigned partition (:class:`streams.continuity.StallWatch`)."""
        idle = watch.idle_for(movement())
        if idle < s.stall_after_s:
            return
        if continuity.in_flight > 0:
            exit_unread(f"stalled: nothing moved for {idle:.0f} s with a message in processing")
        starts = {
            (tp.topic, tp.partition): continuity.resume_point(tp.topic, tp.partition)
            for tp in app.consumer.assignment()
            if tp.topic in agent_topics
        }
        waiting = await asyncio.get_running_loop().run_in_executor(
            None, first_waiting_record, s.bootstrap, s.app_id, starts
        )
        if waiting is None:
            watch.reset()
            return
        topic, partition, offset = waiting
        exit_unread(
            f"stalled: nothing moved for {idle:.0f} s while {topic}[{partition}]@{offset} waits"
        )

    if s.stall_after_s > 0:
        app.timer(interval=STALL_CHECK_S)(watch_for_stall)

    async def drain(timeout: float) -> bool:
        """Before a clean stop: stop fetching, let the agents finish the message they hold
        and what waits in their queues. True when no message was handed over for
        ``DRAIN_QUIET_S`` and none is being processed: the stop then cancels every agent
        while it waits for a message, never halfway through one (``guarded`` ends the
        process in that case, and the next start rebuilds the tables). Messages fetched
        and not handed over are not acknowledged: they are read again after the restart."""
        consumer = app.consumer
        consumer.pause_partitions(consumer.assignment())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        handed, quiet_since = continuity.handed, loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            if continuity.handed != handed or continuity.in_flight > 0:
                handed, quiet_since = continuity.handed, loop.time()
            elif loop.time() - quiet_since >= DRAIN_QUIET_S:
                return True
        return False

    ws.drain = drain

    async def handle_input(event: FaustEvent) -> None:
        ws.counters["events_in"] += 1
        try:
            decoded = decode_event(event.message.value or b"")
        except CodecError as exc:
            await dead_letter(event, DeadLetter("decode.error", str(exc)))
            return
        letter = validate_event(decoded)
        if letter is None and isinstance(decoded, PlanPublished):
            letter = ws.dims.check_plan(decoded)
        if letter is not None:
            await dead_letter(event, letter)
            return
        if isinstance(decoded, PlanPublished):  # in the audit trail however published
            record = payouts.published_plan_record(
                decoded.plan_id, decoded.version, decoded.occurred_at, event.message.topic
            )
            await audit_topic.send(key=b"plans", value=serde.dumps(record))
        for target, key, message in stages.route_input(decoded):
            await stage_topics[target].send(key=key.encode(), value=serde.dumps(message))
        await broadcast(decoded)

    @app.agent(upstream, concurrency=1)
    async def ingest(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await guarded(event, handle_input)
            yield None

    def message_key(key: bytes) -> bytes:
        """The Kafka message key (rep id) of a rep-period table key
        ``rep|period|currency``: one state per period keeps a rep's state small however
        long the rep works (period and currency never hold ``|``)."""
        return key.rsplit(b"|", 2)[0]

    def state_keys(event: FaustEvent, message: Any, table: Any) -> list[bytes]:
        """The table keys a message applies to: a broadcast, every state of the
        event's partition; a rep-stage delta, the state of its (rep, period, currency);
        a rep's CRM change, every state of that rep; anything else, the message key.
        (Entry keys of split states, :mod:`processors.storage`, are not states.)"""
        partition = event.message.partition
        key: bytes = event.key or b""
        if isinstance(message, stages.BROADCAST_TYPES):
            owner = message_key if table is rep_periods else (lambda k: k)
            return [
                k
                for k in list(table.keys())
                if storage.ENTRY_MARK not in k and stages.partition_of(owner(k), n) == partition
            ]
        if table is rep_periods:
            if isinstance(message, CommissionDelta):
                rep_key = stages.rep_period_key(
                    message.rep_id, message.booked_period, message.currency
                )
                return [rep_key.encode()]
            mark = storage.ENTRY_MARK
            return [k for k in list(table.keys()) if mark not in k and message_key(k) == key]
        return [key]

    def table_put(table: Any) -> Callable[[bytes, bytes], None]:
        def put(key: bytes, value: bytes) -> None:
            table[key] = value

        return put

    async def run_stage(
        event: FaustEvent,
        table: Any,
        apply: Callable[[Any, Any], tuple[Any, list[Any]]],
    ) -> tuple[Any, list[Any], dict[bytes, Any]]:
        """Apply the event's message to each state it concerns (:func:`state_keys`);
        persist changed states; return the message, the outputs and each key's state
        after it. Customer and rep-period states are stored as a head and entries
        (:mod:`processors.storage`); order states whole."""
        message = serde.loads(event.message.value or b"")
        if isinstance(message, stages.BROADCAST_TYPES):
            ws.dims.apply_event(message)  # the dimension thread may not have it yet
        produced: list[Any] = []
        states: dict[bytes, Any] = {}
        split = split_stores.get(id(table))
        for key in state_keys(event, message, table):
            if split is not None:
                states[key], outputs = split(table.get, table_put(table), key, message, apply)
                ws.counters["states_applied"] += 1
                produced.extend(outputs)
                continue
            raw = table.get(key)
            state = None if raw is None else serde.loads(raw)
            new_state, outputs = apply(state, message)
            ws.counters["states_applied"] += 1
            if new_state is not state and new_state is not None:
                table[key] = serde.dumps(new_state)
            states[key] = new_state
            produced.extend(outputs)
        return message, produced, states

    async def handle_customer(event: FaustEvent) -> None:
        message, outputs, states = await run_stage(
            event,
            customers,
            lambda s, m: stages.customer_apply(s, m, ws.dims.reps, ws.dims.plans),
        )
        await send_outputs(event, outputs)
        if isinstance(message, CustomerChanged):
            await send_fact(facts.customer_fact(states.get(event.key or b"")))

    async def handle_order(event: FaustEvent) -> None:
        _, outputs, states = await run_stage(
            event,
            orders,
            lambda s, m: stages.order_apply(s, m, ws.dims.plans, ws.dims.closed_periods),
        )
        await send_outputs(event, outputs)
        if event.key != b"*":  # a broadcast (plan, closure) changes no order fact
            await send_fact(facts.order_fact(states.get(event.key or b"")))

    async def handle_rep(event: FaustEvent) -> None:
        message, outputs, _ = await run_stage(
            event,
            rep_periods,
            lambda s, m: stages.rep_apply(
                s, m, ws.dims.plans, ws.dims.reps, ws.dims.closed_periods
            ),
        )
        if isinstance(message, RepChanged):
            await send_fact(facts.rep_fact(message))
        passed = [message] if isinstance(message, CommissionDelta) else []
        for out in (*passed, *outputs):
            if isinstance(out, DeadLetter):
                await dead_letter(event, out)
                continue
            await deltas_topic.send(key=out.rep_id.encode(), value=encode(out))
            ws.counters["deltas_out"] += 1

    @app.agent(customer_topic, concurrency=1)
    async def customer_stage(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await guarded(event, handle_customer)
            yield None

    @app.agent(order_topic, concurrency=1)
    async def order_stage(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await guarded(event, handle_order)
            yield None

    @app.agent(rep_topic, concurrency=1)
    async def rep_stage(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await guarded(event, handle_rep)
            yield None

    return app
