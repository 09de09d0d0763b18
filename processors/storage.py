"""How a keyed store holds the two stage states that grow with history: as a small *head*
plus one *entry* per item, so that a message reads and writes a few hundred bytes instead
of the customer's or the period's whole history.

- A customer stage state remembers every order of the customer (:class:`CustomerOrder`,
  for re-emitting the same :class:`OrderAccepted` and for crediting it later). A message
  reads the orders it names: ``OrderPlaced`` and ``OrderCancelledNotice`` their own, a
  ``CustomerChanged`` the uncredited orders it credits (or, applied again, those it
  credited then).
- A rep-period state remembers every delta and event id applied to the period, with the
  accelerator deltas it emitted (for idempotency). A message reads its own id's entry.
- The customer stage also keeps the placement instant of every order not cancelled
  (``CustomerState.active_us``, for "earlier orders in the 365 days before placed_at").
  They are stored in *placement buckets* of :data:`BUCKET_US` (30 days) each, an entry
  per bucket mapping order id to instant: an ``OrderPlaced`` reads the 13-14 buckets its
  year covers, a cancellation its order's bucket. The head keeps no instants (a head
  written before this layout keeps its own, which only shrink), so it no longer grows
  with the customer's orders. A bucket also lists its cancelled orders: a new
  ``CustomerChanged`` reads the buckets from its date to the customer's latest
  placement, and the entries of the orders placed there, which it may restate (CRM facts
  count by business time, :mod:`processors.customers`); a CRM record dated now reads one
  bucket. Orders placed before buckets existed, or cancelled before buckets listed
  cancelled orders, are not found that way (a deployment started before then keeps the
  facts they were accepted with).

Stored whole, both were rewritten on every message: for a customer with hundreds of
orders that is tens of kilobytes per order (bench/RESULTS.md). The stage functions are
unchanged: the store joins the head with the entries a message needs into a state that
holds only those, applies the stage, and splits the result. This is exact because the
stages read nothing else of those maps, and write only entries they read or add
(``tests/unit/test_engine_worker_shape.py`` runs generated worlds both ways, crashing
between writes). The in-memory :class:`processors.engine.Engine` keeps whole states.

**Crash safety.** The head and the entries live in one table, so their writes go to one
changelog partition, in order, and a crash keeps a prefix of them. The head's own map
(``CustomerState.orders``, ``PeriodSums.applied``) is a *journal*: the entries the last
message changed. A message that changes the state writes the journal it read out to the
entry keys first, then the head with the new journal; the new entries are written out by
the next message. Whatever prefix survives, the head and the entries (the journal
first) describe the state after one whole message: never an entry ahead of its head,
never a head whose entries are lost. A head stored whole before this layout is a head
with a big journal: the next change moves it out.

Placement buckets are written directly, before the journal and the head. A bucket may so
be ahead of its head after a crash, holding the order whose message is then delivered
again: harmless, because a bucket maps order ids to instants (writing it again gives the
same bucket), the count reads instants strictly before the order's own, and every message
read again before it was applied before and re-emits what it stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from . import serde
from .customers import (
    YEAR_US,
    CustomerMessage,
    CustomerOrder,
    CustomerState,
    Placements,
    instant_us,
)
from .events import CommissionDelta, CustomerChanged, OrderPlaced, PlanPublished, RepChanged
from .messages import OrderCancelledNotice
from .pmap import PMap
from .reps import Applied, RepMessage, RepState

__all__ = [
    "BUCKET_US",
    "ENTRY_MARK",
    "apply_customer",
    "apply_rep",
    "crm_buckets",
    "customer_join",
    "customer_needs",
    "customer_split",
    "entry_key",
    "rep_join",
    "rep_needs",
    "rep_split",
]

_NO_ORDERS: PMap[str, CustomerOrder] = PMap()
_NOTHING_APPLIED: PMap[str, tuple[CommissionDelta, ...]] = PMap()


def customer_needs(
    head: CustomerState | None, message: CustomerMessage, placed_since: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The order ids whose entries the customer stage reads to apply ``message``, less
    those in the head's journal. For a new ``CustomerChanged``, ``placed_since`` are the
    orders placed at or after its date (:func:`crm_buckets`): it may restate them."""
    if head is None:
        return ()
    wanted: tuple[str, ...] = ()
    if isinstance(message, OrderPlaced | OrderCancelledNotice):
        wanted = (message.order_id,)
    elif isinstance(message, CustomerChanged):
        for event_id, order_ids in head.changes:
            if event_id == message.event_id:
                wanted = order_ids
                break
        else:
            wanted = placed_since + (head.uncredited if message.owner_rep_id else ())
    return tuple(dict.fromkeys(oid for oid in wanted if oid not in head.orders))


def crm_buckets(head: CustomerState | None, message: CustomerMessage) -> tuple[int, ...]:
    """The placement buckets holding the orders a new CRM record may restate (those placed
    at or after its date): from its date's bucket to the latest placement's (a head
    stored before ``latest_us`` was kept: a year of buckets)."""
    if head is None or not isinstance(message, CustomerChanged):
        return ()
    if any(event_id == message.event_id for event_id, _ in head.changes):
        return ()  # read again: it re-emits what it emitted
    since = instant_us(message.occurred_at)
    latest = head.latest_us if head.latest_us else since + YEAR_US
    if latest < since:
        return ()
    return tuple(range(since // BUCKET_US, latest // BUCKET_US + 1))


def customer_join(
    head: CustomerState | None, loaded: Mapping[str, CustomerOrder]
) -> CustomerState | None:
    """The state the customer stage applies a message to: ``head`` with the entries
    ``loaded`` from the store (its journal takes precedence)."""
    if head is None or not loaded:
        return head
    orders = head.orders
    for order_id, rec in loaded.items():
        if order_id not in orders:
            orders = orders.set(order_id, rec)
    return replace(head, orders=orders)


def customer_split(
    new: CustomerState, head: CustomerState | None, loaded: Mapping[str, CustomerOrder]
) -> tuple[dict[str, CustomerOrder], CustomerState]:
    """For a changed state ``new``: the entries to write out first (the old head's
    journal), then the head to write (its journal: the entries this message changed)."""
    journal = _NO_ORDERS if head is None else head.orders
    changed = _NO_ORDERS
    for order_id, rec in new.orders.items():
        before = journal.get(order_id)
        if before is None:
            before = loaded.get(order_id)
        if rec is not before:
            changed = changed.set(order_id, rec)
    return dict(journal.items()), replace(new, orders=changed)


def rep_needs(head: RepState | None, message: RepMessage) -> str | None:
    """The id whose entry the rep-period stage reads to apply ``message`` (None: none, or
    it is in the head's journal)."""
    if head is None or len(head.periods) != 1:
        return None
    if isinstance(message, CommissionDelta):
        wanted = message.delta_id
    elif isinstance(message, PlanPublished | RepChanged):
        wanted = message.event_id
    else:
        return None
    return None if wanted in head.periods[0].applied else wanted


def rep_join(head: RepState | None, loaded: Mapping[str, Applied]) -> RepState | None:
    """The state the rep-period stage applies a message to: ``head`` (one period) with
    the entries ``loaded`` from the store."""
    if head is None or not loaded:
        return head
    if len(head.periods) != 1:
        raise ValueError("a stored rep-period head holds exactly one period")
    sums = head.periods[0]
    applied = sums.applied
    for trigger, entry in loaded.items():
        if trigger not in applied:
            applied = applied.set(trigger, entry.emitted)
    return RepState(head.rep_id, (replace(sums, applied=applied),))


def rep_split(
    new: RepState, head: RepState | None, loaded: Mapping[str, Applied]
) -> tuple[list[Applied], RepState]:
    """For a changed state ``new`` (one period): the entries to write out first (the old
    head's journal), then the head to write (its journal: the ids this message added; an
    id is added once and never changed)."""
    if len(new.periods) != 1:
        raise ValueError("a stored rep-period state holds exactly one period")
    journal = _NOTHING_APPLIED if head is None or not head.periods else head.periods[0].applied
    sums = new.periods[0]
    added = _NOTHING_APPLIED
    for trigger, emitted in sums.applied.items():
        if trigger not in journal and trigger not in loaded:
            added = added.set(trigger, emitted)
    out = [Applied(trigger, emitted) for trigger, emitted in journal.items()]
    return out, RepState(new.rep_id, (replace(sums, applied=added),))


Get = Callable[[bytes], bytes | None]
Put = Callable[[bytes, bytes], None]


ENTRY_MARK = b"\x1f"
"""Separates a state's key from an item id in an entry key; state keys never hold it (ids
hold no control characters: :mod:`processors.validation`)."""


def entry_key(key: bytes, item: str) -> bytes:
    """The store key of item ``item`` of the state stored under ``key``."""
    return key + ENTRY_MARK + item.encode()


BUCKET_US = 30 * 24 * 3600 * 1_000_000
"""The span of one placement bucket, in microseconds (30 days)."""

BUCKET_MARK = "\x1e"
"""Starts the item of a placement bucket's entry key; order ids hold no control
characters, so it cannot be an order's."""


def bucket_item(bucket: int) -> str:
    """The entry item of placement bucket ``bucket`` (instants ``// BUCKET_US``)."""
    return f"{BUCKET_MARK}{bucket}"


def buckets_needed(joined: CustomerState | None, message: CustomerMessage) -> tuple[int, ...]:
    """The placement buckets the customer stage reads to apply ``message`` to ``joined``
    (the head with the order entries it needs): a new order's year before its placement,
    its own bucket and, when the customer has orders placed after it, the buckets of those
    in its year after it (they may count it now); a new cancellation, its order's bucket
    and the buckets of the orders placed after it and after the cancellation in its year
    (they may no longer count it); nothing else."""
    if joined is None:
        return ()
    if isinstance(message, OrderPlaced):
        if message.order_id in joined.orders:
            return ()  # read again, or a conflict: no count changes
        placed = instant_us(message.placed_at)
        high = max(placed, min(joined.latest_us, placed + YEAR_US))
        return tuple(range((placed - YEAR_US) // BUCKET_US, high // BUCKET_US + 1))
    if isinstance(message, OrderCancelledNotice):
        rec = joined.orders.get(message.order_id)
        low, high = _uncounted(rec, message)
        if rec is None or high < 0:
            return ()
        own = rec.placed_us // BUCKET_US
        high = min(joined.latest_us, high)
        after = range(low // BUCKET_US, high // BUCKET_US + 1) if high >= low else range(0)
        return (own, *(b for b in after if b != own))
    return ()


def _uncounted(rec: CustomerOrder | None, notice: OrderCancelledNotice) -> tuple[int, int]:
    """The placement instants [low, high] of the orders that stop counting ``rec``'s order
    with this cancellation notice; high < 0: none (read again, or no earlier date)."""
    if rec is None:
        return 0, -1
    cancelled = instant_us(notice.cancelled_at)
    high = rec.placed_us + YEAR_US
    if rec.cancelled:
        if rec.cancelled_at_us is None or cancelled >= rec.cancelled_at_us:
            return 0, -1
        high = min(high, rec.cancelled_at_us - 1)
    return max(rec.placed_us + 1, cancelled), high


def restated_ids(
    joined: CustomerState, message: CustomerMessage, buckets: Mapping[int, Placements]
) -> list[str]:
    """The orders whose count of earlier orders ``message`` changes, found in the
    placement ``buckets`` (:func:`buckets_needed`), or, for a message read again, those
    it restated then: their entries must be read too."""
    if isinstance(message, OrderPlaced):
        rec = joined.orders.get(message.order_id)
        if rec is not None:
            return list(rec.touched) if rec.event_id == message.event_id else []
        placed = instant_us(message.placed_at)
        if joined.latest_us <= placed:
            return []
        low, high = placed + 1, placed + YEAR_US
    elif isinstance(message, OrderCancelledNotice):
        rec = joined.orders.get(message.order_id)
        low, high = _uncounted(rec, message)
        if rec is None or high < 0:
            return [] if rec is None else list(rec.touched)
    else:
        return []
    found: list[str] = []
    for bucket in buckets.values():
        found += bucket.placed_in(low, high)
    return [oid for oid in found if oid != message.order_id]


def _with_buckets(state: CustomerState, buckets: Mapping[int, Placements]) -> CustomerState:
    """``state`` with the placement and cancellation instants of ``buckets`` joined."""
    instants = [*state.active_us]
    pairs = [*state.cancelled_pairs]
    for bucket in buckets.values():
        instants.extend(bucket.instants)
        pairs.extend(bucket.cancelled_pairs())
    return replace(state, active_us=tuple(sorted(instants)), cancelled_pairs=tuple(sorted(pairs)))


def _placements_after(
    before: CustomerState | None,
    new: CustomerState,
    message: CustomerMessage,
    buckets: Mapping[int, Placements],
    legacy: tuple[int, ...],
) -> tuple[list[Placements], tuple[int, ...]]:
    """The placement buckets ``message`` changed (to write) and the head's own instants
    after it (a head from before the bucket layout keeps its instants; they only shrink).
    """
    order_id = message.order_id if isinstance(message, OrderPlaced | OrderCancelledNotice) else ""
    rec = new.orders.get(order_id) if order_id else None
    old = None if before is None or not order_id else before.orders.get(order_id)
    if rec is None or old is rec:
        return [], legacy
    bucket_id = rec.placed_us // BUCKET_US
    bucket = buckets.get(bucket_id) or Placements(bucket_id, (), ())
    if old is not None and old.cancelled and rec.cancelled:  # an earlier cancellation
        if old.cancelled_at_us == rec.cancelled_at_us or order_id not in bucket.cancelled_ids:
            return [], legacy
        return [bucket.recancelled(order_id, rec.cancelled_at_us or 0)], legacy
    if old is not None and old.cancelled == rec.cancelled:
        return [], legacy
    if old is None and not rec.cancelled:  # placed now
        return [bucket.with_order(order_id, rec.placed_us)], legacy
    if rec.cancelled and order_id in bucket.order_ids:  # cancelled now
        return [bucket.without_order(order_id, rec.cancelled_at_us or 0)], legacy
    if rec.cancelled and rec.placed_us in legacy:  # an order placed before buckets
        i = legacy.index(rec.placed_us)
        return [], legacy[:i] + legacy[i + 1 :]
    return [], legacy


def _legacy_pairs(
    head: CustomerState | None, before: CustomerState | None, new: CustomerState
) -> tuple[tuple[int, int], ...]:
    """The head's own cancellation pairs after a message: those of a head stored whole,
    with an order of such a head (not in any bucket) cancelled now, or its cancellation
    moved to an earlier one."""
    pairs = () if head is None else head.cancelled_pairs
    if before is None or head is None or new.cancelled_pairs == before.cancelled_pairs:
        return pairs
    removed = set(before.cancelled_pairs) - set(new.cancelled_pairs)
    added = set(new.cancelled_pairs) - set(before.cancelled_pairs)
    legacy_us = {*head.active_us, *(p for p, _ in pairs)}
    kept = [p for p in pairs if p not in removed]
    return tuple(sorted((*kept, *(p for p in added if p[0] in legacy_us))))


def apply_customer(
    get: Get,
    put: Put,
    key: bytes,
    message: CustomerMessage,
    apply: Callable[[CustomerState | None, Any], tuple[CustomerState | None, list[Any]]],
) -> tuple[CustomerState | None, list[Any]]:
    """Apply ``message`` to the customer state stored under ``key`` (a head, its order
    entries and its placement buckets, read with ``get`` and written with ``put``);
    return the state the stage returned (holding only the entries read) and its
    outputs."""
    raw = get(key)
    head: CustomerState | None = None if raw is None else serde.loads(raw)

    def read_buckets(bucket_ids: Iterable[int]) -> dict[int, Placements]:
        got: dict[int, Placements] = {}
        for bucket_id in bucket_ids:
            raw = get(entry_key(key, bucket_item(bucket_id)))
            if raw is not None:
                got[bucket_id] = serde.loads(raw)
        return got

    placed_since: list[str] = []
    for bucket in read_buckets(crm_buckets(head, message)).values():
        assert isinstance(message, CustomerChanged)
        placed_since += bucket.placed_in(instant_us(message.occurred_at), 2**63)
    loaded: dict[str, CustomerOrder] = {}

    def load(order_ids: Iterable[str]) -> dict[str, CustomerOrder]:
        got: dict[str, CustomerOrder] = {}
        for order_id in order_ids:
            raw = get(entry_key(key, order_id))
            if raw is not None:
                got[order_id] = serde.loads(raw)
        loaded.update(got)
        return got

    state = customer_join(head, load(customer_needs(head, message, tuple(placed_since))))
    buckets: dict[int, Placements] = {}
    if state is not None:
        buckets = read_buckets(buckets_needed(state, message))
        if buckets:
            state = _with_buckets(state, buckets)
        more = [o for o in restated_ids(state, message, buckets) if o not in state.orders]
        if more:
            state = customer_join(state, load(dict.fromkeys(more)))
    new, outputs = apply(state, message)
    if new is not state and new is not None:
        legacy = () if head is None else head.active_us
        legacy_pairs = _legacy_pairs(head, state, new)
        changed, legacy = _placements_after(state, new, message, buckets, legacy)
        for bucket in changed:
            put(entry_key(key, bucket_item(bucket.bucket)), serde.dumps(bucket))
        flush, new_head = customer_split(new, head, loaded)
        for order_id, rec in flush.items():
            put(entry_key(key, order_id), serde.dumps(rec))
        put(key, serde.dumps(replace(new_head, active_us=legacy, cancelled_pairs=legacy_pairs)))
    return new, outputs


def apply_rep(
    get: Get,
    put: Put,
    key: bytes,
    message: RepMessage,
    apply: Callable[[RepState | None, Any], tuple[RepState | None, list[Any]]],
) -> tuple[RepState | None, list[Any]]:
    """Apply ``message`` to the rep-period state (one period) stored under ``key`` (a
    head and its applied-id entries); as :func:`apply_customer`."""
    raw = get(key)
    head: RepState | None = None if raw is None else serde.loads(raw)
    loaded: dict[str, Applied] = {}
    wanted = rep_needs(head, message)
    if wanted is not None:
        raw = get(entry_key(key, wanted))
        if raw is not None:
            loaded[wanted] = serde.loads(raw)
    state = rep_join(head, loaded)
    new, outputs = apply(state, message)
    if new is not state and new is not None:
        flush, new_head = rep_split(new, head, loaded)
        for entry in flush:
            put(entry_key(key, entry.trigger), serde.dumps(entry))
        put(key, serde.dumps(new_head))
    return new, outputs
