"""Messages between the stages, and the facts snapshots they carry.

The customer stage (key customer_id) sends :class:`OrderAccepted`,
:class:`CreditResolved` and :class:`SnapshotRestated` to the order stage (key order_id);
the order stage sends :class:`OrderCancelledNotice` back to the customer stage and
commission deltas to the rep-period stage (key rep_id). Every message is an immutable
record (:mod:`processors.records`) that :mod:`processors.serde` round-trips exactly;
:func:`processors.stages.address` says where each one goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from .events import Credit, OrderPlaced, RepChanged
from .records import record


@record
class RepFacts:
    """What rules and plan selection read about a rep (CRM facts, SEMANTICS.md section 3).

    ``known`` is False for a rep the CRM has not described (team and region unknown:
    conditions on them do not hold)."""

    rep_id: str
    team_id: str | None = None
    region: str | None = None
    known: bool = False

    @staticmethod
    def of(rep_id: str, event: RepChanged | None) -> RepFacts:
        """The facts of ``rep_id`` from its latest CRM record (None: unknown rep)."""
        if event is None:
            return RepFacts(rep_id)
        return RepFacts(rep_id, event.team_id, event.region, True)


_FACTS: dict[tuple[str, int], RepFacts] = {}


def rep_facts(rep_id: str, reps: Mapping[str, RepChanged]) -> RepFacts:
    """The facts of ``rep_id`` in the CRM dimension ``reps`` (memoised: RepFacts are
    immutable values, and the memo is checked against the record it was made from)."""
    event = reps.get(rep_id)
    key = (rep_id, id(event))
    facts = _FACTS.get(key)
    if (
        facts is None
        or facts.known != (event is not None)
        or (event is not None and (facts.team_id != event.team_id or facts.region != event.region))
    ):
        facts = RepFacts.of(rep_id, event)
        if len(_FACTS) > 100_000:
            _FACTS.clear()
        _FACTS[key] = facts
    return facts


@record
class CustomerSnapshot:
    """The customer facts rule conditions read, frozen when the order is first processed.

    ``tenure_days`` is whole days from ``customer_since`` to the date of ``placed_at``
    (None when unknown); ``orders_365d`` counts the customer's earlier orders placed in
    the 365 days before ``placed_at`` that were known and not cancelled at that time."""

    customer_id: str
    known: bool
    tier: str | None
    region: str | None
    industry: str | None
    customer_since: date | None
    tenure_days: int | None
    orders_365d: int


@record
class OrderAccepted:
    """An order with its credit resolved and its facts snapshot: customer stage -> order
    stage (key ``order.order_id``).

    ``credits`` is empty for an uncredited order (no credits, no rep_id and no owner
    known); ``reps`` holds the facts of each credited rep, in the order of ``credits``.
    ``credit_source`` says how credit was resolved: ``credits``, ``rep_id``, ``owner``
    or ``none``."""

    order: OrderPlaced
    customer: CustomerSnapshot
    credits: tuple[Credit, ...]
    reps: tuple[RepFacts, ...]
    credit_source: str

    @property
    def event_id(self) -> str:
        """The id of the OrderPlaced event this message comes from."""
        return self.order.event_id


@record
class CreditResolved:
    """Credit for an order that was uncredited, now that its customer's owner is known:
    customer stage -> order stage (key ``order_id``).

    ``event_id``/``occurred_at`` are those of the CustomerChanged event that set the
    owner. The order's deltas are computed as if credited from the start."""

    event_id: str
    occurred_at: datetime
    order_id: str
    customer_id: str
    credits: tuple[Credit, ...]
    reps: tuple[RepFacts, ...]


@record
class SnapshotRestated:
    """An accepted order's snapshot as of its ``placed_at`` changed because an input
    dated before it reached the customer stage after it: a CRM record (its facts or owner
    credit), or another order of the customer placed or cancelled before it (its count of
    earlier orders): customer stage -> order stage (key ``order_id``).

    ``event_id``/``occurred_at``/``cause_type`` are those of that CustomerChanged,
    OrderPlaced or OrderCancelled event; ``customer``, ``credits``, ``reps`` and
    ``credit_source`` replace the order's. The order stage books, per rep and period, the
    difference between what the order earns with the new snapshot and with the old one
    (docs/semantics-decisions.md, "CRM facts count by business time" and
    "`customer_orders_365d` ... counts by business time").
    ``version`` numbers an order's restatements: each carries the whole view, so one that
    reaches the order stage after a newer one changes nothing."""

    event_id: str
    occurred_at: datetime
    cause_type: str
    order_id: str
    customer_id: str
    customer: CustomerSnapshot
    credits: tuple[Credit, ...]
    reps: tuple[RepFacts, ...]
    credit_source: str
    version: int  # 1, 2, ... per order: the order stage applies a newer one only


@record
class OrderCancelledNotice:
    """An order was cancelled: order stage -> customer stage (key ``customer_id``), so
    that it no longer counts among the customer's earlier orders."""

    event_id: str  # the OrderCancelled event
    order_id: str
    customer_id: str
    cancelled_at: datetime
