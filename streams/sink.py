"""The loop that moves ``commission.deltas`` into ClickHouse, exactly once in effect.

It runs as a thread of the worker process (chDB serves one process per data path, and
the worker is the process that answers queries). Reading starts, for each partition, at
the later of the group's committed offset and one past the highest offset the ledger
holds; each batch read (all partitions) is one insert with a deduplication token made
of its offset ranges, and offsets are committed only after ClickHouse acknowledged (see
:mod:`sinks.clickhouse`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.codec import decode_delta
from schemas.errors import CodecError
from sinks.clickhouse import SinkError, SourcedDelta, Store

from .settings import Settings

log = logging.getLogger(__name__)


class DeltaSink(threading.Thread):
    """Consumes deltas and inserts them; :meth:`stop` ends it after the current batch."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        on_insert: Callable[[int], None] | None = None,
    ) -> None:
        """``on_insert(rows)`` is called from this thread after every insert that added
        rows (the live leaderboard's wake-up); it must be quick and thread-safe."""
        super().__init__(name="comstream-sink", daemon=True)
        self.on_insert = on_insert
        self.settings = settings
        self.store = store
        self.topic = settings.topics.deltas
        self._stop_event = threading.Event()
        self.inserted = 0
        self.skipped = 0
        self.undecodable = 0
        self.last_insert_at = 0.0
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self.store.resume_offsets(self.topic)
        committed = consumer.committed(partitions, timeout=30)
        for tp, com in zip(partitions, committed, strict=True):
            start = max(stored.get(tp.partition, 0), com.offset if com.offset >= 0 else 0)
            tp.offset = start
        consumer.assign(partitions)

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap,
                "group.id": f"{self.settings.app_id}-sink",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": self.settings.session_timeout_s * 1000,
            }
        )
        consumer.subscribe([self.topic], on_assign=self._on_assign)
        linger = self.settings.sink_linger_ms / 1000
        try:
            while not self._stop_event.is_set():
                msgs = consumer.consume(self.settings.sink_batch, timeout=linger)
                if not msgs:
                    continue
                self._write(consumer, msgs)
        except BaseException as exc:  # the worker reports a dead sink on /api/health
            self.error = exc
            log.exception("delta sink stopped")
            raise
        finally:
            consumer.close()

    def _write(self, consumer: Consumer, msgs: list) -> None:  # type: ignore[type-arg]
        batch: list[SourcedDelta] = []
        last: dict[int, int] = {}
        for msg in msgs:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("sink read error: %s", msg.error())
                continue
            last[msg.partition()] = msg.offset()
            try:
                delta = decode_delta(msg.value())
            except CodecError as exc:
                # Only the worker writes this topic; an undecodable record is a bug, kept
                # visible in the counters and the log rather than stopping the sink.
                self.undecodable += 1
                log.error(
                    "undecodable delta at %s[%d]@%d: %s",
                    self.topic,
                    msg.partition(),
                    msg.offset(),
                    exc,
                )
                continue
            batch.append(SourcedDelta(self.topic, msg.partition(), msg.offset(), delta))
        # every partition's messages in one insert (an insert has a fixed cost of ~20 ms)
        batch.sort(key=lambda b: (b.partition, b.offset))
        while batch:
            try:
                n = self.store.insert_batch(batch)
                break
            except SinkError as exc:  # retried with the same token: never double
                log.warning("insert failed, retrying: %s", exc)
                if self._stop_event.wait(1.0):
                    return
        else:
            n = 0
        self.inserted += n
        self.skipped += len(batch) - n
        if n and self.on_insert is not None:
            try:
                self.on_insert(n)
            except Exception:  # a listener's bug must not stop the sink
                log.exception("on_insert listener failed")
        if last:
            consumer.commit(
                offsets=[TopicPartition(self.topic, p, o + 1) for p, o in last.items()],
                asynchronous=False,
            )
            self.last_insert_at = time.time()
