"""How the stages are wired: which stage each input and each output goes to, under which
key. The Faust worker (``streams``) and the in-memory :class:`processors.engine.Engine`
both route by these functions, so they compose the stages the same way.

Stages (each a pure ``apply(state | None, message, *dimensions) -> (state, outputs)``
with one Kafka-partitioned table keyed like its input topic):

=================== ========== =========================================================
stage               key        function
=================== ========== =========================================================
customer            customer_id :func:`customer_apply` (state, message, reps)
order               order_id   :func:`order_apply` (state, message, plans, closed)
rep-period          rep_id     :func:`rep_apply` (state, message, plans, reps, closed)
=================== ========== =========================================================

Upstream events (:func:`route_input`): ``CustomerChanged`` and ``OrderPlaced`` go to the
customer stage; ``OrderCancelled``, ``PaymentReceived`` and ``RefundIssued`` to the order
stage; ``RepChanged`` to the rep-period stage (it also updates the reps dimension).
``PlanPublished`` and ``PeriodClosed`` update the plan book / closed periods dimension and
are broadcast (:func:`broadcast_targets`) to every partition of the order stage and,
for ``PlanPublished``, of the rep-period stage: the receiving agent applies them to every
state its partition holds.

The rep-period stage's state is per (period, currency) inside: its table may be keyed by
rep_id (one :class:`RepState` with all the rep's periods) or, to keep each stored value
small, by :func:`rep_period_key` (rep, period, currency) of the delta's booked period —
then a ``RepChanged`` is applied to each of that rep's states and a ``PlanPublished`` to
every state, as for a broadcast. The Kafka key stays the rep_id either way.

Stage outputs (:func:`address`): ``OrderAccepted``/``CreditResolved``/``SnapshotRestated``
-> order stage;
``OrderCancelledNotice`` -> customer stage; ``CommissionDelta`` from the order stage ->
rep-period stage, which passes it on to ``commission.deltas`` together with its own
accelerator deltas; ``DeadLetter`` -> the dead-letter topic.

"""

from __future__ import annotations

from .customers import CustomerState
from .customers import apply as customer_apply
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
from .plans import PlanBook
from .reps import RepState
from .reps import apply as rep_apply
from .reps import state_key as rep_period_key

__all__ = [
    "BROADCAST_TYPES",
    "CUSTOMER_STAGE",
    "DEAD_LETTERS",
    "ORDER_STAGE",
    "REP_STAGE",
    "CustomerState",
    "OrderState",
    "RepState",
    "address",
    "broadcast_targets",
    "customer_apply",
    "murmur2",
    "order_apply",
    "partition_of",
    "rep_apply",
    "rep_period_key",
    "route_input",
]

CUSTOMER_STAGE = "customer"
ORDER_STAGE = "order"
REP_STAGE = "rep"
DEAD_LETTERS = "dead-letters"

BROADCAST_TYPES = (PlanPublished, PeriodClosed)
"""Events every partition of a stage receives (see :func:`broadcast_targets`)."""


def route_input(event: Event, plans: PlanBook | None = None) -> list[tuple[str, str, Event]]:
    """``(stage, key, message)`` for a valid upstream event that goes to one keyed stage.

    Broadcast events (``PlanPublished``, ``PeriodClosed``) return ``[]``: send them to
    every partition of each stage in :func:`broadcast_targets`. ``plans`` is accepted
    for symmetry with the other routing calls and not needed."""
    del plans
    if isinstance(event, OrderPlaced):
        return [(CUSTOMER_STAGE, event.customer_id, event)]
    if isinstance(event, CustomerChanged):
        return [(CUSTOMER_STAGE, event.customer_id, event)]
    if isinstance(event, OrderCancelled | PaymentReceived | RefundIssued):
        return [(ORDER_STAGE, event.order_id, event)]
    if isinstance(event, RepChanged):
        return [(REP_STAGE, event.rep_id, event)]
    return []


def broadcast_targets(event: Event) -> tuple[str, ...]:
    """The stages whose every partition must receive ``event`` (applied to every state
    the partition holds)."""
    if isinstance(event, PlanPublished):
        return (ORDER_STAGE, REP_STAGE)
    if isinstance(event, PeriodClosed):
        return (ORDER_STAGE,)
    return ()


def address(
    out: OrderAccepted
    | CreditResolved
    | SnapshotRestated
    | OrderCancelledNotice
    | CommissionDelta
    | DeadLetter,
) -> tuple[str, str]:
    """``(stage, key)`` a stage output is sent to. A ``CommissionDelta`` goes to the
    rep-period stage (which forwards it to ``commission.deltas``); a ``DeadLetter`` to
    :data:`DEAD_LETTERS` keyed by the event id it concerns."""
    if isinstance(out, OrderAccepted):
        return ORDER_STAGE, out.order.order_id
    if isinstance(out, CreditResolved | SnapshotRestated):
        return ORDER_STAGE, out.order_id
    if isinstance(out, OrderCancelledNotice):
        return CUSTOMER_STAGE, out.customer_id
    if isinstance(out, CommissionDelta):
        return REP_STAGE, out.rep_id
    if isinstance(out, DeadLetter):
        return DEAD_LETTERS, out.event_id or ""
    raise TypeError(f"no route for {type(out).__name__}")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (the Java client's and aiokafka's default partitioner), as a
    signed 32-bit integer."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    tail = length - rest
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_of(key: str | bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``:
    ``(murmur2(key) & 0x7fffffff) % partitions``."""
    data = key.encode() if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions
