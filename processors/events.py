"""Input events (SEMANTICS.md section 1) and the commission delta (section 8).

These are the types every layer shares: the Avro codec in ``schemas`` turns bytes into
them, the stages in ``processors`` consume them, and sinks store the deltas.

Contract: every event is an immutable record (:mod:`processors.records`) with
``event_id`` (globally unique) and a timezone-aware ``occurred_at``. Money, quantities,
fractions and shares are ``Decimal``; instants are timezone-aware ``datetime``; calendar
dates are ``date``. Constructors do not
validate business rules; :func:`processors.validation.validate_event` does.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from .records import record


@record
class RepChanged:
    event_id: str
    occurred_at: datetime
    rep_id: str
    name: str
    team_id: str | None
    manager_id: str | None
    region: str | None
    active: bool = True


@record
class CustomerChanged:
    event_id: str
    occurred_at: datetime
    customer_id: str
    name: str
    tier: str | None
    region: str | None
    industry: str | None
    owner_rep_id: str | None
    customer_since: date | None


@record
class Credit:
    rep_id: str
    share: Decimal


@record
class OrderLine:
    line_id: str
    sku: str
    category: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal = Decimal(0)
    unit_cost: Decimal = Decimal(0)


@record
class OrderPlaced:
    event_id: str
    occurred_at: datetime
    order_id: str
    customer_id: str
    placed_at: datetime
    currency: str
    lines: tuple[OrderLine, ...]
    rep_id: str | None = None
    credits: tuple[Credit, ...] = ()


@record
class OrderCancelled:
    event_id: str
    occurred_at: datetime
    order_id: str
    cancelled_at: datetime


@record
class PaymentReceived:
    event_id: str
    occurred_at: datetime
    order_id: str
    payment_id: str
    amount: Decimal
    received_at: datetime


@record
class RefundIssued:
    event_id: str
    occurred_at: datetime
    order_id: str
    refund_id: str
    amount: Decimal
    issued_at: datetime


@record
class PlanPublished:
    """A plan version. ``definition`` is the plan document (section 3) as canonical JSON;
    ``processors.plans`` parses it."""

    event_id: str
    occurred_at: datetime
    plan_id: str
    version: int
    effective_from: date
    definition: str


@record
class PeriodClosed:
    event_id: str
    occurred_at: datetime
    period: str
    closed_by: str


Event = (
    RepChanged
    | CustomerChanged
    | OrderPlaced
    | OrderCancelled
    | PaymentReceived
    | RefundIssued
    | PlanPublished
    | PeriodClosed
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        RepChanged,
        CustomerChanged,
        OrderPlaced,
        OrderCancelled,
        PaymentReceived,
        RefundIssued,
        PlanPublished,
        PeriodClosed,
    )
}


def event_type(event: Event) -> str:
    """The event's type name as used in JSON lines (``"type"``) and in traces."""
    return type(event).__name__


class DeltaKind(StrEnum):
    COMMISSION = "commission"  # an order's earned amount changed (earning, clawback)
    ADJUSTMENT = "adjustment"  # recomputation under a plan version published later
    ACCELERATOR = "accelerator"  # tier/cap result of a rep's period (section 5)


@record
class LineTrace:
    """How one order line contributed to a commission (section 8)."""

    line_id: str
    sku: str
    category: str
    rule_id: str | None  # None: no rule matched, the line earns 0
    base_kind: str  # revenue | margin | quantity
    base_amount: Decimal
    rate: str  # human-readable rate, e.g. "0.05", "2.00 per line", "table whole band [0,1000)"
    modifiers: tuple[str, ...]  # ids of the modifiers that matched
    multiplier: Decimal  # product of the matching modifiers' multipliers
    amount: Decimal  # line commission for this rep, after share, full precision
    note: str = ""  # e.g. "no rule matched"


@record
class CommissionDelta:
    """An incremental change of one rep's commission, explained (section 8).

    ``amount`` is a difference of rounded cumulative amounts (two decimal places);
    ``cumulative`` is the rounded earned amount of (order, rep) after this delta, or for
    an accelerator the rounded accelerator amount of (rep, period) after it.
    ``delta_id`` is deterministic: a hash of the cause event, rep and component.
    """

    delta_id: str
    kind: DeltaKind
    rep_id: str
    order_id: str | None
    customer_id: str | None
    plan_id: str
    plan_version: int
    currency: str
    amount: Decimal
    cumulative: Decimal
    commission: Decimal  # C for (order, rep) before earning, full precision
    earned_fraction: Decimal
    share: Decimal
    revenue_base: Decimal  # credited revenue × share × change of f (tier attainment input)
    cause_event_id: str
    cause_event_type: str
    # business time of the cause (placed_at, received_at, ...); for a late movement's
    # delta in a later period, the time of that period's last movement of the order
    occurred_at: datetime
    booked_period: str
    origin_period: str
    reverses: str | None = None  # for a clawback: the commission it reverses
    lines: tuple[LineTrace, ...] = ()


@record
class DeadLetter:
    """An input that could not be processed, kept as data with a machine-readable reason."""

    reason: str  # machine-readable code, e.g. "invalid.shares_sum", "decode.error"
    detail: str  # human-readable explanation
    event_id: str | None = None
    event_type: str | None = None
