"""Dimension data every stage may need: reps, plan versions and closed periods.

Each worker reads the compacted topics ``crm.reps``, ``commission.plans`` and
``commission.periods`` whole at start (before its agents run) and then follows them in a
thread. They are small and change rarely; each worker holds all of them in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from processors.errors import EngineError
from processors.events import DeadLetter, Event, PeriodClosed, PlanPublished, RepChanged
from processors.plans import PlanBook, plan_from_event
from schemas.codec import decode_event
from schemas.errors import CodecError

from .kafka import TopicFollower
from .settings import Settings


class Dimensions:
    """The current reps, plan book and closed periods. Reads are lock-free snapshots:
    every update replaces a whole immutable value."""

    def __init__(self) -> None:
        self.reps: Mapping[str, RepChanged] = {}
        self.plans: PlanBook = PlanBook()
        self.closed_periods: frozenset[str] = frozenset()
        self.refused_plans: dict[str, str] = {}
        self._lock = threading.Lock()

    def apply_bytes(self, value: bytes | None) -> None:
        """Apply one message of a dimension topic; undecodable or invalid ones are
        ignored here (the ingest agent dead-letters them)."""
        if value is None:
            return
        try:
            event = decode_event(value)
        except CodecError:
            return
        self.apply_event(event)

    def apply_event(self, event: Event) -> None:
        """Apply a RepChanged, PlanPublished or PeriodClosed (others are ignored).
        Idempotent: applying the same event again changes nothing."""
        with self._lock:
            match event:
                case RepChanged():
                    if self.reps.get(event.rep_id) != event:
                        reps = dict(self.reps)
                        reps[event.rep_id] = event
                        self.reps = reps
                case PlanPublished():
                    try:
                        self.plans = self.plans.with_version(plan_from_event(event))
                    except EngineError as exc:
                        self.refused_plans[f"{event.plan_id}@{event.version}"] = str(exc)
                case PeriodClosed():
                    self.closed_periods = self.closed_periods | {event.period}
                case _:
                    pass

    def check_plan(self, event: PlanPublished) -> DeadLetter | None:
        """A dead letter when the plan cannot join the book (it does not parse, or it
        conflicts with a plan already known); None when it can or already did."""
        try:
            self.plans.with_version(plan_from_event(event))
        except EngineError as exc:
            return DeadLetter("plan.conflict", str(exc), event.event_id, "PlanPublished")
        return None


class DimensionFollower(TopicFollower):
    """Loads the dimension topics whole, then follows them until :meth:`stop`."""

    def __init__(self, settings: Settings, dims: Dimensions) -> None:
        super().__init__(settings, settings.topics.dimensions, dims.apply_bytes, "dimensions")
        self.dims = dims
