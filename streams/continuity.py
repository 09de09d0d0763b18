"""Offset continuity: a message the runtime skipped is noticed before it can be lost.

faust-streaming 0.15 can hand an agent a message further on in a partition than the one
after the last it handed over (the 2026-11-27 chaos failure: in a worker with a stable
group generation the order stage got offset 57 of a partition, then 152; offsets 58-151
were never processed, and the consumer's offset bookkeeping counted them as a *gap*, so the
commit moved past them as soon as 152 was acknowledged; docs/exactly-once.md). Whatever
the cause inside the runtime, the symptom is visible from the agent: per topic-partition,
each message should follow the previous one (or, first after an assignment, the committed
offset).

:class:`ContinuityGuard` checks that. A jump is not always a loss: a compacted topic and
transaction markers leave offsets without records. So a jump is checked against the log
itself with a separate plain consumer: when the skipped range holds a record, the worker
must not go on (the caller ends the process before the message is acknowledged, and the
restarted worker reads again from the committed offset, which the skipped messages never
passed).

Two causes were found and are corrected in :mod:`streams.faust_fixes`; the guard stays
for any other. :class:`StallWatch` covers what the guard cannot see: a skip at the end of
a partition (no later message shows the jump) and a runtime that hangs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

log = logging.getLogger(__name__)

VERIFY_TIMEOUT_S = 15.0
NONE_CONFIRM_S = 3.0


@dataclass(frozen=True, slots=True)
class Skip:
    """Records of ``topic[partition]`` in ``[first, end)`` that were not handed over."""

    topic: str
    partition: int
    first: int
    end: int
    record_at: int | None  # the first record found in the range; None: could not read
    first_since_assignment: bool = False  # ``first`` is the committed offset, not last + 1

    def __str__(self) -> str:
        found = (
            f"a record at {self.record_at}"
            if self.record_at is not None
            else "the range could not be read"
        )
        since = "the committed offset" if self.first_since_assignment else "the last handed over"
        return (
            f"{self.topic}[{self.partition}]: offsets {self.first}..{self.end - 1} were "
            f"skipped ({found}; expected from {since})"
        )


def _reader(bootstrap: str, group_id: str) -> Consumer:
    """A consumer that only reads: it joins no group and commits nothing."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )


def _first_record(
    consumer: Consumer, topic: str, partition: int, first: int | None, end: int | None
) -> int:
    """The first record of ``topic[partition]`` in ``[first, end)`` (``end`` None: up to
    the log's end), -1 when there is none; raises when the log cannot be read in time."""
    tp = TopicPartition(topic, partition)
    low, high = consumer.get_watermark_offsets(tp, timeout=VERIFY_TIMEOUT_S)
    if high <= low:  # an empty log: no committed offset to ask for
        return -1
    if first is None:
        committed = _committed(consumer, tp)
        first = committed if committed >= 0 else low
    start = max(first, low)
    stop = high if end is None else min(end, high)
    if start >= stop:
        return -1
    consumer.assign([TopicPartition(topic, partition, start)])
    try:
        deadline = time.monotonic() + VERIFY_TIMEOUT_S
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # nothing from `start` on
                    return -1
                continue  # transient; at the deadline "unknown"
            at = msg.offset()
            return at if at is not None and at < stop else -1
        raise TimeoutError(f"cannot read {topic}[{partition}] from {start}")
    finally:
        consumer.unassign()


def first_record_between(
    bootstrap: str, group_id: str, topic: str, partition: int, first: int | None, end: int
) -> int | None:
    """The offset of the first record of ``topic[partition]`` in ``[first, end)``, or -1
    when the range holds none (compacted away, transaction markers, deleted by retention).
    ``first`` None: from the offset group ``group_id`` has committed (the log's start when
    it has none). None when the log could not be read within :data:`VERIFY_TIMEOUT_S`."""
    consumer = _reader(bootstrap, group_id)
    try:
        return _first_record(consumer, topic, partition, first, end)
    except Exception:  # the caller treats "unknown" as a skip: the safe side
        log.exception("cannot read %s[%d] before offset %d", topic, partition, end)
        return None
    finally:
        consumer.close()


def first_waiting_record(
    bootstrap: str, group_id: str, starts: dict[tuple[str, int], int | None]
) -> tuple[str, int, int] | None:
    """A record waiting to be handed over: the first ``(topic, partition, offset)`` found
    at or after ``starts[(topic, partition)]`` (None: the group's committed offset), or
    None when every partition is read to its end. Partitions that cannot be read count as
    read: a stall is only declared on evidence."""
    consumer = _reader(bootstrap, group_id)
    try:
        for (topic, partition), first in sorted(starts.items()):
            try:
                at = _first_record(consumer, topic, partition, first, None)
            except Exception:
                log.warning("cannot read %s[%d] to look for waiting records", topic, partition)
                continue
            if at >= 0:
                return topic, partition, at
        return None
    finally:
        consumer.close()


def _committed(consumer: Consumer, tp: TopicPartition) -> int:
    """The group's committed offset of ``tp`` (negative: none), retrying while the group
    coordinator is being found or loaded. "None" is asked again for
    :data:`NONE_CONFIRM_S`: right after a broker restart the coordinator can answer
    "no offset" for a group that has one (a chaos run reported offsets 0..37 skipped
    that way while the group had committed 38)."""
    start = time.monotonic()
    while True:
        try:
            offset: int = consumer.committed([tp], timeout=VERIFY_TIMEOUT_S)[0].offset
        except KafkaException:
            if time.monotonic() - start > VERIFY_TIMEOUT_S:
                raise
            time.sleep(0.2)
            continue
        if offset >= 0 or time.monotonic() - start > NONE_CONFIRM_S:
            return offset
        time.sleep(0.5)


class ContinuityGuard:
    """Remembers, per topic-partition, the last offset handed to an agent in the current
    group generation. ``committed(topic, partition)`` gives the consumer's committed offset
    (the expected first offset after an assignment; None: none committed yet, so the log's
    start); ``generation()`` the consumer group generation."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        committed: Callable[[str, int], int | None],
        generation: Callable[[], int],
    ) -> None:
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._committed = committed
        self._generation = generation
        self._last: dict[tuple[str, int], tuple[int, int]] = {}
        self.checked = 0  # jumps verified against the log (compaction, markers, skips)
        self.handed = 0  # messages handed over, for the stall watch
        self.in_flight = 0  # handed over and not yet done (:meth:`done`)

    def resume_point(self, topic: str, partition: int) -> int | None:
        """Where the next message of ``topic[partition]`` should come from: after the last
        one handed over in this generation, else the consumer's committed offset (None:
        unknown here, the group's committed offset on the broker)."""
        seen = self._last.get((topic, partition))
        if seen is not None and seen[0] == self._generation():
            return seen[1] + 1
        committed = self._committed(topic, partition)
        return committed if committed is not None and committed >= 0 else None

    def done(self) -> None:
        """The message last handed over is processed (or dead-lettered)."""
        self.in_flight = max(0, self.in_flight - 1)

    async def check(self, topic: str, partition: int, offset: int) -> Skip | None:
        """Record that ``offset`` is being handed over; return the :class:`Skip` when
        records before it were not. Expected is the offset after the last one handed over
        in this generation or, first after an assignment, the committed offset the
        consumer started from; when the consumer does not know that one, the broker's
        copy is what a jump is checked against."""
        self.handed += 1
        self.in_flight += 1
        generation = self._generation()
        seen = self._last.get((topic, partition))
        self._last[(topic, partition)] = (generation, offset)
        first_since_assignment = seen is None or seen[0] != generation
        if seen is not None and not first_since_assignment:
            expected, known = seen[1] + 1, True
        else:
            committed = self._committed(topic, partition)
            known = committed is not None and committed >= 0
            expected = committed if committed is not None and known else 0
        if offset <= expected:  # the next one, or a re-read after a seek back: fine
            return None
        self.checked += 1
        found = await asyncio.get_running_loop().run_in_executor(
            None,
            first_record_between,
            self._bootstrap,
            self._group_id,
            topic,
            partition,
            expected if known else None,
            offset,
        )
        if found is not None and found < 0:
            log.info(
                "%s[%d]: no record before offset %d since %d (compaction, markers, "
                "or already committed)",
                topic,
                partition,
                offset,
                expected,
            )
            return None
        return Skip(topic, partition, expected, offset, found, first_since_assignment)


class StallWatch:
    """Notices a worker that stopped moving: the runtime can hang without failing (a
    rebalance or a table recovery that never completes, an agent waiting on a future that
    never resolves; faust-streaming has open reports of each). ``idle_for(signature)``
    gets, every few seconds, a value that changes whenever anything moves (messages handed
    over, states applied, the group generation, the recovery's progress) and returns how
    long it has stayed the same; past a threshold the caller looks for a record waiting in
    an assigned partition (:func:`first_waiting_record`) and, when one is there, ends the
    process so that the supervisor starts it again from the committed offsets. An idle
    worker with nothing to read is not stalled: ``reset()`` after finding nothing waits a
    whole threshold again before the next look."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._signature: object = None
        self._since = clock()

    def idle_for(self, signature: object) -> float:
        now = self._clock()
        if signature != self._signature:
            self._signature = signature
            self._since = now
        return now - self._since

    def reset(self) -> None:
        self._since = self._clock()
