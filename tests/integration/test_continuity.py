"""streams/continuity.py against a real broker: a jump past records is a skip; a jump
over offsets without records (transaction markers) or to the committed offset is not; the
stall watch finds a record waiting after what was handed over, and none in a log read to
its end or holding only a marker there."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.continuity import ContinuityGuard, Skip, first_waiting_record

pytestmark = pytest.mark.integration


def _topic(bootstrap: str) -> str:
    name = f"continuity-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until the result is in
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        producer.produce(topic, key=b"k", value=str(i).encode(), partition=0)
    assert producer.flush(30) == 0


def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def test_jumps_are_checked_against_the_log(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap)
    group = f"g-{uuid.uuid4().hex[:8]}"
    _produce(kafka_bootstrap, topic, 10)  # offsets 0..9
    generation = [1]
    committed: dict[int, int | None] = {0: None}
    guard = ContinuityGuard(
        kafka_bootstrap, group, lambda t, p: committed[p], lambda: generation[0]
    )

    def check(offset: int) -> Skip | None:
        return asyncio.run(guard.check(topic, 0, offset))

    assert [check(o) for o in (0, 1, 2)] == [None, None, None]
    skip = check(6)
    assert skip == Skip(topic, 0, 3, 6, 3)  # 3, 4 and 5 were never handed over
    assert str(skip) == (
        f"{topic}[0]: offsets 3..5 were skipped (a record at 3; expected from the last handed over)"
    )
    assert check(6) is None  # the same again (a re-read) is not a skip
    assert check(4) is None  # nor is going back after a seek

    # a new assignment: the first message is expected at the committed offset
    generation[0] = 2
    committed[0] = 7
    assert check(7) is None
    generation[0] = 3
    assert check(9) == Skip(topic, 0, 7, 9, 7, first_since_assignment=True)

    # the consumer does not know the committed offset: the broker's copy decides
    _commit(kafka_bootstrap, group, topic, 8)
    committed[0] = None
    generation[0] = 4
    assert check(8) is None
    generation[0] = 5
    assert check(9) == Skip(topic, 0, 0, 9, 8, first_since_assignment=True)
    assert guard.checked == 4


def test_offsets_without_records_are_not_a_skip(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(30)
    for value in (b"a", b"b"):  # each commit leaves a marker: records at 0 and 2
        producer.begin_transaction()
        producer.produce(topic, value=value, partition=0)
        producer.commit_transaction(30)
    guard = ContinuityGuard(kafka_bootstrap, "g-markers", lambda t, p: None, lambda: 1)
    assert asyncio.run(guard.check(topic, 0, 0)) is None
    assert asyncio.run(guard.check(topic, 0, 2)) is None  # offset 1 is the marker
    assert guard.checked == 1


def test_waiting_records_are_found_after_the_resume_point(kafka_bootstrap: str) -> None:
    read, other = _topic(kafka_bootstrap), _topic(kafka_bootstrap)
    group = f"g-{uuid.uuid4().hex[:8]}"
    _produce(kafka_bootstrap, read, 5)  # offsets 0..4
    _produce(kafka_bootstrap, other, 3)  # offsets 0..2
    committed: dict[str, int | None] = {read: None, other: 3}
    guard = ContinuityGuard(kafka_bootstrap, group, lambda t, p: committed[t], lambda: 1)
    for offset in range(4):
        assert asyncio.run(guard.check(read, 0, offset)) is None
        guard.done()
    assert guard.in_flight == 0 and guard.handed == 4

    def waiting() -> tuple[str, int, int] | None:
        starts = {(t, 0): guard.resume_point(t, 0) for t in (read, other)}
        return first_waiting_record(kafka_bootstrap, group, starts)

    assert guard.resume_point(read, 0) == 4  # after the last handed over
    assert guard.resume_point(other, 0) == 3  # nothing handed over: the committed offset
    assert waiting() == (read, 0, 4)
    asyncio.run(guard.check(read, 0, 4))
    assert guard.in_flight == 1  # handed over, not done
    guard.done()
    assert waiting() is None  # both read to their end
    _produce(kafka_bootstrap, other, 1)
    assert waiting() == (other, 0, 3)
    # not known to the consumer: the group's committed offset on the broker, then the start
    committed[other] = None
    assert guard.resume_point(other, 0) is None
    assert waiting() == (other, 0, 0)
    _commit(kafka_bootstrap, group, other, 4)
    assert waiting() is None


def test_a_log_ending_in_a_marker_has_nothing_waiting(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"a", partition=0)
    producer.commit_transaction(30)  # the record at 0, the marker at 1: the end is 2
    assert first_waiting_record(kafka_bootstrap, "g-end", {(topic, 0): 1}) is None
    empty = _topic(kafka_bootstrap)  # nothing written, nothing committed
    assert first_waiting_record(kafka_bootstrap, "g-end", {(empty, 0): None}) is None
    assert first_waiting_record(kafka_bootstrap, "g-end", {(topic, 0): 0}) == (topic, 0, 0)
