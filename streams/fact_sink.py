"""The loop that moves ``commission.facts`` (BI facts, :mod:`processors.facts`) into
ClickHouse.

Facts need no offset bookkeeping in the tables: each carries a version derived from the
state it describes, the tables keep the highest version per key
(``ReplacingMergeTree(version)``) and the views read the latest one, so a batch inserted
twice (a crash between the insert and the offset commit) changes no answer. Offsets are
committed after ClickHouse acknowledged the insert.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from processors import serde
from processors.errors import SerdeError
from processors.facts import CustomerFact, Fact, OrderFact, RepFact
from sinks.clickhouse import SinkError, Store

from .settings import Settings

log = logging.getLogger(__name__)

FACT_TYPES = (OrderFact, CustomerFact, RepFact)


class FactSink(threading.Thread):
    """Consumes facts and inserts them; :meth:`stop` ends it after the current batch."""

    def __init__(self, settings: Settings, store: Store) -> None:
        super().__init__(name="comstream-fact-sink", daemon=True)
        self.settings = settings
        self.store = store
        self.topic = settings.topics.facts
        self._stop_event = threading.Event()
        self.inserted = 0
        self.undecodable = 0
        self.last_insert_at = 0.0
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap,
                "group.id": f"{self.settings.app_id}-facts",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": self.settings.session_timeout_s * 1000,
            }
        )
        consumer.subscribe([self.topic])
        linger = self.settings.fact_linger_ms / 1000
        try:
            while not self._stop_event.is_set():
                msgs = consumer.consume(self.settings.sink_batch, timeout=linger)
                if msgs:
                    self._write(consumer, msgs)
        except BaseException as exc:
            self.error = exc
            log.exception("fact sink stopped")
            raise
        finally:
            consumer.close()

    def _write(self, consumer: Consumer, msgs: list[Any]) -> None:
        batch: list[Fact] = []
        last: dict[int, int] = {}
        for msg in msgs:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("fact sink read error: %s", msg.error())
                continue
            last[msg.partition()] = msg.offset()
            try:
                fact = serde.loads(msg.value() or b"")
            except SerdeError as exc:
                fact = exc
            if not isinstance(fact, FACT_TYPES):
                # only the worker writes this topic: a bug, visible in the log and counters
                self.undecodable += 1
                log.error("not a fact at %s[%d]@%d", self.topic, msg.partition(), msg.offset())
                continue
            batch.append(fact)
        while batch:
            try:
                self.inserted += self.store.insert_facts(batch)
                break
            except SinkError as exc:  # idempotent: retrying cannot double anything
                log.warning("fact insert failed, retrying: %s", exc)
                if self._stop_event.wait(1.0):
                    return
        if last:
            consumer.commit(
                offsets=[TopicPartition(self.topic, p, o + 1) for p, o in last.items()],
                asynchronous=False,
            )
            self.last_insert_at = time.time()
