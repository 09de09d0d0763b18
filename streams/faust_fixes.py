"""A correction to faust-streaming's consumer that the exactly-once design needs.

The long chaos benchmark (``bench/chaos_bench.py``: 100k events, 11 SIGKILLs, a broker
restart, a second worker killed) once finished with one planted bad event on a topic
never dead-lettered, and the ingest group's offset for that partition stuck below it:
Faust had read the message and never handed it to the agent. Reading
``faust/transport/consumer.py`` (faust-streaming 0.15.3) shows one way that can happen:
``Consumer.getmany`` reads ``consumer_generation_id`` *after* awaiting the next batch of
records, so a batch fetched before a rebalance (from the old position) is handed
out after it, when the recovery has already sought the partition back to its committed
offset and reset the read offset: the drain loop sees an offset further than the read
offset, records the hole in between as a *gap* (``_add_gap``, meant for compacted topics)
that counts as acknowledged, and then drops the re-fetched messages of the hole as
already read. Fix: take the generation before waiting, so a batch that straddles a
rebalance is discarded; every path that resumes the flow after a rebalance seeks the
partitions to their committed offsets first (``Recovery._resume_streams`` and the end of
``Recovery.on_recovery_completed``), so its messages come again.

``Consumer._new_offset`` also commits over a single unacknowledged offset
(``min(acked) - committed > 1``); that tolerance is what lets a compacted topic whose
next offset was compacted away move on after a seek, so it is left as it is.

The method is replaced with a copy that differs only in the lines marked ``FIX``.
:func:`apply` checks the installed version, so an upgrade of faust-streaming makes the
worker refuse to start until this is reviewed against the new code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.transport.consumer import Consumer

PATCHED_VERSIONS = ("0.15.",)


async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    """``Consumer.getmany`` of faust-streaming 0.15.3 with the generation taken before
    the records are awaited."""
    generation_id = self.app.consumer_generation_id  # FIX: before the wait
    records, active_partitions = await self._wait_next_records(timeout)
    if records is None or self.should_stop:
        return
    if self.app.consumer_generation_id != generation_id:  # FIX: fetched before a rebalance
        return

    records_it = self.scheduler.iterate(records)
    to_message = self._to_message
    if self.flow_active:
        for tp, record in records_it:
            if not self.flow_active:
                break
            if self.app.consumer_generation_id != generation_id:
                break
            if (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            ):
                highwater_mark = self.highwater(tp)
                self.app.monitor.track_tp_end_offset(tp, highwater_mark)
                yield tp, to_message(tp, record)
    else:
        try:
            await self.perform_seek()
        except Exception as ex:  # as in faust: logged, the next rebalance seeks again
            self.log.warning(f"exception performing seek when flow not active {ex}")


class FaustVersionError(RuntimeError):
    """The installed faust-streaming is not one these corrections were checked against."""


def apply() -> None:
    """Install the corrected methods on ``faust.transport.consumer.Consumer`` (once)."""
    version = str(faust.__version__)
    if not version.startswith(PATCHED_VERSIONS):
        raise FaustVersionError(
            f"faust-streaming {version}: streams/faust_fixes.py was checked against "
            f"{PATCHED_VERSIONS}; review it against this version before running a worker"
        )
    Consumer.getmany = getmany  # type: ignore[method-assign]
