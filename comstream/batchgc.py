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
