"""Sales facts for BI: what an order, a customer and a rep look like now, derived purely
from the stage states (no I/O).

The stages' commission outputs are not touched: a fact is a *function of a state*, so the
wiring derives it after applying a message and sends it on (``commission.facts``), and the
batch replay derives the same facts from the engine's final states. Each fact carries a
``version`` that grows with every change of the entity that the fact shows, computed from
the state itself; re-deriving a fact from the same state (a replay after a crash) gives
an identical fact with the same version, so a store that keeps the highest version per
entity (ClickHouse ``ReplacingMergeTree(version)``) ends with the same rows whichever
copies arrived.

- :class:`OrderFact` (order stage): the order, its lines, its credited reps with the rep
  facts and customer facts frozen when it was first processed, and what was paid,
  refunded or cancelled since. Version: ``1 + movements applied + credit resolved``.
- :class:`SalesRow` (:func:`sales_rows`): one row per order line x credited rep (an
  uncredited order gives one row per line with ``rep_id`` "" and share 1), revenue and
  margin multiplied by the rep's share, so summing a column over all reps of an order
  gives the order's figure.
- :class:`CustomerFact` (customer stage): the latest CRM record of a customer. Version:
  the number of CRM changes applied.
- :class:`RepFact`: a rep's CRM record. Version: ``occurred_at`` in microseconds (reps
  are a dimension read whole by every worker; the latest by business time wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from .customers import CustomerState, instant_us
from .events import RepChanged
from .money import ONE, ZERO
from .orders import OrderState
from .records import record
from .rules import line_revenue

__all__ = [
    "CustomerFact",
    "Fact",
    "FactCredit",
    "FactLine",
    "OrderFact",
    "RepFact",
    "SalesRow",
    "customer_fact",
    "order_fact",
    "order_status",
    "rep_fact",
    "sales_rows",
    "state_facts",
]

OPEN = "open"
PAID = "paid"
CANCELLED = "cancelled"


@record
class FactLine:
    """One order line as sold: ``revenue`` = quantity x unit_price x (1 - discount), full
    precision; ``unit_cost`` 0 means the cost is unknown."""

    line_no: int
    line_id: str
    sku: str
    category: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    unit_cost: Decimal
    revenue: Decimal


@record
class FactCredit:
    """A credited rep with the rep facts frozen when the order was first processed."""

    rep_id: str
    share: Decimal
    team_id: str | None
    region: str | None


@record
class OrderFact:
    order_id: str
    customer_id: str
    currency: str
    placed_at: datetime
    total: Decimal  # T, rounded to cents
    paid: Decimal  # sum of payments
    refunded: Decimal  # sum of refunds
    cancelled: bool
    cancelled_at: datetime | None
    credit_source: str  # credits | rep_id | owner | none
    credits: tuple[FactCredit, ...]  # empty: uncredited
    customer_known: bool
    customer_tier: str | None
    customer_region: str | None
    customer_industry: str | None
    tenure_days: int | None
    orders_365d: int
    lines: tuple[FactLine, ...]
    version: int

    @property
    def net_paid(self) -> Decimal:
        """Payments minus refunds, never below 0."""
        return max(ZERO, self.paid - self.refunded)

    @property
    def outstanding(self) -> Decimal:
        """What the customer still owes: T - net paid, never below 0; 0 once cancelled."""
        if self.cancelled:
            return ZERO
        return max(ZERO, self.total - self.net_paid)

    @property
    def paid_fraction(self) -> Decimal:
        """min(1, net paid / T); 1 for an order with T = 0."""
        if self.total <= 0:
            return ONE
        return min(ONE, self.net_paid / self.total)

    @property
    def status(self) -> str:
        return order_status(self.cancelled, self.total, self.net_paid)


@record
class SalesRow:
    order_id: str
    line_no: int
    line_id: str
    rep_id: str  # "" for an uncredited order
    share: Decimal
    rep_team_id: str | None
    rep_region: str | None
    sku: str
    category: str
    quantity: Decimal  # the line's quantity x share
    revenue: Decimal  # the line's revenue x share
    margin: Decimal | None  # max(0, revenue - quantity x unit_cost) x share; None: cost unknown


@record
class CustomerFact:
    customer_id: str
    name: str
    tier: str | None
    region: str | None
    industry: str | None
    owner_rep_id: str | None
    customer_since: date | None
    changed_at: datetime
    version: int


@record
class RepFact:
    rep_id: str
    name: str
    team_id: str | None
    manager_id: str | None
    region: str | None
    active: bool
    changed_at: datetime
    version: int


Fact = OrderFact | CustomerFact | RepFact


def order_status(cancelled: bool, total: Decimal, net_paid: Decimal) -> str:
    """``cancelled``; else ``paid`` once the net paid amount covers T; else ``open``."""
    if cancelled:
        return CANCELLED
    if net_paid >= total:
        return PAID
    return OPEN


def order_fact(state: OrderState | None) -> OrderFact | None:
    """The fact of an order stage state; None while the order itself has not arrived
    (payments may come first)."""
    if state is None or state.accepted is None:
        return None
    acc = state.accepted
    order = acc.order
    if state.ledgers:
        credits = tuple(
            FactCredit(lg.rep.rep_id, lg.share, lg.rep.team_id, lg.rep.region)
            for lg in state.ledgers
        )
    else:
        credits = tuple(
            FactCredit(c.rep_id, c.share, r.team_id, r.region)
            for c, r in zip(acc.credits, acc.reps, strict=True)
        )
    source = acc.credit_source
    if state.credit_resolved_by is not None and source == "none":
        source = "owner"
    cancelled_at = next((m.at for m in state.movements if m.event_type == "OrderCancelled"), None)
    snap = acc.customer
    lines = tuple(
        FactLine(
            i + 1,
            ln.line_id,
            ln.sku,
            ln.category,
            ln.quantity,
            ln.unit_price,
            ln.discount,
            ln.unit_cost,
            line_revenue(ln),
        )
        for i, ln in enumerate(order.lines)
    )
    version = (
        1
        + len(state.movements)
        + (1 if state.credit_resolved_by is not None else 0)
        + state.restated_version  # each restatement applied may change facts and credit
    )
    return OrderFact(
        order.order_id,
        order.customer_id,
        order.currency,
        order.placed_at,
        state.total,
        state.paid,
        state.refunded,
        state.cancelled,
        cancelled_at if state.cancelled else None,
        source,
        credits,
        snap.known,
        snap.tier,
        snap.region,
        snap.industry,
        snap.tenure_days,
        snap.orders_365d,
        lines,
        version,
    )


def sales_rows(fact: OrderFact) -> list[SalesRow]:
    """One row per line x credited rep (per line with rep "" and share 1 when the order
    is uncredited), in line order then credit order."""
    credits = fact.credits or (FactCredit("", ONE, None, None),)
    rows: list[SalesRow] = []
    for ln in fact.lines:
        margin_full = None
        if ln.unit_cost != 0:
            margin_full = max(ZERO, ln.revenue - ln.quantity * ln.unit_cost)
        for c in credits:
            rows.append(
                SalesRow(
                    fact.order_id,
                    ln.line_no,
                    ln.line_id,
                    c.rep_id,
                    c.share,
                    c.team_id,
                    c.region,
                    ln.sku,
                    ln.category,
                    ln.quantity * c.share,
                    ln.revenue * c.share,
                    None if margin_full is None else margin_full * c.share,
                )
            )
    return rows


def customer_fact(state: CustomerState | None) -> CustomerFact | None:
    """The latest CRM record of a customer stage state; None before any CRM change."""
    if state is None or state.facts is None:
        return None
    f = state.facts
    return CustomerFact(
        f.customer_id,
        f.name,
        f.tier,
        f.region,
        f.industry,
        f.owner_rep_id,
        f.customer_since,
        f.occurred_at,
        len(state.changes),
    )


def rep_fact(event: RepChanged) -> RepFact:
    """A rep's CRM record as a fact, versioned by its business time."""
    return RepFact(
        event.rep_id,
        event.name,
        event.team_id,
        event.manager_id,
        event.region,
        event.active,
        event.occurred_at,
        instant_us(event.occurred_at),
    )


def state_facts(
    orders: Iterable[OrderState], customers: Iterable[CustomerState], reps: Iterable[RepChanged]
) -> list[Fact]:
    """The facts of whole stage states (the batch path: the engine's final states):
    orders not yet placed and customers without a CRM record give none."""
    out: list[Fact] = []
    for rep in reps:
        out.append(rep_fact(rep))
    for cs in customers:
        cf = customer_fact(cs)
        if cf is not None:
            out.append(cf)
    for os_ in orders:
        of = order_fact(os_)
        if of is not None:
            out.append(of)
    return out
