"""Two corrections to faust-streaming 0.15.3 that the worker applies before it starts, each
a way the runtime dropped messages it had fetched, so that agents never saw them.

First: stream partitions are resumed only after the seek to their committed offsets and
after the flow control has cleared the stream queues, so no message fetched in between is
thrown away.

The skip the continuity guard kept catching (docs/exactly-once.md, "A message Faust read
and never handed over", "The cause, pinned down"), pinned
down on 2026-11-27 with Faust's own logs: at the end of a table recovery,
``Recovery.on_recovery_completed`` resumes the stream partitions while the consumer's flow
and the app's flow control are already active (they were resumed to read the
changelogs), then awaits ``perform_seek`` (about 200 ms), then calls
``app.flow_control.resume()``, which *clears every stream queue*
(``mode.utils.queues.FlowControlEvent.resume``). Messages fetched during the seek are
delivered into the queues, some handed to agents, the rest cleared without a trace while
the fetch position has moved past them: the agent was handed offset 336 and then 363 of
a partition in one generation, right after "Worker ready". Reordered here: seek (stream
partitions still paused, so nothing of theirs is fetched or queued), clear the queues,
then resume the partitions and the flow, with no await in between.

The second cause, found the same way (Faust's consumer state logged at the skip): the
fetcher hands aiokafka's ``Fetcher.fetched_records`` Faust's *live* set of active
partitions, from another thread, and aiokafka reads it as ``if partitions and tp not in
partitions``: an **empty** set means *every* partition. When the recovery pauses the
changelog partitions at its end while a fetch waits (up to a second), the set becomes
empty, aiokafka drains the stream partitions' records too (their positions move on:
committed 72, position 114 right after the seek), and Faust drops them because their
partitions are not active. :class:`NeverAll` keeps the live set but is never empty to
aiokafka, so nothing is drained for a partition that is not active.

The rest of each method is Faust's own, unchanged. Applied only to the version it was
written against; another version keeps its own code (and the guard still catches a
skip).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from aiokafka.errors import ConsumerStoppedError
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

log = logging.getLogger(__name__)

FIXED_VERSION = "0.15.3"


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` with the stream partitions resumed after the
    seek and the queue clearing (see the module docstring)."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table],
                self.standbys_for_table[table],
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id "
            f"{self.app.consumer_generation_id} param {generation_id}"
        )
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    self.completed.set()
    # no await from here until the flow runs: the queues are cleared before anything of
    # the stream partitions can be delivered into them
    self.app.flow_control.resume()
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    consumer.resume_flow()
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


class NeverAll:
    """Faust's live set of active partitions as aiokafka's ``fetched_records`` reads it
    (``if partitions and tp not in partitions``): membership of the live set, but never
    false, so an empty set means "none" rather than "all"."""

    __slots__ = ("live",)

    def __init__(self, live: Any) -> None:
        self.live = live

    def __bool__(self) -> bool:
        return True

    def __contains__(self, tp: object) -> bool:
        return tp in self.live


async def fetch_records(
    self: Any,
    consumer: Any,
    active_partitions: Any,
    timeout: float | None = None,
    max_records: int | None = None,
) -> Any:
    """``AIOKafkaConsumerThread._fetch_records`` with the active partitions wrapped in
    :class:`NeverAll` (None, a client-only app's "all", stays None)."""
    if not self.consumer.flow_active:
        return {}
    fetcher = consumer._fetcher
    if consumer._closed or fetcher._closed:
        raise ConsumerStoppedError()
    partitions = None if active_partitions is None else NeverAll(active_partitions)
    with fetcher._subscriptions.fetch_context():
        return await fetcher.fetched_records(partitions, timeout=timeout, max_records=max_records)


def apply() -> bool:
    """Install the correction; False (and a warning) when Faust is another version."""
    version = getattr(faust, "__version__", "")
    if version != FIXED_VERSION:
        log.warning(
            "faust-streaming %s: the recovery correction was written for %s and is not "
            "applied (the continuity guard still catches a skip)",
            version,
            FIXED_VERSION,
        )
        return False
    Recovery.on_recovery_completed = on_recovery_completed  # type: ignore[method-assign]
    AIOKafkaConsumerThread._fetch_records = fetch_records  # type: ignore[method-assign]
    return True
