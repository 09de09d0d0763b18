"""confluent-kafka plumbing shared by the worker, the sink and the CLI: topics, a
producer, and reading a compacted topic whole.

Producers use the ``murmur2_random`` partitioner, the one the Java client and aiokafka
(Faust) use, so a key lands on the same partition whoever sends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from processors.errors import ComstreamError

from .settings import Settings


class KafkaUnavailable(ComstreamError):
    """The cluster could not be reached or refused an administrative request."""


def topic_specs(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic comstream uses: name -> (partitions, config)."""
    t = settings.topics
    n = settings.partitions
    compact = {"cleanup.policy": "compact"}
    keep = {"retention.ms": "-1"}  # events are the source of truth for replay
    # CRM facts count by business time: a record superseded by a later one still governs
    # the orders placed before that one, so the worker must read it; compaction keeps
    # every record for a week (a worker further behind than that would miss superseded
    # records, and its table changelog has every record it read)
    crm = {**compact, "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000)}
    return {
        t.customers: (n, crm),
        t.reps: (1, compact),
        t.orders: (n, keep),
        t.payments: (n, keep),
        # plan versions and closures must all be kept (key plan_id@version / period)
        t.plans: (1, compact),
        t.periods: (1, compact),
        t.deltas: (n, keep),
        # BI facts keyed by entity: only the latest of each key is needed
        t.facts: (n, compact),
        t.dlq: (1, keep),
        t.customer_stage: (n, {}),
        t.order_stage: (n, {}),
        t.rep_stage: (n, {}),
        # statement lifecycle (docs/payouts.md): commands keyed rep|period, the audit
        # trail kept forever, users compacted by user id
        t.statement_commands: (n, keep),
        t.audit: (n, keep),
        t.users: (1, compact),
    }


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Raises
    KafkaUnavailable if the cluster does not answer within ``timeout`` seconds."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from exc
    wanted = [
        NewTopic(name, num_partitions=parts, replication_factor=1, config=config)
        for name, (parts, config) in topic_specs(settings).items()
        if name not in existing
    ]
    if not wanted:
        return []
    futures = admin.create_topics(wanted, operation_timeout=timeout)
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaUnavailable(f"cannot create topic {name}: {exc}") from exc
    return created


def make_producer(bootstrap: str, **extra: str | int) -> Producer:
    """An idempotent producer (acks=all) with the Java-compatible partitioner."""
    config: dict[str, str | int] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    config.update(extra)
    return Producer(config)


def flush(producer: Producer, timeout: float = 60.0) -> None:
    """Wait until every message was acknowledged; raise KafkaUnavailable if not."""
    left = producer.flush(timeout)
    if left:
        raise KafkaUnavailable(f"{left} messages not acknowledged after {timeout:.0f}s")


@dataclass(frozen=True, slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def read_whole(bootstrap: str, topic: str, timeout: float = 30.0) -> Iterator[RawMessage]:
    """Every message of ``topic`` from the start up to its end as of the call, partition
    by partition in offset order. No consumer group is joined or committed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "comstream-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            raise KafkaUnavailable(f"topic {topic} does not exist")
        for partition in sorted(meta.topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            deadline = time.monotonic() + timeout
            offset = low
            while offset < high:
                msg = consumer.poll(1.0)
                if msg is None:
                    if time.monotonic() > deadline:
                        raise KafkaUnavailable(f"timed out reading {topic}[{partition}]")
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        break
                    raise KafkaUnavailable(f"reading {topic}: {error}")
                offset = msg.offset() or 0
                yield RawMessage(topic, partition, offset, msg.key(), msg.value())
                offset += 1
    finally:
        consumer.close()


class TopicFollower(threading.Thread):
    """Loads ``topics`` whole (:meth:`load`, blocking), then, as a daemon thread, follows
    them from where the load ended until :meth:`stop`, handing every message's value to
    ``apply``. For small compacted topics that every worker keeps in memory whole
    (dimensions, users): no offsets are committed, each start reads from the beginning."""

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        apply: Callable[[bytes | None], None],
        name: str,
    ) -> None:
        super().__init__(name=f"comstream-{name}", daemon=True)
        self.settings = settings
        self.topics = tuple(topics)
        self.apply = apply
        self._group = f"{settings.app_id}-{name}"
        self._log = logging.getLogger(f"{__name__}.{name}")
        self._stop_event = threading.Event()
        self._next: dict[tuple[str, int], int] = {}

    def load(self) -> None:
        """Read every topic from the start to its current end (blocking)."""
        for topic in self.topics:
            for msg in read_whole(self.settings.bootstrap, topic):
                self.apply(msg.value)
                self._next[(topic, msg.partition)] = msg.offset + 1

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap,
                "group.id": self._group,
                "enable.auto.commit": False,
            }
        )
        assignment = []
        for topic in self.topics:
            meta = consumer.list_topics(topic, timeout=30)
            for partition in meta.topics[topic].partitions:
                start = self._next.get((topic, partition), 0)
                assignment.append(TopicPartition(topic, partition, start))
        consumer.assign(assignment)
        try:
            while not self._stop_event.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        self._log.warning("read error: %s", error)
                    continue
                self.apply(msg.value())
        finally:
            consumer.close()
