"""A correction to faust-streaming 0.15.3 that the worker applies before it starts: stream
partitions are resumed only after the seek to their committed offsets and after the flow
control has cleared the stream queues, so no message fetched in between is thrown away.

The skip the continuity guard kept catching (docs/exactly-once.md, "The skip"), pinned
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

The rest of the method is Faust's own, unchanged. Applied only to the version it was
written against; another version keeps its own code (and the guard still catches a
skip).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.tables.recovery import Recovery

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
    return True
