"""The customer stage (key: customer_id): crediting and the facts snapshot
(SEMANTICS.md section 2).

``apply(state, message, reps) -> (state, outputs)``

Inputs: ``CustomerChanged`` (CRM), ``OrderPlaced`` and :class:`OrderCancelledNotice`
(from the order stage). ``reps`` is the current CRM rep facts (a read-only dimension).

For an ``OrderPlaced`` the stage resolves credit (the order's credits, else its rep_id,
else the customer's owner as of placed_at), freezes the snapshot rules read (the CRM
facts as of placed_at, tenure at placed_at, the number of the customer's earlier
non-cancelled orders in the 365 days before placed_at known now, each credited rep's
facts) and outputs an :class:`OrderAccepted` for the order stage. An order with no
resolvable rep is remembered as uncredited; a ``CustomerChanged`` that gives it an owner
outputs a :class:`CreditResolved`.

CRM facts count by business time: the stage keeps every CRM record of the customer
(``versions``, ordered by ``occurred_at`` then event id) and an order reads the latest one
dated at or before its ``placed_at``, whichever arrived first. A record that arrives
after orders placed at or after its date (another topic, read later) outputs a
:class:`SnapshotRestated` for each of them whose facts or owner credit it changes.
A message applied again re-emits what it emitted the first time and changes nothing.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from .errors import EngineError
from .events import Credit, CustomerChanged, DeadLetter, OrderPlaced, RepChanged
from .messages import (
    CreditResolved,
    CustomerSnapshot,
    OrderAccepted,
    OrderCancelledNotice,
    RepFacts,
    SnapshotRestated,
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
    "versions_of",
]

CustomerMessage = CustomerChanged | OrderPlaced | OrderCancelledNotice
CustomerOutput = OrderAccepted | CreditResolved | SnapshotRestated | DeadLetter

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
    placed_on: date | None = None  # placed_at's calendar date as written (for tenure)
    restated: SnapshotRestated | None = None  # the latest restatement, for re-emission

    def effective_credits(self) -> tuple[tuple[Credit, ...], tuple[RepFacts, ...]]:
        """The credits (and their reps' facts) the order stage holds for the order."""
        if self.credit_source == "none" and self.resolved is not None:
            return self.resolved.credits, self.resolved.reps
        return self.credits, self.reps


@dataclass(frozen=True, slots=True)
class Placements:
    """One placement bucket of a customer stored on its own (processors.storage): the
    orders not cancelled placed in it and their placement instants (two parallel tuples,
    each order id once: cheaper to read than a map), and likewise its cancelled orders
    (a late CRM record restates those too)."""

    bucket: int
    order_ids: tuple[str, ...]
    instants: tuple[int, ...]
    cancelled_ids: tuple[str, ...] = ()
    cancelled_us: tuple[int, ...] = ()

    def with_order(self, order_id: str, placed_us: int) -> Placements:
        if order_id in self.order_ids or order_id in self.cancelled_ids:
            return self
        return replace(
            self, order_ids=(*self.order_ids, order_id), instants=(*self.instants, placed_us)
        )

    def without_order(self, order_id: str) -> Placements:
        """The bucket with ``order_id`` moved to the cancelled orders."""
        if order_id not in self.order_ids:
            return self
        i = self.order_ids.index(order_id)
        return Placements(
            self.bucket,
            self.order_ids[:i] + self.order_ids[i + 1 :],
            self.instants[:i] + self.instants[i + 1 :],
            (*self.cancelled_ids, order_id),
            (*self.cancelled_us, self.instants[i]),
        )

    def placed_from(self, since_us: int) -> list[str]:
        """The ids of the bucket's orders, cancelled or not, placed at or after
        ``since_us``."""
        out = [o for o, t in zip(self.order_ids, self.instants, strict=True) if t >= since_us]
        pairs = zip(self.cancelled_ids, self.cancelled_us, strict=True)
        return out + [o for o, t in pairs if t >= since_us]


@dataclass(frozen=True, slots=True)
class CustomerState:
    """The customer stage's state for one customer_id.

    ``facts`` is the latest CRM record by business time and ``versions`` every CRM record
    in business-time order (``()`` in a state stored before versions were kept: then
    ``facts`` is the only one); ``orders`` every order seen; ``active_us`` the sorted
    placement instants of the orders not cancelled; ``uncredited`` the orders credited
    by the customer's owner that had none in effect at their placement (waiting for the
    first owner set after it, or credited to it: a CRM record read later may be an
    earlier one); ``changes`` the CRM event ids applied, with the orders each one
    credited or restated (for re-emission); ``latest_us`` the latest placement instant
    (0: unknown)."""

    customer_id: str
    facts: CustomerChanged | None = None
    orders: PMap[str, CustomerOrder] = field(default_factory=PMap)
    active_us: tuple[int, ...] = ()
    uncredited: tuple[str, ...] = ()
    changes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    versions: tuple[CustomerChanged, ...] = ()
    latest_us: int = 0


def versions_of(state: CustomerState) -> tuple[CustomerChanged, ...]:
    """The customer's CRM records in business-time order."""
    if state.versions:
        return state.versions
    return () if state.facts is None else (state.facts,)


def _version_key(v: CustomerChanged) -> tuple[int, str]:
    return instant_us(v.occurred_at), v.event_id


def _as_of(versions: tuple[CustomerChanged, ...], placed_us: int) -> CustomerChanged | None:
    """The CRM record in effect at ``placed_us``: the latest dated at or before it."""
    found = None
    for v in versions:
        if instant_us(v.occurred_at) > placed_us:
            break
        found = v
    return found


def _owner_of(version: CustomerChanged | None) -> str | None:
    return None if version is None else version.owner_rep_id


def _owner_at(state: CustomerState, placed_us: int) -> str | None:
    return _owner_of(_as_of(versions_of(state), placed_us))


def _owner_for(versions: tuple[CustomerChanged, ...], placed_us: int) -> str | None:
    """The owner an order placed at ``placed_us`` is credited to: the owner in effect
    then, else the first owner set after it (the order was uncredited until then)."""
    v = _as_of(versions, placed_us)
    if v is not None and v.owner_rep_id:
        return v.owner_rep_id
    for v in versions:
        if instant_us(v.occurred_at) > placed_us and v.owner_rep_id:
            return v.owner_rep_id
    return None


def _snapshot(state: CustomerState, order: OrderPlaced, placed_us: int) -> CustomerSnapshot:
    times = state.active_us
    earlier = bisect_left(times, placed_us) - bisect_left(times, placed_us - YEAR_US)
    facts = _as_of(versions_of(state), placed_us)
    return _facts_snapshot(order.customer_id, facts, order.placed_at.date(), earlier)


def _facts_snapshot(
    customer_id: str, facts: CustomerChanged | None, placed_on: date, earlier: int
) -> CustomerSnapshot:
    if facts is None:
        return CustomerSnapshot(customer_id, False, None, None, None, None, None, earlier)
    tenure = None
    if facts.customer_since is not None:
        tenure = (placed_on - facts.customer_since).days
    return CustomerSnapshot(
        customer_id,
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
    owner = None if order.credits or order.rep_id else _owner_for(versions_of(state), placed_us)
    if order.credits:
        credits, source = order.credits, "credits"
    elif order.rep_id:
        credits, source = _sole_credit(order.rep_id), "rep_id"
    elif owner:
        credits, source = _sole_credit(owner), "owner"
    else:
        credits, source = (), "none"
    facts: tuple[RepFacts, ...]
    if len(credits) == 1:
        facts = _sole_facts(rep_facts(credits[0].rep_id, reps))
    else:
        facts = tuple([rep_facts(c.rep_id, reps) for c in credits])
    rec = CustomerOrder(
        order.event_id,
        placed_us,
        False,
        snapshot,
        credits,
        facts,
        source,
        None,
        order.placed_at.date(),
    )
    active = list(state.active_us)
    insort(active, placed_us)
    new = replace(
        state,
        orders=state.orders.set(order.order_id, rec),
        active_us=tuple(active),
        uncredited=(
            (*state.uncredited, order.order_id)
            if source == "none" or (source == "owner" and not _owner_at(state, placed_us))
            else state.uncredited
        ),
        latest_us=max(state.latest_us, placed_us),
    )
    return new, [OrderAccepted(order, snapshot, credits, facts, source)]


def _crm(
    state: CustomerState, event: CustomerChanged, reps: Mapping[str, RepChanged]
) -> tuple[CustomerState, list[CustomerOutput]]:
    for event_id, order_ids in state.changes:
        if event_id == event.event_id:
            again: list[CustomerOutput] = []
            for oid in order_ids:
                rec = state.orders[oid]
                if rec.restated is not None:
                    again.append(rec.restated)  # the order's latest view
                elif rec.resolved is not None:
                    again.append(rec.resolved)
            return state, again
    versions = tuple(sorted((*versions_of(state), event), key=_version_key))
    since_us = instant_us(event.occurred_at)
    # the orders whose view this record may change: those placed at or after it, and,
    # for an owner, those with none in effect at their placement (the first owner set
    # after it credits them, and this one may be earlier than the one that did)
    candidates = {oid for oid, rec in state.orders.items() if rec.placed_us >= since_us}
    if event.owner_rep_id:
        candidates.update(state.uncredited)
    orders = state.orders
    uncredited = list(state.uncredited)
    out: list[CustomerOutput] = []
    touched: list[str] = []
    for oid in sorted(candidates):
        rec = orders[oid]
        waits = rec.credit_source in ("owner", "none") and not _owner_of(
            _as_of(versions, rec.placed_us)
        )
        if oid in uncredited and not waits:
            uncredited.remove(oid)
        elif oid not in uncredited and waits:
            uncredited.append(oid)
        msg = _restated(rec, oid, state.customer_id, versions, event, reps)
        if msg is None:
            continue
        if isinstance(msg, CreditResolved):
            rec = replace(rec, resolved=msg)
        else:
            rec = replace(
                rec,
                customer=msg.customer,
                credits=msg.credits,
                reps=msg.reps,
                credit_source=msg.credit_source,
                resolved=None,
                restated=msg,
            )
        orders = orders.set(oid, rec)
        out.append(msg)
        touched.append(oid)
    new = replace(
        state,
        facts=versions[-1],
        orders=orders,
        uncredited=tuple(uncredited),
        changes=(*state.changes, (event.event_id, tuple(touched))),
        versions=versions,
    )
    return new, out


def _restated(
    rec: CustomerOrder,
    order_id: str,
    customer_id: str,
    versions: tuple[CustomerChanged, ...],
    event: CustomerChanged,
    reps: Mapping[str, RepChanged],
) -> CreditResolved | SnapshotRestated | None:
    """What the order stage must be told about order ``order_id`` now that the CRM holds
    ``versions``: nothing when its facts and credit as of placed_at are unchanged, a
    :class:`CreditResolved` when only an uncredited order gets its owner (computed as if
    credited from the start, as before CRM facts were kept by date), else its new view."""
    placed_on = rec.placed_on
    if placed_on is None:  # an order stored before placed_on was kept: its UTC date
        placed_on = datetime.fromtimestamp(rec.placed_us / 1_000_000, UTC).date()
    old = rec.customer
    snapshot = _facts_snapshot(
        customer_id, _as_of(versions, rec.placed_us), placed_on, old.orders_365d
    )
    credits, rep_list = rec.effective_credits()
    source = rec.credit_source
    if source in ("owner", "none"):
        owner = _owner_for(versions, rec.placed_us)
        now = _sole_credit(owner) if owner else ()
        if now != credits:
            credits = now
            rep_list = _sole_facts(rep_facts(owner, reps)) if owner else ()
    before, _ = rec.effective_credits()
    if snapshot == old and credits == before:
        return None
    if snapshot == old and source == "none" and rec.resolved is None and rec.restated is None:
        return CreditResolved(
            event.event_id, event.occurred_at, order_id, customer_id, credits, rep_list
        )
    if source == "none" and credits:
        source = "owner"
    elif source == "owner" and not credits:
        source = "none"
    return SnapshotRestated(
        event.event_id,
        event.occurred_at,
        order_id,
        customer_id,
        snapshot,
        credits,
        rep_list,
        source,
    )


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
