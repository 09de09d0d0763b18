"""The local Kafka broker is real: confluent-kafka produces to it, aiokafka (Faust's client)
consumes from it in a consumer group, and what was written survives a broker restart."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from comstream.broker import LocalBroker

pytestmark = pytest.mark.integration


def create_topic(bootstrap: str, partitions: int) -> str:
    """A new, uniquely named topic; returns its name once the broker confirmed it."""
    name = f"test-broker-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
    futures[name].result(timeout=30)
    return name


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce every record and wait until the broker acknowledged all of them."""
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "messages left undelivered"
    assert errors == []


async def consume(
    bootstrap: str, topic: str, count: int, timeout: float = 60.0
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Read ``count`` messages from the start of ``topic`` with aiokafka in a fresh
    consumer group; returns (partition, key, value) in arrival order."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-broker-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[tuple[int, bytes | None, bytes | None]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(got) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    got += [(r.partition, r.key, r.value) for r in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


def test_confluent_produces_and_aiokafka_consumes_exactly(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, partitions=3)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3

    sent = [(f"rep-{i % 7}".encode(), f"order-{i:03d}".encode()) for i in range(100)]
    produce(kafka_bootstrap, topic, sent)
    got = asyncio.run(consume(kafka_bootstrap, topic, len(sent)))

    assert sorted((k, v) for _, k, v in got) == sorted(sent)
    by_key: dict[bytes | None, list[bytes | None]] = defaultdict(list)
    partition_of: dict[bytes | None, set[int]] = defaultdict(set)
    for partition, key, value in got:
        by_key[key].append(value)
        partition_of[key].add(partition)
    # One key, one partition, and within it the order it was produced in.
    for key, values in by_key.items():
        assert len(partition_of[key]) == 1
        assert values == [v for k, v in sent if k == key]
    assert {partition for partition, _, _ in got} <= {0, 1, 2}


def test_data_survives_a_broker_restart(local_broker: LocalBroker | None) -> None:
    if local_broker is None:
        pytest.skip("KAFKA_BOOTSTRAP points at a broker this session cannot restart")
    bootstrap = local_broker.bootstrap
    topic = create_topic(bootstrap, partitions=1)
    produce(bootstrap, topic, [(b"rep-1", b"before-restart")])

    local_broker.restart()

    produce(bootstrap, topic, [(b"rep-1", b"after-restart")])
    got = asyncio.run(consume(bootstrap, topic, 2))
    assert got == [(0, b"rep-1", b"before-restart"), (0, b"rep-1", b"after-restart")]
