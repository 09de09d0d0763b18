"""Reconciliation (防遗漏, nothing missed): the pure part of ``comstream reconcile``.

An independent check of the pipeline, computed from the upstream topics themselves and
not from the worker's counters:

1. **The balance.** Every upstream message is classified by its position against the
   worker's committed ingest offsets and by the dead-letter topic:

   - *dead-lettered*: the dead-letter topic holds a letter for it (by source topic,
     partition and offset; for a letter a stage wrote, by event id);
   - *processed*: below the committed offset, no letter, and it decodes, validates and
     is accepted by the engine (so the worker had nothing to refuse);
   - *pending*: at or after the committed offset (not handled yet), no letter;
   - *unaccounted*: below the committed offset, no letter, but it should have one
     (it does not decode or validate, or the engine refuses it): lost.

   ``in = processed + dead_lettered + pending + unaccounted``; the events *balance*
   when nothing is unaccounted and no letter is wrong (a valid event refused, a letter
   with another reason than the pure functions give, a letter that points at no
   message).

2. **The ledger.** The handled, valid events run through the in-memory
   :class:`processors.engine.Engine` (as ``comstream replay`` does) give the expected
   commission per (order, rep, currency) booked in the period; it is compared with the
   ledger's sums (each delta id once). Orders with payments whose expected commission
   is not zero but that have no delta in the ledger are *paid, no commission*; other
   per-order and per-rep differences are listed too.

Nothing here does I/O: :mod:`comstream.reconcile_cmd` reads Kafka and the ledger.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from processors.engine import Engine
from processors.events import CommissionDelta, DeadLetter, Event, PaymentReceived
from processors.periods import period_kind, period_of
from processors.validation import validate_event
from schemas.codec import DeadLetterRecord, decode_event
from schemas.errors import CodecError
from schemas.jsonl import jsonable

__all__ = [
    "EXIT_BALANCED",
    "EXIT_IMBALANCE",
    "EXIT_LEDGER",
    "EXIT_UNAVAILABLE",
    "Issue",
    "LedgerRow",
    "Report",
    "TopicBalance",
    "Upstream",
    "check_events",
    "compare_ledger",
    "exit_code",
    "processing_order",
]

EXIT_BALANCED = 0  # balanced, and the ledger agrees with the engine (pending allowed)
EXIT_IMBALANCE = 1  # events do not balance (lost messages, wrong or orphan letters)
EXIT_LEDGER = 3  # events balance, but the ledger misses or differs from commission
EXIT_UNAVAILABLE = 4  # the check could not run (Kafka, worker or ClickHouse unreachable)

ZERO = Decimal(0)
DEFAULT_PAYMENT_WAIT = timedelta(hours=24)
"""How long a payment may wait for its order before reconcile lists it."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """One message of an upstream topic. ``timestamp`` is the Kafka timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Issue:
    """Something that breaks the balance.

    ``kind``: ``lost`` (handled, should have been dead-lettered, no letter),
    ``valid_dead_lettered`` (a letter for an event the pure functions accept),
    ``wrong_reason`` (a letter whose reason differs from the expected one),
    ``orphan_letter`` (a letter pointing at no upstream message / event id)."""

    kind: str
    topic: str
    partition: int
    offset: int
    event_id: str | None
    detail: str


@dataclass
class TopicBalance:
    topic: str
    events_in: int = 0
    processed: int = 0
    dead_lettered: int = 0
    pending: int = 0
    unaccounted: int = 0

    @property
    def balanced(self) -> bool:
        return self.unaccounted == 0 and self.events_in == (
            self.processed + self.dead_lettered + self.pending
        )

    def add(self, other: TopicBalance) -> None:
        self.events_in += other.events_in
        self.processed += other.processed
        self.dead_lettered += other.dead_lettered
        self.pending += other.pending
        self.unaccounted += other.unaccounted

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "events_in": self.events_in,
            "processed": self.processed,
            "dead_lettered": self.dead_lettered,
            "pending": self.pending,
            "unaccounted": self.unaccounted,
            "balanced": self.balanced,
        }


@dataclass
class EventCheck:
    """The balance, its issues, and the engine run over the handled valid events."""

    topics: dict[str, TopicBalance]
    issues: list[Issue]
    engine: Engine
    # order_id -> (number of handled valid payments, their sum)
    payments: dict[str, tuple[int, Decimal]]
    # letters whose source is gone (below the low watermark, or compacted away) or
    # beyond the snapshot: not counted, not an issue
    letters_ignored: int = 0
    # letters of valid events whose bytes were published again and processed
    letters_replayed: int = 0
    # business time of each decodable upstream message, by position and by event id:
    # how a dead letter is dated (its own bytes may be a stage message, or gone)
    occurred_at: dict[tuple[str, int, int], datetime] = field(default_factory=dict)
    occurred_by_event: dict[str, datetime] = field(default_factory=dict)

    @property
    def total(self) -> TopicBalance:
        out = TopicBalance("total")
        for b in self.topics.values():
            out.add(b)
        return out

    @property
    def balanced(self) -> bool:
        return not self.issues and all(b.balanced for b in self.topics.values())


def processing_order(
    partitions: Iterable[Sequence[Upstream]], rank: Mapping[str, int]
) -> Iterator[Upstream]:
    """The messages of every partition merged into one sequence: by Kafka timestamp,
    ties broken by topic ``rank`` then partition, each partition's own offset order kept.
    This approximates the order in which the worker met them (Kafka orders nothing across
    partitions; see docs/reconcile.md)."""
    return heapq.merge(*partitions, key=lambda m: (m.timestamp, rank.get(m.topic, 99), m.partition))


def _examine(value: bytes | None) -> tuple[Event | None, DeadLetter | None]:
    """What the worker's ingest does with a message: the event, or the dead letter."""
    try:
        event = decode_event(value or b"")
    except CodecError as exc:
        return None, DeadLetter("decode.error", str(exc))
    letter = validate_event(event)
    return event, letter


def _event_id(event: Event | None) -> str | None:
    event_id = getattr(event, "event_id", None)
    return event_id if isinstance(event_id, str) and event_id else None


def _reason_matches(got: str, want: str) -> bool:
    return got == want or got.split(":")[0] == want


def check_events(
    messages: Iterable[Upstream],
    committed: Mapping[tuple[str, int], int],
    letters: Iterable[DeadLetterRecord],
    upstream: Sequence[str],
    snapshot: Mapping[tuple[str, int], tuple[int, int]],
    compacted: Iterable[str] = (),
) -> EventCheck:
    """Classify ``messages`` (in processing order, see :func:`processing_order`) and
    check them against the dead ``letters``.

    ``committed`` maps (topic, partition) to the worker's committed ingest offset (the
    next offset it would read; missing = nothing committed). ``snapshot`` maps
    (topic, partition) to the (low, end) offsets the messages were read between; a
    letter pointing outside that range, or at a missing offset of a ``compacted`` topic,
    is ignored (counted in ``letters_ignored``). Letters whose topic is not upstream
    were written by a stage and are matched by event id.

    Handled valid events run through a fresh :class:`Engine`, in order; its refusals
    (``plan.conflict``, ``conflict.*``) are expected letters too."""
    upstream_set = set(upstream)
    compacted_set = set(compacted)
    by_position: dict[tuple[str, int, int], DeadLetterRecord] = {}
    by_event: dict[str, list[DeadLetterRecord]] = defaultdict(list)
    for r in letters:
        if r.topic in upstream_set:
            by_position.setdefault((r.topic, r.partition, r.offset), r)
        elif r.event_id is not None:
            by_event[r.event_id].append(r)
        else:  # a stage letter always names its event
            by_event[""].append(r)

    # pass 1: what the worker should do with each handled message, the engine's
    # refusals included (a stage may refuse an event when a later one arrives)
    examined: list[tuple[Upstream, Event | None, DeadLetter | None, bool]] = []
    engine = Engine()
    plan_refused: dict[tuple[str, int, int], str] = {}
    stage_refused: dict[str, str] = {}  # event_id -> reason the engine's stages gave
    for m in messages:
        event, refused = _examine(m.value)
        handled = m.offset < committed.get((m.topic, m.partition), 0)
        examined.append((m, event, refused, handled))
        if not handled or refused is not None or event is None:
            continue
        for out in engine.process(event):
            if not isinstance(out, DeadLetter):
                continue
            if out.reason == "plan.conflict":
                plan_refused[(m.topic, m.partition, m.offset)] = out.reason
            elif out.event_id is not None:
                stage_refused.setdefault(out.event_id, out.reason)

    # pass 2: classify against the letters
    topics = {t: TopicBalance(t) for t in upstream}
    issues: list[Issue] = []
    seen_positions: set[tuple[str, int, int]] = set()
    matched_events: set[str] = set()
    pending_events: set[str] = set()
    payments: dict[str, tuple[int, Decimal]] = {}
    paid_ids: set[str] = set()
    refused_valid: list[tuple[bytes, Issue]] = []
    processed_values: set[bytes] = set()
    for m, event, refused, handled in examined:
        balance = topics.setdefault(m.topic, TopicBalance(m.topic))
        balance.events_in += 1
        position = (m.topic, m.partition, m.offset)
        seen_positions.add(position)
        letter = by_position.get(position)
        event_id = _event_id(event)
        stage_letters = by_event.get(event_id, []) if event_id is not None else []

        if not handled:
            if event_id is not None:
                pending_events.add(event_id)
            if letter is not None or stage_letters:
                balance.dead_lettered += 1
            else:
                balance.pending += 1
            continue

        expected = refused.reason if refused is not None else plan_refused.get(position)
        stage_reason = stage_refused.get(event_id) if event_id is not None else None
        if letter is not None:
            balance.dead_lettered += 1
            if expected is None and stage_reason is None:
                refused_valid.append(
                    (
                        m.value or b"",
                        Issue(
                            "valid_dead_lettered",
                            *position,
                            event_id,
                            f"{letter.reason}: {letter.detail}",
                        ),
                    )
                )
            elif expected is not None and not _reason_matches(letter.reason, expected):
                issues.append(
                    Issue(
                        "wrong_reason",
                        *position,
                        event_id,
                        f"letter says {letter.reason}, expected {expected}",
                    )
                )
        elif expected is not None:
            balance.unaccounted += 1
            issues.append(
                Issue("lost", *position, event_id, f"no dead letter; expected {expected}")
            )
        elif stage_reason is not None:
            if any(_reason_matches(r.reason, stage_reason) for r in stage_letters):
                balance.dead_lettered += 1
                matched_events.add(event_id or "")
            else:
                balance.unaccounted += 1
                issues.append(
                    Issue("lost", *position, event_id, f"no dead letter; expected {stage_reason}")
                )
        else:
            balance.processed += 1
            processed_values.add(m.value or b"")
            if stage_letters:
                matched_events.add(event_id or "")
            if (
                isinstance(event, PaymentReceived)
                and event_id is not None
                and event_id not in paid_ids
            ):
                paid_ids.add(event_id)
                n, total = payments.get(event.order_id, (0, ZERO))
                payments[event.order_id] = (n + 1, total + event.amount)

    # a letter whose bytes were published again (``comstream dlq replay`` once the cause
    # was fixed, e.g. a currency or plan the worker now knows) and then processed was
    # resolved: the old message stays dead-lettered, and is no issue
    replayed = 0
    for value, issue in refused_valid:
        if value in processed_values:
            replayed += 1
        else:
            issues.append(issue)

    ignored = 0
    for (topic, partition, offset), r in by_position.items():
        if (topic, partition, offset) in seen_positions:
            continue
        low, end = snapshot.get((topic, partition), (0, 0))
        if offset < low or offset >= end or topic in compacted_set:
            ignored += 1
            continue
        issues.append(
            Issue("orphan_letter", topic, partition, offset, r.event_id, "no such message")
        )
    for event_id, rs in by_event.items():
        if event_id in pending_events and event_id not in matched_events:
            continue  # refused by a stage before the ingest commit: not checked yet
        if event_id in matched_events:
            if event_id not in stage_refused:  # a stage refused a valid event
                for r in rs:
                    issues.append(
                        Issue(
                            "valid_dead_lettered",
                            r.topic,
                            r.partition,
                            r.offset,
                            event_id,
                            f"{r.reason}: {r.detail}",
                        )
                    )
            continue
        for r in rs:
            issues.append(
                Issue(
                    "orphan_letter",
                    r.topic,
                    r.partition,
                    r.offset,
                    r.event_id,
                    f"{r.reason}: no upstream event with this id",
                )
            )
    result = EventCheck(topics, issues, engine, payments, ignored, replayed)
    for m, event, _, _ in examined:
        at = getattr(event, "occurred_at", None)
        if isinstance(at, datetime) and at.tzinfo is not None:
            result.occurred_at[(m.topic, m.partition, m.offset)] = at
            event_id = _event_id(event)
            if event_id is not None:
                result.occurred_by_event.setdefault(event_id, at)
    return result


# ---------------------------------------------------------------------------- ledger


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """The sum of one (order, rep, currency)'s deltas booked in the period, each delta id
    once. ``order_id`` is "" for deltas that belong to no order (accelerators)."""

    order_id: str
    rep_id: str
    currency: str
    amount: Decimal
    deltas: int


def expected_rows(deltas: Iterable[CommissionDelta], period: str) -> list[LedgerRow]:
    """The engine's deltas caused in ``period`` (their ``origin_period``), wherever they
    were booked, summed like :class:`LedgerRow`. By origin, not by booked period: a
    payment that raced the period's close is booked in ``period`` by one reader and in
    the next period as a prior-period adjustment of ``period`` by the other, and both
    are right (docs/reconcile.md)."""
    sums: dict[tuple[str, str, str], list[Any]] = {}
    for d in deltas:
        if d.origin_period != period:
            continue
        key = (d.order_id or "", d.rep_id, d.currency)
        acc = sums.setdefault(key, [ZERO, 0])
        acc[0] += d.amount
        acc[1] += 1
    return [LedgerRow(o, r, c, a, n) for (o, r, c), (a, n) in sorted(sums.items())]


@dataclass
class LedgerCheck:
    paid_no_commission: list[dict[str, Any]] = field(default_factory=list)
    order_differences: list[dict[str, Any]] = field(default_factory=list)
    rep_differences: list[dict[str, Any]] = field(default_factory=list)
    # orders left out because their work is not settled ("(accelerator)": a rep's
    # accelerator rows); "*" when nothing could be compared
    unsettled: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.paid_no_commission or self.order_differences or self.rep_differences)


@dataclass(frozen=True, slots=True)
class Unsettled:
    """Work the worker has not finished: orders with input at or after the committed
    offset or with messages in flight downstream, reps whose rep-period work is in
    flight, or ``everything`` (a pending plan, period close or undated message may
    change any figure). The ledger comparison leaves it out: what is not settled yet
    cannot be missing yet."""

    orders: frozenset[str] = frozenset()
    reps: frozenset[str] = frozenset()
    everything: bool = False

    def covers(self, order_id: str, rep_id: str) -> bool:
        return (
            self.everything or rep_id in self.reps or (bool(order_id) and order_id in self.orders)
        )


SETTLED = Unsettled()


def unsettled_work(
    pending: Iterable[Event | None],
    in_flight: Iterable[tuple[str, bytes | None, bytes | None]],
    engine: Engine,
) -> Unsettled:
    """What is not settled, from the upstream events at or after the worker's committed
    offsets (``pending``; None: one that does not decode) and the downstream messages
    not yet committed by their reader (``in_flight``: (stage, key, value), stage one of
    ``customer``, ``order``, ``rep`` or ``deltas``). An order's events unsettle that
    order; a customer's pending CRM change, or an in-flight customer-stage message other
    than an order, every order of that customer the engine knows; a rep's CRM change or
    an unreadable rep-stage message every row of that rep; a pending plan, period close
    or undecodable message everything."""
    from processors import serde
    from processors.events import (
        CustomerChanged,
        OrderCancelled,
        OrderPlaced,
        RefundIssued,
        RepChanged,
    )
    from schemas.codec import decode_delta

    orders: set[str] = set()
    reps: set[str] = set()
    customers: set[str] = set()
    for event in pending:
        if isinstance(event, OrderPlaced | OrderCancelled | PaymentReceived | RefundIssued):
            orders.add(event.order_id)
        elif isinstance(event, CustomerChanged):
            customers.add(event.customer_id)
        elif isinstance(event, RepChanged):
            reps.add(event.rep_id)
        else:  # a plan, a period close, an undecodable message: anything may change
            return Unsettled(everything=True)
    for stage, key, value in in_flight:
        name = (key or b"").decode("utf-8", "replace")
        if stage == "order":
            orders.add(name)
        elif stage == "customer":  # mostly orders on their way to the order stage
            try:
                message = serde.loads(value or b"")
            except Exception:  # unreadable: every order of the customer
                message = None
            if isinstance(message, OrderPlaced):
                orders.add(message.order_id)
            else:
                customers.add(name)
        else:  # the rep stage (serde) or the deltas topic (Avro): a delta names its order
            try:
                delta = serde.loads(value or b"") if stage == "rep" else decode_delta(value or b"")
            except Exception:  # unreadable: the whole rep is unsettled
                delta = None
            if isinstance(delta, CommissionDelta) and delta.order_id:
                orders.add(delta.order_id)
            else:
                reps.add(name)
    if customers:
        for order_id, state in engine.order_states().items():
            if state.accepted is not None and state.accepted.order.customer_id in customers:
                orders.add(order_id)
    return Unsettled(frozenset(orders), frozenset(reps))


def compare_ledger(
    expected: Sequence[LedgerRow],
    ledger: Sequence[LedgerRow],
    payments: Mapping[str, tuple[int, Decimal]],
    unsettled: Unsettled = SETTLED,
) -> LedgerCheck:
    """Compare the engine's per-(order, rep, currency) sums for one period with the
    ledger's, leaving out the rows of ``unsettled`` work (listed in ``unsettled``).

    - *paid, no commission*: an order with payments whose expected commission in the
      period is not zero and of which the ledger holds no delta in the period;
    - *order differences*: every other (order, rep, currency) whose sums differ;
    - *rep differences*: per (rep, currency) totals of the period that differ
      (accelerators included)."""
    out = LedgerCheck()
    skipped = {
        r.order_id or "(accelerator)"
        for r in (*expected, *ledger)
        if unsettled.covers(r.order_id, r.rep_id)
    }
    if skipped:
        out.unsettled = ["*"] if unsettled.everything else sorted(skipped)
        expected = [r for r in expected if not unsettled.covers(r.order_id, r.rep_id)]
        ledger = [r for r in ledger if not unsettled.covers(r.order_id, r.rep_id)]
    exp = {(r.order_id, r.rep_id, r.currency): r for r in expected}
    got = {(r.order_id, r.rep_id, r.currency): r for r in ledger}
    ledger_orders = {r.order_id for r in ledger}
    missing_paid: set[str] = set()
    by_order: dict[str, list[LedgerRow]] = defaultdict(list)
    for r in expected:
        by_order[r.order_id].append(r)
    for order_id, rows in sorted(by_order.items()):
        if not order_id or order_id in ledger_orders or order_id not in payments:
            continue
        if all(r.amount == 0 for r in rows):
            continue
        missing_paid.add(order_id)
        n, paid = payments[order_id]
        out.paid_no_commission.append(
            {
                "order_id": order_id,
                "payments": n,
                "paid": paid,
                "expected": [
                    {"rep_id": r.rep_id, "currency": r.currency, "amount": r.amount} for r in rows
                ],
            }
        )
    for key in sorted(set(exp) | set(got)):
        if key[0] in missing_paid:
            continue
        e = exp[key].amount if key in exp else ZERO
        g = got[key].amount if key in got else ZERO
        if e != g:
            out.order_differences.append(
                {
                    "order_id": key[0],
                    "rep_id": key[1],
                    "currency": key[2],
                    "expected": e,
                    "ledger": g,
                    "difference": g - e,
                }
            )
    rep_exp: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    rep_got: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in expected:
        rep_exp[(r.rep_id, r.currency)] += r.amount
    for r in ledger:
        rep_got[(r.rep_id, r.currency)] += r.amount
    for rep_key in sorted(set(rep_exp) | set(rep_got)):
        e, g = rep_exp.get(rep_key, ZERO), rep_got.get(rep_key, ZERO)
        if e != g:
            out.rep_differences.append(
                {
                    "rep_id": rep_key[0],
                    "currency": rep_key[1],
                    "expected": e,
                    "ledger": g,
                    "difference": g - e,
                }
            )
    return out


# ---------------------------------------------------------------------------- lists


def period_of_instant(at: datetime, period: str) -> str:
    """The period of the same kind as ``period`` that ``at`` falls in, in UTC."""
    return period_of(at.astimezone(UTC), period_kind(period), UTC)


def uncredited(engine: Engine, period: str) -> list[dict[str, Any]]:
    """Accepted orders with no credited rep, placed in ``period`` or earlier (UTC): they
    stay in the list until a CRM owner credits them (SEMANTICS.md section 2)."""
    out: list[dict[str, Any]] = []
    for order_id in engine.uncredited_orders():
        state = engine.order_state(order_id)
        if state is None or state.accepted is None:
            continue
        order = state.accepted.order
        placed = period_of_instant(order.placed_at, period)
        if placed > period:
            continue
        out.append(
            {
                "order_id": order_id,
                "customer_id": order.customer_id,
                "placed_at": order.placed_at.isoformat(),
                "placed_period": placed,
                "total": state.total,
                "paid": state.paid - state.refunded,
                "cancelled": state.cancelled,
            }
        )
    return out


def payment_exceptions(
    engine: Engine, as_of: datetime, max_wait: timedelta
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Money the engine took without a word, from its order states after the replay:

    - *overpaid*: accepted orders whose net payments (paid minus refunded) exceed the
      order total: ``order_id``, ``currency``, ``total``, ``paid``, ``excess``;
    - *waiting*: payments of orders that never arrived (the order stage keeps them until
      the order comes) whose first payment was received more than ``max_wait`` before
      ``as_of``: ``order_id``, ``payments``, ``amount``, ``first_received_at``,
      ``waiting_hours`` (whole hours).

    Both in order id order. Neither breaks the balance or the ledger: they are business
    exceptions for finance to resolve (refund, chase the order), listed until they are."""
    overpaid: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    for order_id, state in sorted(engine.order_states().items()):
        if state.accepted is not None:
            net = state.paid - state.refunded
            if net > state.total:
                overpaid.append(
                    {
                        "order_id": order_id,
                        "currency": state.accepted.order.currency,
                        "total": state.total,
                        "paid": net,
                        "excess": net - state.total,
                    }
                )
            continue
        payments = [m for m in state.movements if m.event_type == "PaymentReceived"]
        if not payments:
            continue
        first = min(m.at for m in payments)
        age = as_of - first
        if age <= max_wait:
            continue
        waiting.append(
            {
                "order_id": order_id,
                "payments": len(payments),
                "amount": sum((m.amount for m in payments), ZERO),
                "first_received_at": first.astimezone(UTC).isoformat(),
                "waiting_hours": int(age.total_seconds() // 3600),
            }
        )
    return overpaid, waiting


def letters_in_period(
    letters: Iterable[tuple[int, DeadLetterRecord]],
    period: str,
    occurred_at: Mapping[tuple[str, int, int], datetime] | None = None,
    occurred_by_event: Mapping[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """Distinct letters (one per source position) of ``period``, in UTC, ``(dlq offset,
    record)`` in. A letter is dated by the business time (``occurred_at``) of its event:
    the upstream message at its source position, else the upstream event with its event
    id (a stage's letter), else its own bytes if they decode. A letter that cannot be
    dated (its bytes never decoded) is listed in every period, marked ``undated``: it has
    no business time, and hiding it would be the kind of omission this check exists for.
    """
    by_position = occurred_at or {}
    by_event = occurred_by_event or {}
    seen: set[tuple[str, int, int]] = set()
    out: list[dict[str, Any]] = []
    for dlq_offset, r in letters:
        position = (r.topic, r.partition, r.offset)
        if position in seen:
            continue
        seen.add(position)
        at = by_position.get(position)
        if at is None and r.event_id is not None:
            at = by_event.get(r.event_id)
        if at is None:
            try:
                event: Event | None = decode_event(r.value)
            except CodecError:
                event = None
            occurred = getattr(event, "occurred_at", None)
            if isinstance(occurred, datetime) and occurred.tzinfo is not None:
                at = occurred
        if at is not None and period_of_instant(at, period) != period:
            continue
        out.append(
            {
                "dlq_offset": dlq_offset,
                "reason": r.reason,
                "detail": r.detail,
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "event_id": r.event_id,
                "event_type": r.event_type,
                "occurred_at": None if at is None else at.isoformat(),
                "undated": at is None,
            }
        )
    return out


# ---------------------------------------------------------------------------- report


@dataclass
class Report:
    period: str
    events: EventCheck
    ledger: LedgerCheck
    ledger_source: str
    uncredited: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    in_flight: dict[str, int]
    overpaid: list[dict[str, Any]] = field(default_factory=list)
    waiting_payments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code(self.events.balanced, self.ledger.ok)

    def as_json(self) -> dict[str, Any]:
        total = self.events.total
        body: dict[str, Any] = jsonable(
            {
                "period": self.period,
                "balanced": self.events.balanced,
                "ledger_ok": self.ledger.ok,
                "exit_code": self.exit_code,
                "balance": {
                    "topics": [b.as_dict() for b in self.events.topics.values()],
                    "total": total.as_dict(),
                },
                "issues": [
                    {
                        "kind": i.kind,
                        "topic": i.topic,
                        "partition": i.partition,
                        "offset": i.offset,
                        "event_id": i.event_id,
                        "detail": i.detail,
                    }
                    for i in self.events.issues
                ],
                "letters_ignored": self.events.letters_ignored,
                "letters_replayed": self.events.letters_replayed,
                "in_flight": self.in_flight,
                "ledger_source": self.ledger_source,
                "paid_no_commission": self.ledger.paid_no_commission,
                "order_differences": self.ledger.order_differences,
                "rep_differences": self.ledger.rep_differences,
                "unsettled_orders": self.ledger.unsettled,
                "uncredited": self.uncredited,
                "overpaid": self.overpaid,
                "waiting_payments": self.waiting_payments,
                "dead_letters": self.dead_letters,
            }
        )
        return body


def exit_code(balanced: bool, ledger_ok: bool) -> int:
    """:data:`EXIT_IMBALANCE` when the events do not balance (whatever the ledger says),
    else :data:`EXIT_LEDGER` when the ledger disagrees, else :data:`EXIT_BALANCED`."""
    if not balanced:
        return EXIT_IMBALANCE
    if not ledger_ok:
        return EXIT_LEDGER
    return EXIT_BALANCED
