"""The floor of the worker's design: Faust moving the worker's messages with no work.

    python -m bench.faust_floor --events 20000

A Faust app with the worker's shape and settings (ingest, customer, order and rep stages,
concurrency 1, RocksDB tables with changelogs, acks=all) whose agents do no commission
work: each message is forwarded and tables are written as often, per flow event, as the
real worker does (:class:`Shape`; the order stage writes one order state per message).
The payloads are opaque bytes of the real messages' sizes. No ClickHouse sinks. The time
from the first publish until every message reached the output topic bounds what any work
inside this design can reach on this machine: the real worker also decodes, computes,
encodes and inserts into ClickHouse in the same process.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.settings import REPO_ROOT


@dataclass(frozen=True)
class Shape:
    """Messages per flow event (an order or payment event), measured on the real worker:
    ``python -m bench.e2e_bench --orders 3000`` (``plans/rich.yaml``) prints them."""

    to_customer: float = 0.48  # customer-stage messages (orders, cancellations, CRM)
    to_rep: float = 0.46  # rep-stage messages (each carries a delta)
    deltas: float = 0.87  # deltas out of the rep stage (with accelerators)
    customer_writes: float = 2.85  # changelog writes per customer-stage message
    rep_writes: float = 1.9  # per rep-stage message: heads and applied entries
    facts: float = 0.49  # BI facts per flow event
    payload: int = 400  # bytes per message and per state entry
    order_state: int = 2600  # bytes of an order state (mean, bench.state_sizes)


RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


class Quota:
    """Turns a fractional rate into whole counts: ``take(r)`` adds ``r`` and returns
    how many whole units are due."""

    def __init__(self) -> None:
        self.acc = 0.0

    def take(self, rate: float) -> int:
        self.acc += rate
        whole = int(self.acc)
        self.acc -= whole
        return whole


def run_app(args: argparse.Namespace) -> None:
    """The worker side: a Faust app of the worker's shape with agents that do no work."""
    import faust

    from streams import faust_fixes

    shape = shape_of(args)
    faust_fixes.apply()
    n = args.partitions
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="rocksdb://",
        datadir=str(Path(args.root) / "worker"),
        topic_partitions=n,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    p = args.prefix
    upstream = app.topic(f"{p}in", **RAW)
    customer_topic = app.topic(f"{p}customer-stage", partitions=n, **RAW)
    order_topic = app.topic(f"{p}order-stage", partitions=n, **RAW)
    rep_topic = app.topic(f"{p}rep-stage", partitions=n, **RAW)
    out_topic = app.topic(f"{p}out", partitions=n, **RAW)
    facts_topic = app.topic(f"{p}facts", partitions=n, **RAW)
    opts: dict[str, Any] = {"partitions": n, "default": None}
    opts.update(key_type=bytes, value_type=bytes)
    customers = app.Table("customers", **opts)
    orders = app.Table("orders", **opts)
    reps = app.Table("rep-periods", **opts)
    payload = b"x" * shape.payload
    order_state = b"o" * shape.order_state
    quotas = {name: Quota() for name in ("customer", "rep", "out", "facts", "cw", "rw")}

    async def write(table: Any, key: bytes, times: int) -> None:
        for i in range(times):
            table[key + b"#%d" % i] = payload

    @app.agent(upstream, concurrency=1)
    async def ingest(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            key = event.key or b""
            if quotas["customer"].take(shape.to_customer):
                await customer_topic.send(key=key, value=payload)
            else:
                await order_topic.send(key=key, value=payload)
            yield None

    @app.agent(customer_topic, concurrency=1)
    async def customer_stage(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            key = event.key or b""
            _ = customers.get(key)
            await write(customers, key, quotas["cw"].take(shape.customer_writes))
            await order_topic.send(key=key, value=payload)
            yield None

    @app.agent(order_topic, concurrency=1)
    async def order_stage(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            key = event.key or b""
            _ = orders.get(key)
            orders[key] = order_state
            for i in range(quotas["rep"].take(shape.to_rep)):
                await rep_topic.send(key=key + b"%d" % i, value=payload)
            for _i in range(quotas["facts"].take(shape.facts)):
                await facts_topic.send(key=key, value=payload)
            yield None

    @app.agent(rep_topic, concurrency=1)
    async def rep_stage(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            key = event.key or b""
            _ = reps.get(key)
            await write(reps, key, quotas["rw"].take(shape.rep_writes))
            for _i in range(quotas["out"].take(shape.deltas / shape.to_rep)):
                await out_topic.send(key=key, value=payload)
            yield None

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.spinner = None
    sys.argv = [sys.argv[0], "worker"]
    worker.execute_from_commandline()


def shape_of(args: argparse.Namespace) -> Shape:
    return Shape(**{name: getattr(args, name) for name in Shape.__dataclass_fields__})


def expected_out(shape: Shape, events: int) -> int:
    """How many messages reach the output topic: the quotas taken in any order give the
    same counts, since each take adds the same rate."""
    rep, out = Quota(), Quota()
    rep_messages = sum(rep.take(shape.to_rep) for _ in range(events))
    return sum(out.take(shape.deltas / shape.to_rep) for _ in range(rep_messages))


def topic_count(consumer: Consumer, topic: str, partitions: int) -> int:
    return sum(
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
        for p in range(partitions)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--partitions", type=int, default=4)
    defaults = Shape()
    for name in Shape.__dataclass_fields__:
        kind = int if name in ("payload", "order_state") else float
        ap.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(defaults, name))
    ap.add_argument("--run-app", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--app-id", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_app:
        run_app(args)
        return

    from comstream.broker import LocalBroker
    from tests.integration.workers import free_port

    root = REPO_ROOT / "var" / "bench-floor"
    shutil.rmtree(root, ignore_errors=True)
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    if not bootstrap:
        broker = LocalBroker(free_port(), free_port(), root / "kafka")
        bootstrap = broker.start()
    tag = uuid.uuid4().hex[:8]
    prefix = f"f{tag}."
    app_id = f"floor-{tag}"
    n = args.partitions
    proc = None
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        names = ["in", "customer-stage", "order-stage", "rep-stage", "out", "facts"]
        futures = admin.create_topics([NewTopic(prefix + name, n, 1) for name in names])
        for future in futures.values():
            future.result(30)
        expected = expected_out(shape_of(args), args.events)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{tag}"})
        log_path = root / "worker.log"
        root.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "bench.faust_floor", "--run-app"]
        argv += ["--bootstrap", bootstrap, "--app-id", app_id, "--prefix", prefix]
        argv += ["--root", str(root), "--partitions", str(n)]
        for name in Shape.__dataclass_fields__:
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        # the app is up when it has joined the group and created its changelogs
        deadline = time.monotonic() + 120
        while not any("changelog" in t for t in admin.list_topics(timeout=30).topics):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the app did not start; see {log_path}")
            time.sleep(0.5)
        time.sleep(5)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        payload = b"x" * args.payload
        t0 = time.perf_counter()
        for i in range(args.events):
            producer.produce(prefix + "in", key=b"k%d" % (i % 3001), value=payload)
            if i % 10000 == 0:
                producer.poll(0)
        producer.flush(60)
        t_pub = time.perf_counter() - t0
        while (done := topic_count(consumer, prefix + "out", n)) < expected:
            if proc.poll() is not None:
                raise SystemExit(f"the app stopped; see {log_path}")
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        sizes = {name: topic_count(consumer, prefix + name, n) for name in names}
        changelogs = [t for t in admin.list_topics(timeout=30).topics if "changelog" in t]
        for name in changelogs:
            sizes[name] = topic_count(consumer, name, n)
        consumer.close()
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
        print(f"flow events: {args.events:,}; published in {t_pub:.1f} s; out: {done:,}")
        total = sum(sizes.values())
        print(f"messages written: {total:,} ({total / args.events:.2f} per flow event)")
        for name, count in sorted(sizes.items(), key=lambda kv: -kv[1]):
            print(f"  {name}: {count:,} ({count / args.events:.2f})")
        print(f"Faust, no work: {elapsed:.1f} s, {args.events / elapsed:,.0f} flow events/s")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if broker is not None:
            broker.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
