"""The rep-period stage (key: rep_id): tiers and per-period caps (SEMANTICS.md section 5).

``apply(state, message, plans, reps, closed) -> (state, outputs)``

Inputs: the commission and adjustment deltas of the rep (the order stage's outputs,
keyed by rep on their way to ``commission.deltas``), and, so that the accelerator is
recomputed when the rep's plan for a period changes, ``PlanPublished`` (broadcast) and
the rep's own ``RepChanged``. ``PeriodClosed`` is accepted and changes nothing.
Dimensions: every plan version, current rep facts, the closed periods.

Per (period, currency) the state keeps K (the sum of the rep's non-accelerator deltas
booked in the period), the earned revenue base booked in the period, the rounded
accelerator amount emitted so far, and every delta id (and PlanPublished/RepChanged
event id) applied to that period with the accelerator deltas it emitted there. Outputs
are accelerator deltas, each the difference of rounded cumulative accelerator amounts; as
both formulas depend only on the period's sums, the final amounts do not depend on
arrival order. A delta id applied twice counts once: applying it again re-emits what it
emitted the first time.

Everything is per (period, currency), so a :class:`RepState` may hold all the rep's
periods (as :class:`processors.engine.Engine` does) or just one: a worker may key its
table by :func:`state_key` (rep, period, currency) to keep each stored value small, and
apply a ``RepChanged``/``PlanPublished`` to each of the rep's states.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import field
from datetime import datetime
from decimal import Decimal

from .errors import EngineError, PlanError
from .events import CommissionDelta, DeltaKind, PeriodClosed, PlanPublished, RepChanged
from .ids import delta_id
from .messages import RepFacts, rep_facts
from .money import ONE, ZERO, ZERO_CENTS
from .periods import book_period, last_day
from .plans import PlanBook, plan_from_event
from .pmap import PMap
from .records import record
from .tiers import accelerator

__all__ = ["Applied", "PeriodSums", "RepMessage", "RepState", "apply", "state_key"]

RepMessage = CommissionDelta | PlanPublished | RepChanged | PeriodClosed

_NO_OUTPUTS: tuple[CommissionDelta, ...] = ()


@record
class PeriodSums:
    """One rep's (period, currency): its sums, its accelerator so far, and what was
    applied to it (``applied``: delta or event id -> the accelerator deltas it emitted)."""

    period: str
    currency: str
    commission: Decimal  # K
    revenue_base: Decimal
    accelerator: Decimal  # rounded cumulative accelerator amount emitted
    plan_id: str  # the plan the accelerator was last computed with ("" if none)
    plan_version: int
    last_positive: str | None  # the latest positive accelerator delta
    applied: PMap[str, tuple[CommissionDelta, ...]] = field(default_factory=PMap)


@record
class Applied:
    """One entry of :attr:`PeriodSums.applied` stored on its own (processors.storage): an
    id applied to the period and the accelerator deltas it emitted there."""

    trigger: str
    emitted: tuple[CommissionDelta, ...]


@record
class RepState:
    """The rep-period stage's state for one rep_id: some or all of its periods."""

    rep_id: str
    periods: tuple[PeriodSums, ...] = ()


def state_key(rep_id: str, period: str, currency: str) -> str:
    """A table key for a state holding one (rep, period, currency), for a worker that
    stores the rep-period stage per period (the Kafka key stays the rep_id)."""
    return f"{rep_id}|{period}|{currency}"


_Trigger = tuple[str, str, str, datetime]
"""(trigger id, cause event id, cause event type, cause time) of a recomputation."""


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
    """``sums`` with the sums ``commission`` and ``revenue_base``, the accelerator they give
    now, and ``trigger`` recorded as applied; emits an accelerator delta into ``out`` when
    the accelerator changes."""
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
            return sums  # a recomputation that changed nothing: nothing to remember
        return PeriodSums(
            period,
            sums.currency,
            commission,
            revenue_base,
            sums.accelerator,
            plan_id,
            plan_version,
            sums.last_positive,
            sums.applied.set(trigger[0], _NO_OUTPUTS),
        )
    d = CommissionDelta(
        delta_id(trigger[0], rep_id, f"accelerator:{period}:{sums.currency}"),
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
        trigger[1],
        trigger[2],
        trigger[3],
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
        sums.applied.set(trigger[0], (d,)),
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
    for i in range(len(periods) - 1, -1, -1):  # newest first: most deltas are current
        candidate = periods[i]
        if candidate.period == period and candidate.currency == currency:
            index = i
            break
    if index < 0:
        sums = PeriodSums(period, currency, ZERO_CENTS, ZERO_CENTS, ZERO_CENTS, "", 0, None)
    else:
        sums = periods[index]
        again = sums.applied.get(delta.delta_id)
        if again is not None:
            return state, list(again)
    out: list[CommissionDelta] = []
    trigger = (delta.delta_id, delta.cause_event_id, delta.cause_event_type, delta.occurred_at)
    new_sums = _recompute(
        state.rep_id,
        sums,
        sums.commission + delta.amount,
        sums.revenue_base + delta.revenue_base,
        plans,
        rep_facts(state.rep_id, reps),
        closed,
        trigger,
        out,
    )
    # a new PeriodSums records the delta id; ``sums`` itself (nothing changed) does not
    # hold it (it was not applied before): counted once, even when nothing changed
    sums = _remember(sums, delta.delta_id) if new_sums is sums else new_sums
    new_periods = (*periods, sums) if index < 0 else (*periods[:index], sums, *periods[index + 1 :])
    return RepState(state.rep_id, new_periods), out


def _remember(sums: PeriodSums, trigger_id: str) -> PeriodSums:
    return PeriodSums(
        sums.period,
        sums.currency,
        sums.commission,
        sums.revenue_base,
        sums.accelerator,
        sums.plan_id,
        sums.plan_version,
        sums.last_positive,
        sums.applied.set(trigger_id, _NO_OUTPUTS),
    )


def _on_change(
    state: RepState,
    trigger: _Trigger,
    plans: PlanBook,
    rep: RepFacts,
    closed: Set[str],
) -> tuple[RepState, list[CommissionDelta]]:
    out: list[CommissionDelta] = []
    new_periods: list[PeriodSums] = []
    for sums in state.periods:
        again = sums.applied.get(trigger[0])
        if again is not None:  # applied before: re-emit this period's part
            out.extend(again)
            new_periods.append(sums)
            continue
        new_periods.append(
            _recompute(
                state.rep_id,
                sums,
                sums.commission,
                sums.revenue_base,
                plans,
                rep,
                closed,
                trigger,
                out,
            )
        )
    if all(a is b for a, b in zip(new_periods, state.periods, strict=True)):
        return state, out
    return RepState(state.rep_id, tuple(new_periods)), out


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
    broadcast to a rep the stage does not hold return ``(state, [])``. A message applied
    before re-emits the accelerator deltas it emitted then and changes nothing."""
    if isinstance(message, CommissionDelta):
        if message.kind == DeltaKind.ACCELERATOR:
            return state, []
        return _on_delta(state or RepState(message.rep_id), message, plans, reps, closed)
    if isinstance(message, PeriodClosed):
        return state, []
    if isinstance(message, PlanPublished | RepChanged):
        if state is None or not state.periods:
            return state, []
        trigger = (message.event_id, message.event_id, type(message).__name__, message.occurred_at)
        if isinstance(message, RepChanged):
            if message.rep_id != state.rep_id:
                return state, []
            return _on_change(state, trigger, plans, RepFacts.of(state.rep_id, message), closed)
        if (message.plan_id, message.version) not in plans:
            try:
                plans = plans.with_version(plan_from_event(message))
            except PlanError:
                return state, []  # refused plans are dead-lettered at ingest
        return _on_change(state, trigger, plans, rep_facts(state.rep_id, reps), closed)
    raise EngineError(f"the rep-period stage does not take {type(message).__name__}")
