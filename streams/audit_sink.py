"""The loop that moves ``commission.audit`` into ClickHouse's ``audit_log``.

A thread of the worker that runs the ClickHouse sink, built like the delta sink: it
resumes after the highest offset the table holds, inserts one batch per partition with
an offset-range token (ids already held are dropped first), and commits offsets only
after ClickHouse acknowledged. After each insert it remembers the outcomes by audit id,
so an API request that sent a command can answer with its outcome
(:meth:`AuditSink.outcome`) once the record is in the table.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, defaultdict
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from processors import serde
from processors.errors import SerdeError
from processors.payouts import AuditRecord
from sinks.audit import AuditStore, SourcedRecord
from sinks.clickhouse import SinkError

from .settings import Settings

log = logging.getLogger(__name__)

REMEMBER = 10_000  # outcomes kept for waiting requests


class AuditSink(threading.Thread):
    """Consumes audit records and inserts them; :meth:`stop` ends it."""

    def __init__(self, settings: Settings, audit: AuditStore) -> None:
        super().__init__(name="comstream-audit-sink", daemon=True)
        self.settings = settings
        self.audit = audit
        self.topic = settings.topics.audit
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._outcomes: OrderedDict[str, AuditRecord] = OrderedDict()
        self.inserted = 0
        self.undecodable = 0
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def outcome(self, audit_id: str) -> AuditRecord | None:
        """The record ``audit_id`` if this sink stored it since it started (a command's
        audit id is :func:`processors.payouts.audit_id_of`, scoped to its statement and
        actor: a command id alone may name commands of several statements)."""
        with self._lock:
            return self._outcomes.get(audit_id)

    def _remember(self, records: list[AuditRecord]) -> None:
        with self._lock:
            for r in records:
                self._outcomes[r.audit_id] = r
            while len(self._outcomes) > REMEMBER:
                self._outcomes.popitem(last=False)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self.audit.resume_offsets(self.topic)
        committed = consumer.committed(partitions, timeout=30)
        for tp, com in zip(partitions, committed, strict=True):
            tp.offset = max(stored.get(tp.partition, 0), com.offset if com.offset >= 0 else 0)
        consumer.assign(partitions)

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap,
                "group.id": f"{self.settings.app_id}-audit",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": self.settings.session_timeout_s * 1000,
            }
        )
        consumer.subscribe([self.topic], on_assign=self._on_assign)
        try:
            while not self._stop_event.is_set():
                msgs = consumer.consume(500, timeout=0.05)
                if msgs:
                    self._write(consumer, msgs)
        except BaseException as exc:
            self.error = exc
            log.exception("audit sink stopped")
            raise
        finally:
            consumer.close()

    def _write(self, consumer: Consumer, msgs: list[Any]) -> None:
        batches: dict[int, list[SourcedRecord]] = defaultdict(list)
        last: dict[int, int] = {}
        for msg in msgs:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("audit sink read error: %s", msg.error())
                continue
            last[msg.partition()] = msg.offset()
            try:
                record = serde.loads(msg.value() or b"")
            except SerdeError as exc:
                record = exc
            if not isinstance(record, AuditRecord):
                self.undecodable += 1
                log.error(
                    "not an audit record at %s[%d]@%d", self.topic, msg.partition(), msg.offset()
                )
                continue
            batches[msg.partition()].append(
                SourcedRecord(self.topic, msg.partition(), msg.offset(), record)
            )
        for batch in batches.values():
            while True:
                try:
                    self.inserted += self.audit.insert(batch)
                    break
                except SinkError as exc:  # the same token on retry: never twice
                    log.warning("audit insert failed, retrying: %s", exc)
                    if self._stop_event.wait(1.0):
                        return
            self._remember([b.record for b in batch])
        if last:
            consumer.commit(
                offsets=[TopicPartition(self.topic, p, o + 1) for p, o in last.items()],
                asynchronous=False,
            )


def wait_outcome(sink: AuditSink, audit_id: str, timeout: float) -> AuditRecord | None:
    """Block until ``sink`` stored the record ``audit_id`` (None after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sink.outcome(audit_id)
        if found is not None:
            return found
        time.sleep(0.02)
    return None
