"""End-to-end throughput of one worker: publish to queryable in ClickHouse, side by side
with a plain aiokafka consume-and-produce loop over the same messages on the same broker.

    python -m bench.e2e_bench --orders 5000

Starts its own broker (or uses KAFKA_BOOTSTRAP), a fresh deployment under var/bench-e2e,
publishes the CRM first, then the whole order flow at once, and measures the time until
the ledger holds every delta the batch replay produces (and the totals are equal).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from comstream.broker import LocalBroker
from comstream.demo import plan_event
from comstream.generator import DemoStream, simulated_clock
from comstream.publish import publish_events
from comstream.replay import replay
from processors.events import CustomerChanged, Event, PlanPublished, RepChanged
from streams.settings import REPO_ROOT
from tests.integration.workers import deployment, free_port, launch, wait_until

START = datetime(2026, 11, 2, tzinfo=UTC)


def events_for(orders: int) -> tuple[list[Event], list[Event]]:
    stream = DemoStream(seed=42)
    flow = list(stream.events(simulated_clock(START, timedelta(seconds=30)), orders=orders))
    dims: list[Event] = [plan_event(REPO_ROOT / "plans" / "rich.yaml", START)]
    dims += stream.dimensions(START)
    dims += [e for e in flow if isinstance(e, CustomerChanged)]
    return dims, [
        e for e in flow if not isinstance(e, CustomerChanged | PlanPublished | RepChanged)
    ]


async def plain_loop(bootstrap: str, topics: list[str], out_topic: str, count: int) -> float:
    """Consume ``count`` messages from ``topics`` and produce each to ``out_topic``."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"plain-{time.time()}",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    seen = 0
    t0 = time.perf_counter()
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                for rec in records:
                    await producer.send(out_topic, key=rec.key, value=rec.value)
                    seen += 1
        await producer.flush()
        return time.perf_counter() - t0
    finally:
        await consumer.stop()
        await producer.stop()


def topic_sizes(bootstrap: str, admin: AdminClient) -> dict[str, int]:
    """Messages written to each topic of the deployment (sum of high watermarks)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-sizes"})
    try:
        sizes: dict[str, int] = {}
        for name, meta in admin.list_topics(timeout=30).topics.items():
            if name.startswith("__"):
                continue
            sizes[name] = sum(
                consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30)[1]
                for p in meta.partitions
            )
        return sizes
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--producer-linger-ms", type=int, default=None)
    args = parser.parse_args()
    root = REPO_ROOT / "var" / "bench-e2e"
    shutil.rmtree(root, ignore_errors=True)
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    if not bootstrap:
        broker = LocalBroker(free_port(), free_port(), root / "kafka")
        bootstrap = broker.start()
    try:
        dims, flow = events_for(args.orders)
        reference = replay([*dims, *flow])
        expected = reference.totals()
        n_deltas = len(reference.deltas)
        settings = deployment(bootstrap, root / "worker", partitions=4)
        if args.producer_linger_ms is not None:
            settings = replace(settings, producer_linger_ms=args.producer_linger_ms)
        print(f"worker producer linger: {settings.producer_linger_ms} ms", flush=True)
        publish_events(dims, bootstrap, settings.topics)
        worker = launch(settings)
        try:
            wait_until(lambda: worker.get("/api/status")["events_in"] >= len(dims), 120, "CRM")
            t0 = time.perf_counter()
            publish_events(flow, bootstrap, settings.topics)
            t_pub = time.perf_counter() - t0
            # done when every event is in and the totals equal the replay's (the number
            # of deltas may differ: a payment and a cancellation of one order race across
            # the orders and payments topics, see docs/exactly-once.md)
            total_in = len(dims) + len(flow)
            wait_until(
                lambda: (
                    worker.get("/api/status")["events_in"] >= total_in
                    and worker.totals() == expected
                ),
                3600,
                "totals equal to the replay",
            )
            elapsed = time.perf_counter() - t0
            print(f"worker done in {elapsed:.1f} s", flush=True)
        finally:
            worker.stop()
            print(f"worker restarts to re-read a message: {worker.restarts()}", flush=True)
        t = settings.topics
        admin = AdminClient({"bootstrap.servers": bootstrap})
        messages = topic_sizes(bootstrap, admin)
        admin.create_topics([NewTopic(f"{t.prefix}plain.out", 4, 1)])[
            f"{t.prefix}plain.out"
        ].result(30)
        plain = asyncio.run(
            plain_loop(bootstrap, [t.orders, t.payments], f"{t.prefix}plain.out", len(flow))
        )
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
        print(f"events in the flow: {len(flow)} ({args.orders} orders), deltas: {n_deltas}")
        print(f"publishing took {t_pub:.1f} s")
        print("messages per flow event, by topic (changelogs included):")
        for name, count in sorted(messages.items(), key=lambda kv: -kv[1]):
            print(f"  {name}: {count:,} ({count / len(flow):.2f})")
        print(f"  all: {sum(messages.values()):,} ({sum(messages.values()) / len(flow):.2f})")
        print("| path | seconds | events/s |")
        print("| --- | ---: | ---: |")
        rate = len(flow) / elapsed
        print(f"| comstream worker, publish to queryable | {elapsed:.1f} | {rate:,.0f} |")
        print(f"| plain aiokafka consume+produce | {plain:.1f} | {len(flow) / plain:,.0f} |")
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
