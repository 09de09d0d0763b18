"""The customer stage (key: customer_id): crediting and the facts snapshot
(SEMANTICS.md section 2).

``apply(state, message, reps) -> (state, outputs)``

Inputs: ``CustomerChanged`` (CRM), ``OrderPlaced`` and :class:`OrderCancelledNotice`
(from the order stage). ``reps`` is the current CRM rep facts (a read-only dimension).

For an ``OrderPlaced`` the stage resolves credit once (the order's credits, else its
rep_id, else the customer's current owner), freezes the snapshot rules read (customer
facts, tenure at placed_at, the number of the customer's earlier non-cancelled orders
in the 365 days before placed_at known now, each credited rep's facts) and outputs an
:class:`OrderAccepted` for the order stage. An order with no resolvable rep is
remembered as uncredited; the first ``CustomerChanged`` that sets an owner outputs a
:class:`CreditResolved` for each such order. A message applied again re-emits what it
emitted the first time (same snapshot) and changes nothing.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from .errors import EngineError
from .events import Credit, CustomerChanged, DeadLetter, OrderPlaced, RepChanged
from .messages import (
    CreditResolved,
    CustomerSnapshot,
    OrderAccepted,
    OrderCancelledNotice,
    RepFacts,
    rep_facts,
)
from .money import ONE
from .pmap import PMap

__all__ = [
    "YEAR_US",
    "CustomerMessage",
    "CustomerOrder",
    "CustomerOutput",
    "CustomerState",
    "Placements",
    "apply",
    "instant_us",
]

CustomerMessage = CustomerChanged | OrderPlaced | OrderCancelledNotice
CustomerOutput = OrderAccepted | CreditResolved | DeadLetter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
YEAR_US = 365 * 24 * 3600 * 1_000_000


def instant_us(at: datetime) -> int:
    """An aware instant as integer microseconds since the Unix epoch (exact)."""
    return (at - _EPOCH) // _US


@dataclass(frozen=True, slots=True)
class CustomerOrder:
    """What the customer stage remembers of one of its orders: enough to re-emit the
    same :class:`OrderAccepted` and to count the customer's earlier orders."""

    event_id: str  # the OrderPlaced event
    placed_us: int
    cancelled: bool
    customer: CustomerSnapshot
    credits: tuple[Credit, ...]
    reps: tuple[RepFacts, ...]
    credit_source: str
    resolved: CreditResolved | None = None


@dataclass(frozen=True, slots=True)
class Placements:
    """One placement bucket of a customer stored on its own (processors.storage): the
    orders not cancelled placed in it and their placement instants (two parallel tuples,
    each order id once: cheaper to read than a map)."""

    bucket: int
    order_ids: tuple[str, ...]
    instants: tuple[int, ...]

    def with_order(self, order_id: str, placed_us: int) -> Placements:
        if order_id in self.order_ids:
            return self
        return Placements(self.bucket, (*self.order_ids, order_id), (*self.instants, placed_us))

    def without_order(self, order_id: str) -> Placements:
        if order_id not in self.order_ids:
            return self
        i = self.order_ids.index(order_id)
        return Placements(
            self.bucket,
            self.order_ids[:i] + self.order_ids[i + 1 :],
            self.instants[:i] + self.instants[i + 1 :],
        )


@dataclass(frozen=True, slots=True)
class CustomerState:
    """The customer stage's state for one customer_id.

    ``facts`` is the latest CRM record; ``orders`` every order seen; ``active_us`` the
    sorted placement instants of the orders not cancelled; ``uncredited`` the orders
    waiting for an owner; ``changes`` the CRM event ids applied, with the orders each one
    credited (for re-emission)."""

    customer_id: str
    facts: CustomerChanged | None = None
    orders: PMap[str, CustomerOrder] = field(default_factory=PMap)
    active_us: tuple[int, ...] = ()
    uncredited: tuple[str, ...] = ()
    changes: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _snapshot(state: CustomerState, order: OrderPlaced, placed_us: int) -> CustomerSnapshot:
    facts = state.facts
    times = state.active_us
    earlier = bisect_left(times, placed_us) - bisect_left(times, placed_us - YEAR_US)
    if facts is None:
        return CustomerSnapshot(order.customer_id, False, None, None, None, None, None, earlier)
    tenure = None
    if facts.customer_since is not None:
        tenure = (order.placed_at.date() - facts.customer_since).days
    return CustomerSnapshot(
        order.customer_id,
        True,
        facts.tier,
        facts.region,
        facts.industry,
        facts.customer_since,
        tenure,
        earlier,
    )


# Shared immutable values (a cache, never an answer): most orders credit one rep with the
# whole order, and every such order can hold the same ``(Credit(rep, 1),)`` and
# ``(RepFacts,)`` tuples instead of new ones (fewer objects for the cyclic GC to walk).
_SOLE_CREDITS: dict[str, tuple[Credit]] = {}
_SOLE_FACTS: dict[int, tuple[RepFacts]] = {}


def _sole_credit(rep_id: str) -> tuple[Credit]:
    hit = _SOLE_CREDITS.get(rep_id)
    if hit is None:
        if len(_SOLE_CREDITS) > 100_000:
            _SOLE_CREDITS.clear()
        hit = _SOLE_CREDITS[rep_id] = (Credit(rep_id, ONE),)
    return hit


def _sole_facts(facts: RepFacts) -> tuple[RepFacts]:
    # keyed by identity: the cached tuple keeps ``facts`` alive, so its id is not reused
    hit = _SOLE_FACTS.get(id(facts))
    if hit is None or hit[0] is not facts:
        if len(_SOLE_FACTS) > 100_000:
            _SOLE_FACTS.clear()
        hit = _SOLE_FACTS[id(facts)] = (facts,)
    return hit


def _accepted(order: OrderPlaced, rec: CustomerOrder) -> OrderAccepted:
    return OrderAccepted(order, rec.customer, rec.credits, rec.reps, rec.credit_source)


def _place(
    state: CustomerState, order: OrderPlaced, reps: Mapping[str, RepChanged]
) -> tuple[CustomerState, list[CustomerOutput]]:
    existing = state.orders.get(order.order_id)
    if existing is not None:
        if existing.event_id == order.event_id:
            return state, [_accepted(order, existing)]
        letter = DeadLetter(
            "conflict.order_exists",
            f"order {order.order_id} was already placed by event {existing.event_id}",
            order.event_id,
            "OrderPlaced",
        )
        return state, [letter]
    placed_us = instant_us(order.placed_at)
    snapshot = _snapshot(state, order, placed_us)
    credits: tuple[Credit, ...]
    if order.credits:
        credits, source = order.credits, "credits"
    elif order.rep_id:
        credits, source = _sole_credit(order.rep_id), "rep_id"
    elif state.facts is not None and state.facts.owner_rep_id:
        credits, source = _sole_credit(state.facts.owner_rep_id), "owner"
    else:
        credits, source = (), "none"
    facts: tuple[RepFacts, ...]
    if len(credits) == 1:
        facts = _sole_facts(rep_facts(credits[0].rep_id, reps))
    else:
        facts = tuple([rep_facts(c.rep_id, reps) for c in credits])
    rec = CustomerOrder(order.event_id, placed_us, False, snapshot, credits, facts, source)
    active = list(state.active_us)
    insort(active, placed_us)
    new = CustomerState(
        state.customer_id,
        state.facts,
        state.orders.set(order.order_id, rec),
        tuple(active),
        state.uncredited if credits else (*state.uncredited, order.order_id),
        state.changes,
    )
    return new, [OrderAccepted(order, snapshot, credits, facts, source)]


def _crm(
    state: CustomerState, event: CustomerChanged, reps: Mapping[str, RepChanged]
) -> tuple[CustomerState, list[CustomerOutput]]:
    for event_id, order_ids in state.changes:
        if event_id == event.event_id:
            again: list[CustomerOutput] = []
            for oid in order_ids:
                resolved = state.orders[oid].resolved
                if resolved is not None:
                    again.append(resolved)
            return state, again
    owner = event.owner_rep_id
    if not owner or not state.uncredited:
        return replace(state, facts=event, changes=(*state.changes, (event.event_id, ()))), []
    owner_facts = rep_facts(owner, reps)
    orders = state.orders
    out: list[CustomerOutput] = []
    for oid in state.uncredited:
        msg = CreditResolved(
            event.event_id,
            event.occurred_at,
            oid,
            state.customer_id,
            (Credit(owner, ONE),),
            (owner_facts,),
        )
        orders = orders.set(oid, replace(orders[oid], resolved=msg))
        out.append(msg)
    new = replace(
        state,
        facts=event,
        orders=orders,
        uncredited=(),
        changes=(*state.changes, (event.event_id, state.uncredited)),
    )
    return new, out


def _cancelled(
    state: CustomerState, notice: OrderCancelledNotice
) -> tuple[CustomerState, list[CustomerOutput]]:
    rec = state.orders.get(notice.order_id)
    if rec is None or rec.cancelled:
        return state, []
    active = list(state.active_us)
    i = bisect_left(active, rec.placed_us)
    if i < len(active) and active[i] == rec.placed_us:
        del active[i]
    return (
        replace(
            state,
            orders=state.orders.set(notice.order_id, replace(rec, cancelled=True)),
            active_us=tuple(active),
        ),
        [],
    )


def apply(
    state: CustomerState | None, message: CustomerMessage, reps: Mapping[str, RepChanged]
) -> tuple[CustomerState, list[CustomerOutput]]:
    """Apply one message to a customer's state; return the new state and the outputs
    (:class:`OrderAccepted`/:class:`CreditResolved` for the order stage, or a
    :class:`DeadLetter` for an order id placed twice by different events).

    The message is assumed valid (:func:`processors.validation.validate_event`)."""
    if isinstance(message, OrderPlaced):
        return _place(state or CustomerState(message.customer_id), message, reps)
    if isinstance(message, CustomerChanged):
        return _crm(state or CustomerState(message.customer_id), message, reps)
    if isinstance(message, OrderCancelledNotice):
        return _cancelled(state or CustomerState(message.customer_id), message)
    raise EngineError(f"the customer stage does not take {type(message).__name__}")
