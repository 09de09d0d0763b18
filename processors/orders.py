"""The order stage (key: order_id): earning, clawbacks and plan adjustments
(SEMANTICS.md sections 4 and 6).

``apply(state, message, plans, closed) -> (state, outputs)``

Inputs: :class:`OrderAccepted`, :class:`CreditResolved` and :class:`SnapshotRestated`
from the customer stage;
``OrderCancelled``, ``PaymentReceived`` and ``RefundIssued`` from upstream (they may arrive
before the order: they are kept and applied, in arrival order, when it arrives, each
booked by its own event time); ``PlanPublished`` and ``PeriodClosed`` broadcast to every
order. Outputs: :class:`CommissionDelta` (kind commission or adjustment, for the
rep-period stage, key rep_id), :class:`OrderCancelledNotice` (for the customer stage,
key customer_id) and :class:`DeadLetter` (conflicting input).

A payment or refund finer than the minor unit of its order's currency (SEMANTICS.md
section 2, "Precision") is refused alone with ``invalid.amount_precision``: only this
stage knows the order's currency. One that arrives after its order leaves the state as it
was (a second delivery gives the same letter); one kept before its order is dropped when
the order arrives, and its letter is recorded with the order's outputs.

Per (order, rep) the state keeps the plan version, C, the rounded earned amount E and the
rounded earned revenue base; each change emits E_new − E_old. The state remembers every
message it applied (with the outputs it emitted, when it emitted any): applying one again
re-emits exactly those outputs (same delta ids) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from .errors import EngineError, PlanError
from .events import (
    CommissionDelta,
    DeadLetter,
    DeltaKind,
    LineTrace,
    OrderCancelled,
    OrderPlaced,
    PaymentReceived,
    PeriodClosed,
    PlanPublished,
    RefundIssued,
)
from .ids import delta_id
from .messages import (
    CreditResolved,
    OrderAccepted,
    OrderCancelledNotice,
    RepFacts,
    SnapshotRestated,
)
from .money import ONE, ZERO, ZERO_CENTS, round_cents
from .periods import book_period, period_of
from .plans import BOOKING, PAYMENT, PlanBook, PlanVersion, plan_from_event
from .records import record
from .rules import compute_commission, order_total
from .validation import money_precision

__all__ = [
    "Movement",
    "OrderMessage",
    "OrderOutput",
    "OrderState",
    "RepLedger",
    "apply",
    "earned_part",
]

OrderMessage = (
    OrderAccepted
    | CreditResolved
    | SnapshotRestated
    | OrderCancelled
    | PaymentReceived
    | RefundIssued
    | PlanPublished
    | PeriodClosed
)
OrderOutput = CommissionDelta | OrderCancelledNotice | DeadLetter

PAYMENT_TYPE = "PaymentReceived"
REFUND_TYPE = "RefundIssued"
CANCEL_TYPE = "OrderCancelled"
PLACED_TYPE = "OrderPlaced"


@record
class Movement:
    """A payment, refund or cancellation of the order, as applied (or pending)."""

    event_id: str
    event_type: str  # PaymentReceived | RefundIssued | OrderCancelled
    ref: str  # payment_id | refund_id | ""
    amount: Decimal  # 0 for a cancellation
    at: datetime  # received_at | issued_at | cancelled_at


@record
class RepLedger:
    """One credited rep's commission on the order.

    ``plan_id`` is "" (and ``plan_version`` 0) when no plan applies to the rep: the order
    then earns the rep nothing until a plan governs it. ``commission`` (C) and ``lines``
    (its trace) are computed when first needed, i.e. when the order first earns something
    (None until then: an unpaid order under ``payment`` earns 0 whatever C is); the plan
    version they use is fixed here, so computing later gives the same amounts.
    ``earned`` and ``revenue_base`` are the rounded cumulative amounts emitted so far;
    ``last_positive`` is the id of the latest positive delta, named by a clawback as the
    commission it reverses."""

    rep: RepFacts
    share: Decimal
    plan_id: str
    plan_version: int
    commission: Decimal | None
    lines: tuple[LineTrace, ...]
    earned: Decimal
    revenue_base: Decimal
    last_positive: str | None


@record
class OrderState:
    """The order stage's state for one order_id.

    Before the order is accepted, ``movements`` holds the payments, refunds and
    cancellations that arrived early (and ``pending_credit`` a credit resolution); after,
    every movement applied, in order. ``paid``/``refunded`` are their sums, ``cancelled``
    whether a cancellation was applied. ``emitted`` maps each applied message id that
    produced outputs to those outputs (a message that produced none is recognised by
    ``accepted``, ``movements`` or ``credit_resolved_by``)."""

    order_id: str
    accepted: OrderAccepted | None = None
    total: Decimal = ZERO_CENTS
    movements: tuple[Movement, ...] = ()
    paid: Decimal = ZERO
    refunded: Decimal = ZERO
    cancelled: bool = False
    ledgers: tuple[RepLedger, ...] = ()
    pending_credit: CreditResolved | None = None
    credit_resolved_by: str | None = None
    emitted: tuple[tuple[str, tuple[OrderOutput, ...]], ...] = ()
    restated_version: int = 0  # the version of the latest restatement applied


def earned_part(
    mode: str, total: Decimal, paid: Decimal, refunded: Decimal, cancelled: bool
) -> tuple[Decimal, Decimal]:
    """(X, f): the earned part X of the order total T and the earned fraction f = X / T
    (SEMANTICS.md section 4).

    - cancelled: X = 0;
    - booking: X = T, or T − refunded (not below 0) after refunds;
    - payment: X = min(T, P) with P = max(0, paid − refunded);
    - full_payment: X = T when P ≥ T, else 0.
    An order with T = 0 counts as fully earned (f = 1) unless cancelled, or refunded in
    booking mode."""
    if cancelled:
        return ZERO, ZERO
    if mode == BOOKING:
        if refunded <= 0:
            return total, ONE
        rest = total - refunded
        if rest <= 0:
            return ZERO, ZERO
        return rest, rest / total
    net = paid - refunded
    if net >= total:
        return total, ONE
    if mode == PAYMENT:
        if net <= 0:
            return ZERO, ZERO
        return net, net / total
    return ZERO, ZERO


def _earned(commission: Decimal, total: Decimal, part: Decimal, fraction: Decimal) -> Decimal:
    """E = round(C × f), computed as C × X / T to keep full precision."""
    if fraction == ONE:
        return round_cents(commission)
    if fraction == 0:
        return ZERO_CENTS
    return round_cents(commission * part / total)


def _lookup(
    emitted: tuple[tuple[str, tuple[OrderOutput, ...]], ...], key: str
) -> tuple[OrderOutput, ...] | None:
    for mid, outs in emitted:
        if mid == key:
            return outs
    return None


def _plan_of(ledger: RepLedger, plans: PlanBook) -> PlanVersion | None:
    if not ledger.plan_id:
        return None
    plan = plans.get(ledger.plan_id, ledger.plan_version)
    if plan is None:
        raise EngineError(
            f"plan {ledger.plan_id} version {ledger.plan_version} is not in the plan book; "
            "dimension data is incomplete"
        )
    return plan


def _new_ledger(
    accepted: OrderAccepted, rep: RepFacts, share: Decimal, plans: PlanBook
) -> RepLedger:
    """A rep's ledger: the plan that governs the order for the rep; C not computed yet."""
    plan = plans.select(rep, accepted.order.placed_at.date())
    if plan is None:
        return RepLedger(rep, share, "", 0, ZERO, (), ZERO_CENTS, ZERO_CENTS, None)
    return RepLedger(rep, share, plan.plan_id, plan.version, None, (), ZERO_CENTS, ZERO_CENTS, None)


def _with_commission(
    ledger: RepLedger, accepted: OrderAccepted, total: Decimal, plan: PlanVersion
) -> RepLedger:
    """``ledger`` with C and its trace computed under ``plan``."""
    c = compute_commission(accepted.order, total, accepted.customer, ledger.rep, ledger.share, plan)
    return RepLedger(
        ledger.rep,
        ledger.share,
        ledger.plan_id,
        ledger.plan_version,
        c.amount,
        c.lines,
        ledger.earned,
        ledger.revenue_base,
        ledger.last_positive,
    )


class _Cause:
    __slots__ = ("at", "event_id", "event_type")

    def __init__(self, event_id: str, event_type: str, at: datetime) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.at = at


def _delta(
    kind: DeltaKind,
    ledger: RepLedger,
    plan: PlanVersion,
    accepted: OrderAccepted,
    cause: _Cause,
    earned: Decimal,
    revenue_base: Decimal,
    fraction: Decimal,
    booked: str,
    origin: str,
    commission: Decimal,
    lines: tuple[LineTrace, ...],
    component: str = "",
) -> CommissionDelta:
    order = accepted.order
    rep_id = ledger.rep.rep_id
    amount = earned - ledger.earned
    return CommissionDelta(
        delta_id(cause.event_id, rep_id, component or f"{kind.value}:{order.order_id}"),
        kind,
        rep_id,
        order.order_id,
        order.customer_id,
        plan.plan_id,
        plan.version,
        order.currency,
        amount,
        earned,
        commission,
        fraction,
        ledger.share,
        revenue_base - ledger.revenue_base,
        cause.event_id,
        cause.event_type,
        cause.at,
        booked,
        origin,
        ledger.last_positive if amount < 0 else None,
        lines,
    )


def _step(
    ledgers: tuple[RepLedger, ...],
    accepted: OrderAccepted,
    total: Decimal,
    paid: Decimal,
    refunded: Decimal,
    cancelled: bool,
    cause: _Cause,
    plans: PlanBook,
    closed: Set[str],
    out: list[OrderOutput],
) -> tuple[RepLedger, ...]:
    """Bring every ledger to the earned amount the order's figures now give, emitting a
    commission delta (booked by the cause's time) for each one that changes."""
    new: list[RepLedger] | None = None
    for i, ledger in enumerate(ledgers):
        plan = _plan_of(ledger, plans)
        if plan is None:
            continue
        part, fraction = earned_part(plan.earn_on, total, paid, refunded, cancelled)
        base = round_cents(part * ledger.share)
        commission = ledger.commission
        if commission is None:
            if fraction == 0 and not ledger.earned and not ledger.revenue_base:
                continue  # nothing earned before or now: C is not needed yet
            ledger = _with_commission(ledger, accepted, total, plan)
            commission = ledger.commission
            assert commission is not None
        earned = _earned(commission, total, part, fraction)
        if earned == ledger.earned and base == ledger.revenue_base:
            if ledger is not ledgers[i]:
                if new is None:
                    new = list(ledgers)
                new[i] = ledger
            continue
        origin = period_of(cause.at, plan.period, plan.tz)
        d = _delta(
            DeltaKind.COMMISSION,
            ledger,
            plan,
            accepted,
            cause,
            earned,
            base,
            fraction,
            book_period(origin, closed),
            origin,
            commission,
            ledger.lines,
        )
        out.append(d)
        if new is None:
            new = list(ledgers)
        new[i] = RepLedger(
            ledger.rep,
            ledger.share,
            ledger.plan_id,
            ledger.plan_version,
            commission,
            ledger.lines,
            earned,
            base,
            d.delta_id if d.amount > 0 else ledger.last_positive,
        )
    return ledgers if new is None else tuple(new)


def _in_time_order(movements: tuple[Movement, ...]) -> list[Movement]:
    """The movements in business-time order (equal times keep their arrival order)."""
    return sorted(movements, key=_at)


def _at(mv: Movement) -> datetime:
    return mv.at


def _after(
    mv: Movement, paid: Decimal, refunded: Decimal, cancelled: bool
) -> tuple[Decimal, Decimal, bool]:
    """The order's (paid, refunded, cancelled) after movement ``mv``."""
    if mv.event_type == PAYMENT_TYPE:
        return paid + mv.amount, refunded, cancelled
    if mv.event_type == REFUND_TYPE:
        return paid, refunded + mv.amount, cancelled
    return paid, refunded, True


def _period_ends(
    mode: str, total: Decimal, movements: list[Movement], plan: PlanVersion
) -> list[tuple[str, Decimal, Decimal, datetime]]:
    """For time-ordered ``movements``: per period they fall in (in order), the earned part
    X and fraction f after the period's last movement, and that movement's time."""
    ends: list[tuple[str, Decimal, Decimal, datetime]] = []
    if not movements:
        return ends
    paid = refunded = ZERO
    cancelled = False
    current = ""
    last = movements[0].at
    for mv in movements:
        period = period_of(mv.at, plan.period, plan.tz)
        if period != current and current:
            ends.append((current, *earned_part(mode, total, paid, refunded, cancelled), last))
        current = period
        last = mv.at
        paid, refunded, cancelled = _after(mv, paid, refunded, cancelled)
    ends.append((current, *earned_part(mode, total, paid, refunded, cancelled), last))
    return ends


def _restate(
    ledgers: tuple[RepLedger, ...],
    accepted: OrderAccepted,
    total: Decimal,
    before: tuple[Movement, ...],
    late: Movement,
    plans: PlanBook,
    closed: Set[str],
    out: list[OrderOutput],
) -> tuple[RepLedger, ...]:
    """Apply a movement that arrived after one of the order's movements with a later
    business time (SEMANTICS.md section 4, "arrival order").

    The amount an order books in period p is E(its movements up to the end of p) −
    E(its movements before p), whatever order they arrived in. Per ledger this compares
    those per-period amounts with and without ``late`` (both in business-time order, under
    the ledger's current C) and emits one delta per period whose amount changes, caused by
    ``late`` and keeping that period as its origin. The deltas sum to E_new − E_old."""
    order = accepted.order
    without = _in_time_order(before)
    with_late = _in_time_order((*before, late))
    cause = _Cause(late.event_id, late.event_type, late.at)
    new: list[RepLedger] | None = None
    for i, ledger in enumerate(ledgers):
        plan = _plan_of(ledger, plans)
        if plan is None:
            continue
        mode = plan.earn_on
        ends = _period_ends(mode, total, with_late, plan)
        ends_without = {p: (x, f) for p, x, f, _ in _period_ends(mode, total, without, plan)}
        commission = ledger.commission
        if commission is None:
            if not any(f for _, _, f, _ in ends) and not any(f for _, f in ends_without.values()):
                continue  # nothing earned in any period, with or without it
            ledger = _with_commission(ledger, accepted, total, plan)
            commission = ledger.commission
            assert commission is not None
        own = period_of(late.at, plan.period, plan.tz)
        x_without, f_without = earned_part(mode, total, ZERO, ZERO, False)
        before_e = before_b = ZERO
        for period, x, f, last_at in ends:
            if period in ends_without:
                x_without, f_without = ends_without[period]
            diff_e = _earned(commission, total, x, f) - _earned(
                commission, total, x_without, f_without
            )
            diff_b = round_cents(x * ledger.share) - round_cents(x_without * ledger.share)
            step_e, step_b = diff_e - before_e, diff_b - before_b
            before_e, before_b = diff_e, diff_b
            if not step_e and not step_b:
                continue
            if period == own:
                at, component = cause, ""
            else:
                at = _Cause(late.event_id, late.event_type, last_at)
                component = f"{DeltaKind.COMMISSION.value}:{order.order_id}:{period}"
            d = _delta(
                DeltaKind.COMMISSION,
                ledger,
                plan,
                accepted,
                at,
                ledger.earned + step_e,
                ledger.revenue_base + step_b,
                f,
                book_period(period, closed),
                period,
                commission,
                ledger.lines,
                component,
            )
            out.append(d)
            ledger = RepLedger(
                ledger.rep,
                ledger.share,
                ledger.plan_id,
                ledger.plan_version,
                commission,
                ledger.lines,
                d.cumulative,
                ledger.revenue_base + step_b,
                d.delta_id if d.amount > 0 else ledger.last_positive,
            )
        if ledger is not ledgers[i]:
            if new is None:
                new = list(ledgers)
            new[i] = ledger
    return ledgers if new is None else tuple(new)


def _replay_history(
    movements: tuple[Movement, ...],
    total: Decimal,
    accepted: OrderAccepted,
    ledgers: tuple[RepLedger, ...],
    plans: PlanBook,
    closed: Set[str],
    out: list[OrderOutput],
    notify: bool = False,
) -> tuple[RepLedger, ...]:
    """Run fresh ledgers through the order's whole history (placement, then every applied
    movement in business-time order), as if they had been credited from the start; with
    ``notify``, output the :class:`OrderCancelledNotice` of the first cancellation."""
    order = accepted.order
    paid = refunded = ZERO
    cancelled = False
    ledgers = _step(
        ledgers,
        accepted,
        total,
        paid,
        refunded,
        cancelled,
        _Cause(order.event_id, PLACED_TYPE, order.placed_at),
        plans,
        closed,
        out,
    )
    for mv in _in_time_order(movements):
        if notify and mv.event_type == CANCEL_TYPE and not cancelled:
            out.append(OrderCancelledNotice(mv.event_id, order.order_id, order.customer_id, mv.at))
        paid, refunded, cancelled = _after(mv, paid, refunded, cancelled)
        ledgers = _step(
            ledgers,
            accepted,
            total,
            paid,
            refunded,
            cancelled,
            _Cause(mv.event_id, mv.event_type, mv.at),
            plans,
            closed,
            out,
        )
    return ledgers


def _record(state: OrderState, key: str, outputs: list[OrderOutput], **changes: Any) -> OrderState:
    """``state`` with ``changes``, and message ``key`` recorded with its ``outputs`` (a
    message without outputs is recognised by the state it changed)."""
    if not outputs:
        return replace(state, **changes)
    return replace(state, emitted=(*state.emitted, (key, tuple(outputs))), **changes)


def _emitted(
    state: OrderState, key: str, outputs: list[OrderOutput]
) -> tuple[tuple[str, tuple[OrderOutput, ...]], ...]:
    return (*state.emitted, (key, tuple(outputs))) if outputs else state.emitted


def _accept(
    state: OrderState | None, msg: OrderAccepted, plans: PlanBook, closed: Set[str]
) -> tuple[OrderState, list[OrderOutput]]:
    order = msg.order
    if state is None:
        state = OrderState(order.order_id)
    elif state.accepted is not None:
        letter = DeadLetter(
            "conflict.order_exists",
            f"order {order.order_id} was already placed by event {state.accepted.event_id}",
            order.event_id,
            PLACED_TYPE,
        )
        return _record(state, order.event_id, [letter]), [letter]
    total = order_total(order)
    out: list[OrderOutput] = []
    movements = _allowed(state.movements, order, out)
    ledgers = tuple(
        _new_ledger(msg, rep, credit.share, plans)
        for credit, rep in zip(msg.credits, msg.reps, strict=True)
    )
    ledgers = _replay_history(movements, total, msg, ledgers, plans, closed, out, True)
    paid = refunded = ZERO
    cancelled = False
    for mv in movements:
        paid, refunded, cancelled = _after(mv, paid, refunded, cancelled)
    resolved_by = state.credit_resolved_by
    pending = state.pending_credit
    if pending is not None and not ledgers:
        fresh = tuple(
            _new_ledger(msg, rep, credit.share, plans)
            for credit, rep in zip(pending.credits, pending.reps, strict=True)
        )
        ledgers = _replay_history(movements, total, msg, fresh, plans, closed, out)
        resolved_by = pending.event_id
    final = OrderState(
        state.order_id,
        msg,
        total,
        movements,
        paid,
        refunded,
        cancelled,
        ledgers,
        None,
        resolved_by,
        _emitted(state, order.event_id, out),
    )
    return final, out


def _allowed(
    movements: tuple[Movement, ...], order: OrderPlaced, out: list[OrderOutput]
) -> tuple[Movement, ...]:
    """The movements kept before ``order`` arrived that its currency allows; the letter of
    each payment or refund finer than its minor unit goes to ``out``."""
    kept: list[Movement] = []
    for mv in movements:
        letter = _too_fine(mv, order)
        if letter is None:
            kept.append(mv)
        else:
            out.append(letter)
    return movements if len(kept) == len(movements) else tuple(kept)


def _too_fine(mv: Movement, order: OrderPlaced) -> DeadLetter | None:
    if mv.event_type == CANCEL_TYPE:
        return None
    return money_precision(mv.amount, order.currency, order.order_id, mv.event_id, mv.event_type)


def _move(
    state: OrderState | None,
    event: PaymentReceived | RefundIssued | OrderCancelled,
    plans: PlanBook,
    closed: Set[str],
) -> tuple[OrderState, list[OrderOutput]]:
    if state is None:
        state = OrderState(event.order_id)
    if isinstance(event, PaymentReceived):
        mv = Movement(
            event.event_id, PAYMENT_TYPE, event.payment_id, event.amount, event.received_at
        )
    elif isinstance(event, RefundIssued):
        mv = Movement(event.event_id, REFUND_TYPE, event.refund_id, event.amount, event.issued_at)
    else:
        mv = Movement(event.event_id, CANCEL_TYPE, "", ZERO, event.cancelled_at)
    accepted = state.accepted
    if accepted is not None:
        letter = _too_fine(mv, accepted.order)
        if letter is not None:
            return state, [letter]  # refused alone: the order stays as it was
    if mv.ref:
        for other in state.movements:
            if other.event_type == mv.event_type and other.ref == mv.ref:
                noun = "payment_id" if mv.event_type == PAYMENT_TYPE else "refund_id"
                letter = DeadLetter(
                    f"conflict.duplicate_{noun}",
                    f"{noun} {mv.ref} of order {event.order_id} was already applied by "
                    f"event {other.event_id}",
                    event.event_id,
                    mv.event_type,
                )
                return _record(state, event.event_id, [letter]), [letter]
    movements = (*state.movements, mv)
    if accepted is None:
        return _record(state, event.event_id, [], movements=movements), []
    out: list[OrderOutput] = []
    if mv.event_type == CANCEL_TYPE and (
        not state.cancelled
        or mv.at < min(m.at for m in state.movements if m.event_type == CANCEL_TYPE)
    ):
        # the first cancellation, or one dated before it (read later): the customer stage
        # counts the order among earlier orders until its earliest cancellation
        order = accepted.order
        out.append(OrderCancelledNotice(mv.event_id, order.order_id, order.customer_id, mv.at))
    paid, refunded, cancelled = _after(mv, state.paid, state.refunded, state.cancelled)
    late = False
    at = mv.at
    for other in state.movements:
        if other.at > at:
            late = True
            break
    if late:
        ledgers = _restate(
            state.ledgers, accepted, state.total, state.movements, mv, plans, closed, out
        )
    else:
        ledgers = _step(
            state.ledgers,
            accepted,
            state.total,
            paid,
            refunded,
            cancelled,
            _Cause(mv.event_id, mv.event_type, mv.at),
            plans,
            closed,
            out,
        )
    new = OrderState(
        state.order_id,
        accepted,
        state.total,
        movements,
        paid,
        refunded,
        cancelled,
        ledgers,
        state.pending_credit,
        state.credit_resolved_by,
        _emitted(state, event.event_id, out),
    )
    return new, out


def _resolve(
    state: OrderState | None, msg: CreditResolved, plans: PlanBook, closed: Set[str]
) -> tuple[OrderState, list[OrderOutput]]:
    if state is None:
        state = OrderState(msg.order_id)
    accepted = state.accepted
    if accepted is None:
        pending = state.pending_credit or msg
        return _record(state, msg.event_id, [], pending_credit=pending), []
    if state.ledgers:  # already credited: credit is resolved once
        return _record(state, msg.event_id, []), []
    fresh = tuple(
        _new_ledger(accepted, rep, credit.share, plans)
        for credit, rep in zip(msg.credits, msg.reps, strict=True)
    )
    out: list[OrderOutput] = []
    ledgers = _replay_history(state.movements, state.total, accepted, fresh, plans, closed, out)
    return (
        _record(state, msg.event_id, out, ledgers=ledgers, credit_resolved_by=msg.event_id),
        out,
    )


def _per_period(
    ledger: RepLedger,
    accepted: OrderAccepted,
    total: Decimal,
    movements: list[Movement],
    plan: PlanVersion,
) -> dict[str, tuple[Decimal, Decimal, Decimal, datetime]]:
    """What ``ledger`` (C computed) books per period when the order's history runs from
    its placement through ``movements`` (business-time order), each step booked by its own
    time, as :func:`_replay_history` does: period -> (commission, revenue base, earned
    fraction after the period's last step, that step's time)."""
    assert ledger.commission is not None
    order = accepted.order
    out: dict[str, tuple[Decimal, Decimal, Decimal, datetime]] = {}
    paid = refunded = ZERO
    cancelled = False
    prev_e = prev_b = ZERO_CENTS
    steps: list[Movement | None] = [None, *movements]
    for mv in steps:
        at = order.placed_at if mv is None else mv.at
        if mv is not None:
            paid, refunded, cancelled = _after(mv, paid, refunded, cancelled)
        part, fraction = earned_part(plan.earn_on, total, paid, refunded, cancelled)
        e = _earned(ledger.commission, total, part, fraction)
        b = round_cents(part * ledger.share)
        period = period_of(at, plan.period, plan.tz)
        was_e, was_b, _, _ = out.get(period, (ZERO_CENTS, ZERO_CENTS, ZERO, at))
        out[period] = (was_e + e - prev_e, was_b + b - prev_b, fraction, at)
        prev_e, prev_b = e, b
    return out


def _restated(
    state: OrderState, msg: SnapshotRestated, plans: PlanBook, closed: Set[str]
) -> tuple[OrderState, list[OrderOutput]]:
    """The order's snapshot as of placed_at changed (a CRM record, an earlier order or a
    cancellation read after the order): book, per rep and period, what the order earns
    there with the new snapshot less what it earned with the old, so that every period
    ends where it would have been had that input been read first (SEMANTICS.md section 2
    as decided in docs/semantics-decisions.md, "CRM facts count by business time")."""
    accepted = state.accepted
    assert accepted is not None
    new_accepted = OrderAccepted(
        accepted.order, msg.customer, msg.credits, msg.reps, msg.credit_source
    )
    if new_accepted == accepted or msg.version <= state.restated_version:
        # the same view, or an older one than applied: recorded, nothing to book
        return replace(state, emitted=(*state.emitted, (msg.event_id, ()))), []
    movements = _in_time_order(state.movements)
    total = state.total
    old_by_rep = {ledger.rep.rep_id: ledger for ledger in state.ledgers}
    new_by_rep = {
        rep.rep_id: _new_ledger(new_accepted, rep, credit.share, plans)
        for credit, rep in zip(msg.credits, msg.reps, strict=True)
    }
    out: list[OrderOutput] = []
    ledgers: list[RepLedger] = []
    for rep_id in [*old_by_rep, *(r for r in new_by_rep if r not in old_by_rep)]:
        old, new = old_by_rep.get(rep_id), new_by_rep.get(rep_id)
        old_plan = None if old is None else _plan_of(old, plans)
        new_plan = None if new is None else _plan_of(new, plans)
        before: dict[str, tuple[Decimal, Decimal, Decimal, datetime]] = {}
        if old is not None and old_plan is not None and old.commission is not None:
            before = _per_period(old, accepted, total, movements, old_plan)
        after: dict[str, tuple[Decimal, Decimal, Decimal, datetime]] = {}
        if new is not None and new_plan is not None:
            new = _with_commission(new, new_accepted, total, new_plan)
            after = _per_period(new, new_accepted, total, movements, new_plan)
            if not any(e or b for e, b, _, _ in after.values()) and not before:
                new = replace(new, commission=None, lines=())  # C when first needed
        # the ledger the deltas are written against: the new one (or the old one, for a
        # rep no longer credited), carrying what was booked so far
        shown = new if new is not None else old
        plan = new_plan if new is not None else old_plan
        assert shown is not None
        current = replace(
            shown,
            earned=ZERO_CENTS if old is None else old.earned,
            revenue_base=ZERO_CENTS if old is None else old.revenue_base,
            last_positive=None if old is None else old.last_positive,
        )
        if plan is not None:
            for period in sorted(before.keys() | after.keys()):
                e1, b1, f1, at1 = after.get(period, (ZERO_CENTS, ZERO_CENTS, ZERO, None))
                e0, b0, _, at0 = before.get(period, (ZERO_CENTS, ZERO_CENTS, ZERO, None))
                if e1 == e0 and b1 == b0:
                    continue
                at = at1 or at0
                assert at is not None
                d = _delta(
                    DeltaKind.ADJUSTMENT,
                    current,
                    plan,
                    new_accepted,
                    _Cause(msg.event_id, msg.cause_type, at),
                    current.earned + e1 - e0,
                    current.revenue_base + b1 - b0,
                    f1,
                    book_period(period, closed),
                    period,
                    current.commission if current.commission is not None else ZERO,
                    current.lines,
                    f"restated:{accepted.order.order_id}:{period}",
                )
                out.append(d)
                current = replace(
                    current,
                    earned=d.cumulative,
                    revenue_base=current.revenue_base + b1 - b0,
                    last_positive=d.delta_id if d.amount > 0 else current.last_positive,
                )
        if new is not None:
            ledgers.append(current)
    changes: dict[str, Any] = {
        "accepted": new_accepted,
        "ledgers": tuple(ledgers),
        "restated_version": msg.version,
    }
    if msg.credits and not state.ledgers:
        changes["credit_resolved_by"] = msg.event_id
    # recorded even without outputs: a restatement read again after a later one must not
    # bring the older facts back
    emitted = (*state.emitted, (msg.event_id, tuple(out)))
    return replace(state, emitted=emitted, **changes), out


def _replan(
    state: OrderState, msg: PlanPublished, plans: PlanBook, closed: Set[str]
) -> tuple[OrderState, list[OrderOutput]]:
    accepted = state.accepted
    assert accepted is not None
    if (msg.plan_id, msg.version) not in plans:
        try:
            plans = plans.with_version(plan_from_event(msg))
        except PlanError:
            return state, []  # refused plans are dead-lettered at ingest
    order = accepted.order
    on = order.placed_at.date()
    cause = _Cause(msg.event_id, "PlanPublished", msg.occurred_at)
    out: list[OrderOutput] = []
    new: list[RepLedger] | None = None
    for i, ledger in enumerate(state.ledgers):
        plan = plans.select(ledger.rep, on)
        if plan is None:
            if not ledger.plan_id:
                continue
        elif plan.plan_id == ledger.plan_id and plan.version == ledger.plan_version:
            continue
        old_plan = _plan_of(ledger, plans)
        commission: Decimal | None
        lines: tuple[LineTrace, ...]
        if plan is not None:
            part, fraction = earned_part(
                plan.earn_on, state.total, state.paid, state.refunded, state.cancelled
            )
            base = round_cents(part * ledger.share)
            if fraction == 0 and not ledger.earned and not ledger.revenue_base:
                commission, lines, earned = None, (), ZERO_CENTS  # C when first needed
            else:
                c = compute_commission(
                    order, state.total, accepted.customer, ledger.rep, ledger.share, plan
                )
                commission, lines = c.amount, c.lines
                earned = _earned(commission, state.total, part, fraction)
            shown = plan
        else:
            commission, lines = ZERO, ()
            earned, base, fraction = ZERO_CENTS, ZERO_CENTS, ZERO
            assert old_plan is not None
            shown = old_plan
        last_positive = ledger.last_positive
        if earned != ledger.earned or base != ledger.revenue_base:
            origin = period_of(order.placed_at, shown.period, shown.tz)
            booked = book_period(period_of(msg.occurred_at, shown.period, shown.tz), closed)
            d = _delta(
                DeltaKind.ADJUSTMENT,
                ledger,
                shown,
                accepted,
                cause,
                earned,
                base,
                fraction,
                booked,
                origin,
                ZERO if commission is None else commission,
                lines,
            )
            out.append(d)
            if d.amount > 0:
                last_positive = d.delta_id
        if new is None:
            new = list(state.ledgers)
        new[i] = RepLedger(
            ledger.rep,
            ledger.share,
            "" if plan is None else plan.plan_id,
            0 if plan is None else plan.version,
            commission,
            lines,
            earned,
            base,
            last_positive,
        )
    if new is None:
        return state, []
    if not out:
        # the plan now governing changed but nothing was earned yet: no delta to re-emit
        return replace(state, ledgers=tuple(new)), []
    return _record(state, msg.event_id, out, ledgers=tuple(new)), out


def _applied(state: OrderState, message: OrderMessage, key: str) -> bool:
    """Whether ``message`` was applied to ``state`` without producing outputs."""
    if isinstance(message, OrderAccepted):
        return state.accepted is not None and state.accepted.event_id == key
    if isinstance(message, PaymentReceived | RefundIssued | OrderCancelled):
        return key in [mv.event_id for mv in state.movements]
    if isinstance(message, CreditResolved):
        pending = state.pending_credit
        return state.credit_resolved_by == key or (pending is not None and pending.event_id == key)
    return False


def message_id(message: OrderMessage) -> str:
    """The id under which the order stage records a message as applied."""
    if isinstance(message, OrderAccepted):
        return message.order.event_id
    return message.event_id


def apply(
    state: OrderState | None, message: OrderMessage, plans: PlanBook, closed: Set[str]
) -> tuple[OrderState | None, list[OrderOutput]]:
    """Apply one message to an order's state; return the new state and the outputs.

    ``plans`` is every plan version known, ``closed`` the ids of closed periods (both
    read-only dimensions). A message already applied re-emits the outputs it produced
    then and returns ``state`` itself. A broadcast (``PlanPublished``, ``PeriodClosed``)
    to an order the stage does not hold returns ``(state, [])``. Raises
    :class:`EngineError` only when the plan a ledger was computed with is missing from
    ``plans`` (incomplete dimension data; retry once it is loaded)."""
    if state is not None:
        key = message_id(message)
        if state.emitted:
            again = _lookup(state.emitted, key)
            if again is not None:
                return state, list(again)
        if _applied(state, message, key):
            return state, []
    if isinstance(message, PaymentReceived | RefundIssued | OrderCancelled):
        return _move(state, message, plans, closed)
    if isinstance(message, OrderAccepted):
        return _accept(state, message, plans, closed)
    if isinstance(message, CreditResolved):
        return _resolve(state, message, plans, closed)
    if isinstance(message, SnapshotRestated):
        if state is None or state.accepted is None:
            # cannot happen: the customer stage restates only orders it accepted, and its
            # messages for one order travel in one partition, in order
            raise EngineError(f"a restatement of order {message.order_id} before its acceptance")
        return _restated(state, message, plans, closed)
    if isinstance(message, PlanPublished):
        if state is None or state.accepted is None or not state.ledgers:
            return state, []
        return _replan(state, message, plans, closed)
    if isinstance(message, PeriodClosed):
        return state, []
    raise EngineError(f"the order stage does not take {type(message).__name__}")
