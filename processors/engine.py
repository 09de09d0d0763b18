"""The batch reference: the three stages composed in memory, in one process.

:class:`Engine` routes every event through the stages exactly as the Faust worker does
(:mod:`processors.stages`): validation, then customer -> order -> rep-period, with plans
and closed periods broadcast and reps, plans and closed periods as dimensions. It is
what ``comstream replay`` runs and what streaming results are compared with.

A duplicate event changes nothing and emits nothing new: the stages re-emit what they
emitted the first time, and the engine passes on each delta id (and each dead letter)
once.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from .customers import CustomerState
from .customers import apply as customer_apply
from .errors import PlanError
from .events import (
    CommissionDelta,
    CustomerChanged,
    DeadLetter,
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentReceived,
    PeriodClosed,
    PlanPublished,
    RefundIssued,
    RepChanged,
)
from .messages import CreditResolved, OrderAccepted, OrderCancelledNotice, SnapshotRestated
from .orders import OrderState
from .orders import apply as order_apply
from .plans import PlanBook, plan_from_event
from .reps import RepState
from .reps import apply as rep_apply
from .validation import validate_event

__all__ = ["Engine", "Output"]

Output = CommissionDelta | DeadLetter


class Engine:
    """The commission engine over a sequence of events, in memory.

    ``process(event)`` returns the new outputs the event caused: commission,
    adjustment and accelerator deltas (each delta id once over the engine's life) and
    dead letters. ``totals()`` sums the deltas per (rep, booked period, currency).
    Not thread-safe.
    """

    def __init__(self) -> None:
        self._plans = PlanBook()
        self._reps: dict[str, RepChanged] = {}
        self._closed: set[str] = set()
        self._customers: dict[str, CustomerState] = {}
        self._orders: dict[str, OrderState] = {}
        self._rep_states: dict[str, RepState] = {}
        self._deltas: list[CommissionDelta] = []
        # a dict, not a set: a dict of strings only is not tracked by the cyclic GC, which
        # would otherwise walk every id on each full collection
        self._delta_ids: dict[str, None] = {}
        self._dead: list[DeadLetter] = []
        self._dead_keys: set[tuple[str, str]] = set()
        self._totals: dict[tuple[str, str, str], Decimal] = {}
        self._notices: deque[OrderCancelledNotice] = deque()

    # ------------------------------------------------------------------ reading

    @property
    def plans(self) -> PlanBook:
        """Every plan version accepted so far."""
        return self._plans

    @property
    def reps(self) -> Mapping[str, RepChanged]:
        return self._reps

    @property
    def closed_periods(self) -> frozenset[str]:
        return frozenset(self._closed)

    @property
    def deltas(self) -> Sequence[CommissionDelta]:
        """Every delta emitted, in emission order, each delta id once."""
        return self._deltas

    @property
    def dead_letters(self) -> Sequence[DeadLetter]:
        return self._dead

    def totals(self) -> dict[tuple[str, str, str], Decimal]:
        """(rep_id, booked_period, currency) -> sum of the delta amounts booked there."""
        return dict(self._totals)

    def order_state(self, order_id: str) -> OrderState | None:
        return self._orders.get(order_id)

    def customer_state(self, customer_id: str) -> CustomerState | None:
        return self._customers.get(customer_id)

    def rep_state(self, rep_id: str) -> RepState | None:
        return self._rep_states.get(rep_id)

    def order_states(self) -> Mapping[str, OrderState]:
        """Every order stage state, by order_id (read-only; for BI facts)."""
        return self._orders

    def customer_states(self) -> Mapping[str, CustomerState]:
        """Every customer stage state, by customer_id (read-only; for BI facts)."""
        return self._customers

    def uncredited_orders(self) -> list[str]:
        """Ids of accepted orders that no rep is credited with yet (for reconciliation)."""
        return sorted(
            oid for oid, st in self._orders.items() if st.accepted is not None and not st.ledgers
        )

    # ------------------------------------------------------------------ processing

    def process_all(self, events: Iterable[Event]) -> list[Output]:
        """:meth:`process` each event in turn; all the outputs, in order."""
        return self.process_batch(events)

    def process_batch(self, events: Iterable[Event]) -> list[Output]:
        """Process ``events`` in order; return every new output, in order.

        The outputs and the final states are exactly those of calling :meth:`process` on
        each event in turn (``bench/engine_digest.py`` checks it); what a batch saves is
        the per-call cost. Python's cyclic garbage collector is paused for the batch and
        restored after it: the engine's states, messages and outputs hold no reference
        cycles (``tests/unit/test_engine_batch.py`` checks it), so reference counting frees
        all they drop, and a collection in the middle of a batch would only re-walk the
        live state. A batch that raises leaves the engine with the events before the
        failing one applied, as :meth:`process` does."""
        enabled = gc.isenabled()
        if enabled:
            gc.disable()
        try:
            out: list[Output] = []
            process = self._process
            notices = self._notices
            to_customer = self._to_customer
            for event in events:
                process(event, out)
                while notices:
                    notice = notices.popleft()
                    to_customer(notice.customer_id, notice, out)
            return out
        finally:
            if enabled:
                gc.enable()

    def process(self, event: Event) -> list[Output]:
        """Route one event through the stages; return the new deltas and dead letters."""
        return self.process_batch((event,))

    def _process(self, event: Event, out: list[Output]) -> None:
        letter = validate_event(event)
        if letter is not None:
            self._dead_letter(letter, out)
            return
        if isinstance(event, PaymentReceived | RefundIssued | OrderCancelled):
            self._to_order(event.order_id, event, out)
        elif isinstance(event, OrderPlaced | CustomerChanged):
            self._to_customer(event.customer_id, event, out)
        elif isinstance(event, RepChanged):
            self._reps[event.rep_id] = event
            self._to_rep(event.rep_id, event, out)
        elif isinstance(event, PlanPublished):
            try:
                self._plans = self._plans.with_version(plan_from_event(event))
            except PlanError as exc:
                self._dead_letter(
                    DeadLetter("plan.conflict", str(exc), event.event_id, "PlanPublished"), out
                )
                return
            # broadcast: every order state, then every rep-period state
            for key in list(self._orders):
                self._to_order(key, event, out)
            for key in list(self._rep_states):
                self._to_rep(key, event, out)
        elif isinstance(event, PeriodClosed):
            # the stages take PeriodClosed as a no-op broadcast: only the dimension changes
            self._closed.add(event.period)

    def _route(self, o: Any, out: list[Output]) -> None:
        if isinstance(o, CommissionDelta):
            self._to_rep(o.rep_id, o, out)
        elif isinstance(o, OrderAccepted):
            self._to_order(o.order.order_id, o, out)
        elif isinstance(o, CreditResolved | SnapshotRestated):
            self._to_order(o.order_id, o, out)
        elif isinstance(o, OrderCancelledNotice):
            # the one message that flows back (order -> customer stage): delivered after
            # the outputs already on their way, as the worker's topics deliver them, not
            # in the middle of routing the customer stage's own outputs
            self._notices.append(o)
        elif isinstance(o, DeadLetter):
            self._dead_letter(o, out)
        else:  # pragma: no cover - the stages' output types are closed
            raise TypeError(f"no route for {type(o).__name__}")

    def _to_customer(self, key: str, msg: Any, out: list[Output]) -> None:
        state = self._customers.get(key)
        new_state, outputs = customer_apply(state, msg, self._reps, self._plans)
        if new_state is not state:
            self._customers[key] = new_state
        for o in outputs:
            self._route(o, out)

    def _to_order(self, key: str, msg: Any, out: list[Output]) -> None:
        state = self._orders.get(key)
        new_state, outputs = order_apply(state, msg, self._plans, self._closed)
        if new_state is not state and new_state is not None:
            self._orders[key] = new_state
        for o in outputs:
            if type(o) is CommissionDelta:
                self._to_rep(o.rep_id, o, out)
            else:
                self._route(o, out)

    def _to_rep(self, key: str, msg: Any, out: list[Output]) -> None:
        if type(msg) is CommissionDelta:
            self._emit(msg, out)
        state = self._rep_states.get(key)
        new_state, accelerators = rep_apply(state, msg, self._plans, self._reps, self._closed)
        if new_state is not state and new_state is not None:
            self._rep_states[key] = new_state
        for d in accelerators:
            self._emit(d, out)

    def _emit(self, delta: CommissionDelta, out: list[Output]) -> None:
        delta_id = delta.delta_id
        ids = self._delta_ids
        if delta_id in ids:
            return
        ids[delta_id] = None
        self._deltas.append(delta)
        key = (delta.rep_id, delta.booked_period, delta.currency)
        totals = self._totals
        totals[key] = totals.get(key, Decimal(0)) + delta.amount
        out.append(delta)

    def _dead_letter(self, letter: DeadLetter, out: list[Output]) -> None:
        if letter.event_id is not None:
            key = (letter.event_id, letter.reason)
            if key in self._dead_keys:
                return
            self._dead_keys.add(key)
        self._dead.append(letter)
        out.append(letter)
