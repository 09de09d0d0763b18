"""The customer stage (key: customer_id): crediting and the facts snapshot
(SEMANTICS.md section 2).

``apply(state, message, reps) -> (state, outputs)``

Inputs: ``CustomerChanged`` (CRM), ``OrderPlaced`` and :class:`OrderCancelledNotice`
(from the order stage). ``reps`` is the current CRM rep facts (a read-only dimension).

For an ``OrderPlaced`` the stage resolves credit (the order's credits, else its rep_id,
else the customer's owner as of placed_at), freezes the snapshot rules read (the CRM
facts as of placed_at, tenure at placed_at, the number of the customer's orders placed in
the 365 days before placed_at and not cancelled by then, each credited rep's facts) and
outputs an :class:`OrderAccepted` for the order stage. An order with no resolvable rep is
remembered as uncredited; a ``CustomerChanged`` that gives it an owner outputs a
:class:`CreditResolved`.

The customer's facts count by business time, whichever message arrives first: the stage
keeps every CRM record of the customer (``versions``, ordered by ``occurred_at`` then
event id) and an order reads the latest one dated at or before its ``placed_at``; the
count reads placement and cancellation instants. A message dated before orders already
accepted (a CRM record, an order or a cancellation read late: they come from other topics
and partitions) outputs a :class:`SnapshotRestated` for each of them whose snapshot it
changes. A message applied again re-emits what it emitted the first time and changes
nothing.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import field, replace
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
from .plans import PlanBook
from .pmap import PMap
from .records import record

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


@record
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
    cancelled_at_us: int | None = None  # when it was cancelled (None: not, or unknown)
    touched: tuple[str, ...] = ()  # orders its placement or cancellation restated

    def effective_credits(self) -> tuple[tuple[Credit, ...], tuple[RepFacts, ...]]:
        """The credits (and their reps' facts) the order stage holds for the order."""
        if self.credit_source == "none" and self.resolved is not None:
            return self.resolved.credits, self.resolved.reps
        return self.credits, self.reps


@record
class Placements:
    """One placement bucket of a customer stored on its own (processors.storage): the
    orders not cancelled placed in it and their placement instants (two parallel tuples,
    each order id once: cheaper to read than a map), and its cancelled orders with their
    placement and cancellation instants (the count of earlier orders takes an order
    cancelled after a placement; a late CRM record restates cancelled orders too)."""

    bucket: int
    order_ids: tuple[str, ...]
    instants: tuple[int, ...]
    cancelled_ids: tuple[str, ...] = ()
    cancelled_us: tuple[int, ...] = ()
    cancelled_at_us: tuple[int, ...] = ()

    def with_order(self, order_id: str, placed_us: int) -> Placements:
        if order_id in self.order_ids or order_id in self.cancelled_ids:
            return self
        return replace(
            self, order_ids=(*self.order_ids, order_id), instants=(*self.instants, placed_us)
        )

    def without_order(self, order_id: str, cancelled_at_us: int) -> Placements:
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
            (*self.cancelled_at_us, cancelled_at_us),
        )

    def recancelled(self, order_id: str, cancelled_at_us: int) -> Placements:
        """The bucket with the cancellation instant of ``order_id`` moved (earlier)."""
        if order_id not in self.cancelled_ids:
            return self
        i = self.cancelled_ids.index(order_id)
        at = self.cancelled_at_us
        return replace(self, cancelled_at_us=(*at[:i], cancelled_at_us, *at[i + 1 :]))

    def placed_in(self, low_us: int, high_us: int) -> list[str]:
        """The ids of the bucket's orders, cancelled or not, placed in [low, high]."""
        pairs = zip(self.order_ids, self.instants, strict=True)
        out = [o for o, t in pairs if low_us <= t <= high_us]
        cancelled = zip(self.cancelled_ids, self.cancelled_us, strict=True)
        return out + [o for o, t in cancelled if low_us <= t <= high_us]

    def cancelled_pairs(self) -> list[tuple[int, int]]:
        """(placement, cancellation) instants of the bucket's cancelled orders."""
        return list(zip(self.cancelled_us, self.cancelled_at_us, strict=True))


@record
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
    (0: unknown); ``cancelled_pairs`` the sorted (placement, cancellation) instants of
    the cancelled orders (an order cancelled after another's placement counts for it)."""

    customer_id: str
    facts: CustomerChanged | None = None
    orders: PMap[str, CustomerOrder] = field(default_factory=PMap)
    active_us: tuple[int, ...] = ()
    uncredited: tuple[str, ...] = ()
    changes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    versions: tuple[CustomerChanged, ...] = ()
    latest_us: int = 0
    cancelled_pairs: tuple[tuple[int, int], ...] = ()


def versions_of(state: CustomerState) -> tuple[CustomerChanged, ...]:
    """The customer's CRM records in business-time order."""
    if state.versions:
        return state.versions
    return () if state.facts is None else (state.facts,)


def _version_key(v: CustomerChanged) -> tuple[int, str]:
    return instant_us(v.occurred_at), v.event_id


def _as_of(versions: tuple[CustomerChanged, ...], placed_us: int) -> CustomerChanged | None:
    """The CRM record in effect at ``placed_us``: the latest dated at or before it."""
    for v in reversed(versions):  # an order placed now: the latest record, at once
        if instant_us(v.occurred_at) <= placed_us:
            return v
    return None


def _owner_of(version: CustomerChanged | None) -> str | None:
    return None if version is None else version.owner_rep_id


def _waits(source: str, in_effect: CustomerChanged | None) -> bool:
    """Whether an order credited by ``source`` belongs in ``CustomerState.uncredited``:
    credited by the owner, with no owner in effect at its placement."""
    return source in ("owner", "none") and not _owner_of(in_effect)


def _source_for(source: str, credits: tuple[Credit, ...]) -> str:
    """The credit source of a restated view: an uncredited order given an owner is the
    owner's, an owner's order left without one is uncredited."""
    if source == "none" and credits:
        return "owner"
    if source == "owner" and not credits:
        return "none"
    return source


def _owner_for(
    versions: tuple[CustomerChanged, ...], placed_us: int, in_effect: CustomerChanged | None
) -> str | None:
    """The owner an order placed at ``placed_us`` is credited to: the owner of the record
    ``in_effect`` then, else the first owner set after it (uncredited until then)."""
    if in_effect is not None and in_effect.owner_rep_id:
        return in_effect.owner_rep_id
    for v in versions:
        if instant_us(v.occurred_at) > placed_us and v.owner_rep_id:
            return v.owner_rep_id
    return None


def earlier_orders(state: CustomerState, placed_us: int) -> int:
    """The customer's orders placed in the 365 days before ``placed_us`` (strictly
    before) and not cancelled at that instant (a cancellation at the same instant
    excludes), by business time."""
    times = state.active_us
    low = placed_us - YEAR_US
    earlier = bisect_left(times, placed_us) - bisect_left(times, low)
    pairs = state.cancelled_pairs
    i = bisect_left(pairs, (low, -(2**63)))
    while i < len(pairs) and pairs[i][0] < placed_us:
        if pairs[i][1] > placed_us:
            earlier += 1
        i += 1
    return earlier


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
    state: CustomerState,
    order: OrderPlaced,
    reps: Mapping[str, RepChanged],
    plans: PlanBook | None,
) -> tuple[CustomerState, list[CustomerOutput]]:
    existing = state.orders.get(order.order_id)
    if existing is not None:
        if existing.event_id == order.event_id:
            return state, [_accepted(order, existing), *_again(state, existing.touched)]
        letter = DeadLetter(
            "conflict.order_exists",
            f"order {order.order_id} was already placed by event {existing.event_id}",
            order.event_id,
            "OrderPlaced",
        )
        return state, [letter]
    placed_us = instant_us(order.placed_at)
    versions = versions_of(state)
    in_effect = _as_of(versions, placed_us)
    snapshot = _facts_snapshot(
        order.customer_id, in_effect, order.placed_at.date(), earlier_orders(state, placed_us)
    )
    credits: tuple[Credit, ...]
    owner = None if order.credits or order.rep_id else _owner_for(versions, placed_us, in_effect)
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
    # the orders placed after this one in its year that were accepted before it now
    # count it among their earlier orders
    orders = state.orders
    out: list[CustomerOutput] = [OrderAccepted(order, snapshot, credits, facts, source)]
    touched: list[str] = []
    if state.latest_us > placed_us:
        for oid in _placed_in(state, placed_us + 1, placed_us + YEAR_US):
            rec, msg = _recount(
                orders[oid],
                oid,
                state.customer_id,
                +1,
                (order.event_id, order.occurred_at, "OrderPlaced"),
                plans,
            )
            orders = orders.set(oid, rec)
            if msg is not None:
                out.append(msg)
                touched.append(oid)
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
        None,
        None,
        tuple(touched),
    )
    active = list(state.active_us)
    insort(active, placed_us)
    new = CustomerState(
        state.customer_id,
        state.facts,
        orders.set(order.order_id, rec),
        tuple(active),
        (*state.uncredited, order.order_id) if _waits(source, in_effect) else state.uncredited,
        state.changes,
        state.versions,
        max(state.latest_us, placed_us),
        state.cancelled_pairs,
    )
    return new, out


def _placed_in(state: CustomerState, low_us: int, high_us: int) -> list[str]:
    """The ids of the customer's orders in ``state`` placed in [low, high], sorted."""
    return sorted(oid for oid, rec in state.orders.items() if low_us <= rec.placed_us <= high_us)


def _again(state: CustomerState, order_ids: tuple[str, ...]) -> list[CustomerOutput]:
    """The restatements to send again for ``order_ids``: each order's latest."""
    out: list[CustomerOutput] = []
    for oid in order_ids:
        rec = state.orders.get(oid)
        if rec is not None and rec.restated is not None:
            out.append(rec.restated)
    return out


def _recount(
    rec: CustomerOrder,
    order_id: str,
    customer_id: str,
    step: int,
    cause: tuple[str, datetime, str],
    plans: PlanBook | None,
) -> tuple[CustomerOrder, SnapshotRestated | None]:
    """Order ``order_id`` with one earlier order more (``step`` 1: placed before it,
    read after it) or fewer (-1: cancelled before it, the cancellation read after it):
    the record with its new count and, when a condition of some plan version can tell
    the two counts apart (or ``plans`` is None), the restatement for the order stage.
    Otherwise the order stage keeps the count it has (its amounts cannot differ; the
    next restatement of the order carries the count)."""
    count = rec.customer.orders_365d
    customer = replace(rec.customer, orders_365d=count + step)
    if plans is not None and not plans.count_matters(count, count + step):
        return replace(rec, customer=customer), None
    credits, rep_list = rec.effective_credits()
    msg = SnapshotRestated(
        cause[0],
        cause[1],
        cause[2],
        order_id,
        customer_id,
        customer,
        credits,
        rep_list,
        _source_for(rec.credit_source, credits),
        _next_version(rec),
    )
    return _with_restatement(rec, msg), msg


def _next_version(rec: CustomerOrder) -> int:
    return 1 if rec.restated is None else rec.restated.version + 1


def _with_restatement(rec: CustomerOrder, msg: SnapshotRestated) -> CustomerOrder:
    return replace(
        rec,
        customer=msg.customer,
        credits=msg.credits,
        reps=msg.reps,
        credit_source=msg.credit_source,
        resolved=None,
        restated=msg,
    )


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
    # (latest_us bounds every placement, as _place relies on: a record dated after the
    # latest one restates none of them, and most CRM changes are dated now)
    candidates = (
        {oid for oid, rec in state.orders.items() if rec.placed_us >= since_us}
        if since_us <= state.latest_us
        else set()
    )
    if event.owner_rep_id:
        candidates.update(state.uncredited)
    orders = state.orders
    uncredited = list(state.uncredited)
    out: list[CustomerOutput] = []
    touched: list[str] = []
    for oid in sorted(candidates):
        rec = orders[oid]
        in_effect = _as_of(versions, rec.placed_us)
        waits = _waits(rec.credit_source, in_effect)
        if oid in uncredited and not waits:
            uncredited.remove(oid)
        elif oid not in uncredited and waits:
            uncredited.append(oid)
        msg = _restated(rec, oid, state.customer_id, versions, in_effect, event, reps)
        if msg is None:
            continue
        if isinstance(msg, CreditResolved):
            rec = replace(rec, resolved=msg)
        else:
            rec = _with_restatement(rec, msg)
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
    in_effect: CustomerChanged | None,
    event: CustomerChanged,
    reps: Mapping[str, RepChanged],
) -> CreditResolved | SnapshotRestated | None:
    """What the order stage must be told about order ``order_id`` now that the CRM holds
    ``versions`` (``in_effect`` the one in effect at its placement): nothing when its
    facts and credit as of placed_at are unchanged, a :class:`CreditResolved` when only
    an uncredited order gets its owner (computed as if credited from the start, as
    before CRM facts were kept by date), else its new view."""
    placed_on = rec.placed_on
    if placed_on is None:  # an order stored before placed_on was kept: its UTC date
        placed_on = datetime.fromtimestamp(rec.placed_us / 1_000_000, UTC).date()
    old = rec.customer
    snapshot = _facts_snapshot(customer_id, in_effect, placed_on, old.orders_365d)
    credits, rep_list = rec.effective_credits()
    source = rec.credit_source
    if source in ("owner", "none"):
        owner = _owner_for(versions, rec.placed_us, in_effect)
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
    return SnapshotRestated(
        event.event_id,
        event.occurred_at,
        "CustomerChanged",
        order_id,
        customer_id,
        snapshot,
        credits,
        rep_list,
        _source_for(source, credits),
        _next_version(rec),
    )


def _cancelled(
    state: CustomerState, notice: OrderCancelledNotice, plans: PlanBook | None
) -> tuple[CustomerState, list[CustomerOutput]]:
    rec = state.orders.get(notice.order_id)
    if rec is None:
        return state, []
    cancelled_us = instant_us(notice.cancelled_at)
    earlier = rec.cancelled_at_us is not None and cancelled_us < rec.cancelled_at_us
    if rec.cancelled and not earlier:  # read again: what its first reading restated
        return state, _again(state, rec.touched)
    active = list(state.active_us)
    pairs = list(state.cancelled_pairs)
    high = rec.placed_us + YEAR_US
    if rec.cancelled:  # a cancellation dated before the one known (read after it)
        assert rec.cancelled_at_us is not None
        if (rec.placed_us, rec.cancelled_at_us) in pairs:
            pairs.remove((rec.placed_us, rec.cancelled_at_us))
        high = min(high, rec.cancelled_at_us - 1)
    else:
        i = bisect_left(active, rec.placed_us)
        if i < len(active) and active[i] == rec.placed_us:
            del active[i]
    insort(pairs, (rec.placed_us, cancelled_us))
    # the orders placed after it in its year, at or after the cancellation, that were
    # accepted before the cancellation was known counted it: they no longer do
    orders = state.orders
    out: list[CustomerOutput] = []
    touched = list(rec.touched)
    low = max(rec.placed_us + 1, cancelled_us)
    if state.latest_us >= low:
        for oid in _placed_in(state, low, high):
            rec_o, msg = _recount(
                orders[oid],
                oid,
                state.customer_id,
                -1,
                (notice.event_id, notice.cancelled_at, "OrderCancelled"),
                plans,
            )
            orders = orders.set(oid, rec_o)
            if msg is not None:
                out.append(msg)
                if oid not in touched:
                    touched.append(oid)
    done = replace(rec, cancelled=True, cancelled_at_us=cancelled_us, touched=tuple(touched))
    new = replace(
        state,
        orders=orders.set(notice.order_id, done),
        active_us=tuple(active),
        cancelled_pairs=tuple(pairs),
    )
    return new, out


def apply(
    state: CustomerState | None,
    message: CustomerMessage,
    reps: Mapping[str, RepChanged],
    plans: PlanBook | None = None,
) -> tuple[CustomerState, list[CustomerOutput]]:
    """Apply one message to a customer's state; return the new state and the outputs
    (:class:`OrderAccepted`/:class:`CreditResolved` for the order stage, or a
    :class:`DeadLetter` for an order id placed twice by different events).

    The message is assumed valid (:func:`processors.validation.validate_event`)."""
    if isinstance(message, OrderPlaced):
        return _place(state or CustomerState(message.customer_id), message, reps, plans)
    if isinstance(message, CustomerChanged):
        return _crm(state or CustomerState(message.customer_id), message, reps)
    if isinstance(message, OrderCancelledNotice):
        return _cancelled(state or CustomerState(message.customer_id), message, plans)
    raise EngineError(f"the customer stage does not take {type(message).__name__}")
