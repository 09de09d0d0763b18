"""The rep-period stage (key: rep_id): tiers and per-period caps (SEMANTICS.md section 5).

``apply(state, message, plans, reps, closed) -> (state, outputs)``

Inputs: the commission and adjustment deltas of the rep (the order stage's outputs,
keyed by rep on their way to ``commission.deltas``), and, so that the accelerator is
recomputed when the rep's plan for a period changes, ``PlanPublished`` (broadcast) and
the rep's own ``RepChanged``. ``PeriodClosed`` is accepted and changes nothing.
Dimensions: every plan version, current rep facts, the closed periods.

Per (period, currency) the state keeps K (the sum of the rep's non-accelerator deltas
booked in the period), the earned revenue base booked in the period, and the rounded
accelerator amount emitted so far. Outputs are accelerator deltas, each the difference of
rounded cumulative accelerator amounts; as both formulas depend only on the period's
sums, the final amounts do not depend on arrival order. A delta id applied twice counts
once: applying it again re-emits what it emitted the first time.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .errors import EngineError, PlanError
from .events import CommissionDelta, DeltaKind, PeriodClosed, PlanPublished, RepChanged
from .ids import delta_id
from .messages import RepFacts
from .money import ONE, ZERO, ZERO_CENTS
from .periods import book_period, last_day
from .plans import PlanBook, plan_from_event
from .pmap import PMap
from .tiers import accelerator

__all__ = ["PeriodSums", "RepMessage", "RepState", "apply"]

RepMessage = CommissionDelta | PlanPublished | RepChanged | PeriodClosed


@dataclass(frozen=True, slots=True)
class PeriodSums:
    """The sums of one rep's (period, currency) and its accelerator so far."""

    period: str
    currency: str
    commission: Decimal  # K
    revenue_base: Decimal
    accelerator: Decimal  # rounded cumulative accelerator amount emitted
    plan_id: str  # the plan the accelerator was last computed with ("" if none)
    plan_version: int
    last_positive: str | None  # the latest positive accelerator delta


@dataclass(frozen=True, slots=True)
class RepState:
    """The rep-period stage's state for one rep_id. ``applied`` maps every applied delta
    id (and PlanPublished/RepChanged event id) to the accelerator deltas it emitted."""

    rep_id: str
    periods: tuple[PeriodSums, ...] = ()
    applied: PMap[str, tuple[CommissionDelta, ...]] = field(default_factory=PMap)


class _Trigger:
    __slots__ = ("at", "event_id", "event_type", "trigger_id")

    def __init__(self, trigger_id: str, event_id: str, event_type: str, at: datetime) -> None:
        self.trigger_id = trigger_id
        self.event_id = event_id
        self.event_type = event_type
        self.at = at


def _recompute(
    rep_id: str,
    sums: PeriodSums,
    commission: Decimal,
    revenue_base: Decimal,
    plans: PlanBook,
    rep: RepFacts,
    closed: Set[str],
    trigger: _Trigger,
    out: list[CommissionDelta],
) -> PeriodSums:
    """``sums`` with the sums ``commission`` and ``revenue_base`` and the accelerator they
    give now; emits an accelerator delta into ``out`` when the accelerator changes."""
    period = sums.period
    plan = plans.select(rep, last_day(period))
    result = accelerator(rep_id, period, commission, revenue_base, plan)
    plan_id = "" if plan is None else plan.plan_id
    plan_version = 0 if plan is None else plan.version
    amount = result.amount - sums.accelerator
    if amount == 0:
        if (
            commission is sums.commission
            and revenue_base is sums.revenue_base
            and plan_id == sums.plan_id
            and plan_version == sums.plan_version
        ):
            return sums
        return PeriodSums(
            period,
            sums.currency,
            commission,
            revenue_base,
            sums.accelerator,
            plan_id,
            plan_version,
            sums.last_positive,
        )
    d = CommissionDelta(
        delta_id(trigger.trigger_id, rep_id, f"accelerator:{period}:{sums.currency}"),
        DeltaKind.ACCELERATOR,
        rep_id,
        None,
        None,
        plan_id or sums.plan_id,
        plan_version or sums.plan_version,
        sums.currency,
        amount,
        result.amount,
        commission,
        result.attainment,
        ONE,
        ZERO,
        trigger.event_id,
        trigger.event_type,
        trigger.at,
        book_period(period, closed),
        period,
        sums.last_positive if amount < 0 else None,
        result.trace,
    )
    out.append(d)
    return PeriodSums(
        period,
        sums.currency,
        commission,
        revenue_base,
        result.amount,
        plan_id,
        plan_version,
        d.delta_id if amount > 0 else sums.last_positive,
    )


def _on_delta(
    state: RepState,
    delta: CommissionDelta,
    plans: PlanBook,
    reps: Mapping[str, RepChanged],
    closed: Set[str],
) -> tuple[RepState, list[CommissionDelta]]:
    period, currency = delta.booked_period, delta.currency
    periods = state.periods
    index = -1
    for i, candidate in enumerate(periods):
        if candidate.period == period and candidate.currency == currency:
            index = i
            break
    sums = (
        PeriodSums(period, currency, ZERO_CENTS, ZERO_CENTS, ZERO_CENTS, "", 0, None)
        if index < 0
        else periods[index]
    )
    out: list[CommissionDelta] = []
    trigger = _Trigger(
        delta.delta_id, delta.cause_event_id, delta.cause_event_type, delta.occurred_at
    )
    rep = RepFacts.of(state.rep_id, reps.get(state.rep_id))
    sums = _recompute(
        state.rep_id,
        sums,
        sums.commission + delta.amount,
        sums.revenue_base + delta.revenue_base,
        plans,
        rep,
        closed,
        trigger,
        out,
    )
    new_periods = (*periods, sums) if index < 0 else (*periods[:index], sums, *periods[index + 1 :])
    return RepState(state.rep_id, new_periods, state.applied.set(delta.delta_id, tuple(out))), out


def _on_change(
    state: RepState,
    trigger: _Trigger,
    plans: PlanBook,
    rep: RepFacts,
    closed: Set[str],
) -> tuple[RepState, list[CommissionDelta]]:
    out: list[CommissionDelta] = []
    new_periods = tuple(
        _recompute(
            state.rep_id, sums, sums.commission, sums.revenue_base, plans, rep, closed, trigger, out
        )
        for sums in state.periods
    )
    if not out:
        if all(a is b for a, b in zip(new_periods, state.periods, strict=True)):
            return state, []
        return RepState(state.rep_id, new_periods, state.applied), []
    return RepState(
        state.rep_id, new_periods, state.applied.set(trigger.trigger_id, tuple(out))
    ), out


def apply(
    state: RepState | None,
    message: RepMessage,
    plans: PlanBook,
    reps: Mapping[str, RepChanged],
    closed: Set[str] = frozenset(),
) -> tuple[RepState | None, list[CommissionDelta]]:
    """Apply one message to a rep's period state; return the new state and the
    accelerator deltas it causes (for ``commission.deltas``, key rep_id).

    A commission or adjustment delta adds to the sums of its booked period and currency
    and recomputes that period's accelerator. ``PlanPublished`` and the rep's own
    ``RepChanged`` recompute every period the state holds (the plan in effect on a
    period's last day may have changed); an accelerator delta, ``PeriodClosed``, or a
    broadcast to a rep the stage does not hold return ``(state, [])``."""
    if isinstance(message, CommissionDelta):
        if message.kind == DeltaKind.ACCELERATOR:
            return state, []
        if state is None:
            state = RepState(message.rep_id)
        else:
            again = state.applied.get(message.delta_id)
            if again is not None:
                return state, list(again)
        return _on_delta(state, message, plans, reps, closed)
    if isinstance(message, PeriodClosed):
        return state, []
    if isinstance(message, PlanPublished | RepChanged):
        if state is None or not state.periods:
            return state, []
        again = state.applied.get(message.event_id)
        if again is not None:
            return state, list(again)
        trigger = _Trigger(
            message.event_id, message.event_id, type(message).__name__, message.occurred_at
        )
        if isinstance(message, RepChanged):
            if message.rep_id != state.rep_id:
                return state, []
            return _on_change(state, trigger, plans, RepFacts.of(state.rep_id, message), closed)
        if (message.plan_id, message.version) not in plans:
            try:
                plans = plans.with_version(plan_from_event(message))
            except PlanError:
                return state, []  # refused plans are dead-lettered at ingest
        rep = RepFacts.of(state.rep_id, reps.get(state.rep_id))
        return _on_change(state, trigger, plans, rep, closed)
    raise EngineError(f"the rep-period stage does not take {type(message).__name__}")
