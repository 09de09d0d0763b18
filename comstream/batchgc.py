"""Python's cyclic garbage collector, tuned for a batch run of the engine.

With the default settings about half of a replay's CPU time went to full (generation 2)
collections, each walking every object the engine holds (bench/RESULTS.md), although
the engine's long-lived state is freed by reference counting and is never part of
garbage cycles. :class:`LongLivedGC` moves everything alive into the permanent
generation (``gc.freeze``) every ``every`` events, so the collector keeps finding cycles
among new objects but stops re-walking the state built so far. Objects frozen and later
dropped are still freed by reference counting; a cycle frozen by chance is collected
after the run (``gc.unfreeze`` on exit).
"""

from __future__ import annotations

import gc
from types import TracebackType


class LongLivedGC:
    """Context manager; call :meth:`tick` once per event."""

    def __init__(self, every: int = 10_000) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self.every = every
        self._left = every

    def __enter__(self) -> LongLivedGC:
        gc.freeze()
        return self

    def tick(self) -> None:
        self._left -= 1
        if self._left == 0:
            self._left = self.every
            gc.freeze()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        gc.unfreeze()


class PausedGC:
    """Context manager: the cyclic collector paused for a batch run of the engine
    (``comstream replay``, ``simulate``), as it was again on exit.

    The engine's states, messages and outputs hold no reference cycles
    (``tests/unit/test_engine_batch.py``), so reference counting frees everything the run
    drops, and a collection could only re-walk what is alive: with the collector on
    between batches, the first allocation after each batch walked every object the batch
    had built (8% of a replay's CPU, measured with py-spy on 200k events). Meant for a
    process that runs the engine and little else; a long-lived server keeps the collector
    and uses :meth:`processors.engine.Engine.process_batch` alone (it pauses the collector
    inside a batch only)."""

    def __init__(self) -> None:
        self._was_enabled = False

    def __enter__(self) -> PausedGC:
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # what the run built goes to the oldest generation without being walked (freeze
        # then unfreeze: two list merges): left in the youngest one, the first allocation
        # after the run walked every object of it (23% of a replay's CPU)
        gc.freeze()
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
