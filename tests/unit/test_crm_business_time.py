"""The customer's facts count by business time: an order reads the customer's CRM record
in effect at its ``placed_at`` and counts the customer's orders placed in the year before
it and not cancelled by then, whichever arrived first (docs/semantics-decisions.md, "CRM
facts count by business time" and "`customer_orders_365d` ... counts by business
time"). Worked cases, then the property: any arrival order of CRM records and order
events gives every period the totals the business-time order gives."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from processors.engine import Engine
from processors.events import CustomerChanged, DeltaKind, Event

from .test_engine_worker_shape import WorkerShape, assert_same_states, by_id, run_both
from .test_properties import (
    REPS,
    SETTINGS,
    START,
    assert_cumulative_and_unique,
    interleave,
    money,
    nonzero,
    plans,
)
from .test_properties import replay as run
from .test_scenarios_kit import D, cancel, close, customer, line, order, pay, plan_doc, publish, rep
from .test_worker_crash_model import DurableShape, sink_totals

TIER_RULES = [
    {"id": "a", "when": {"customer_tier": "A"}, "base": "revenue", "rate": "0.10"},
    {"id": "b", "when": {"customer_tier": "B"}, "base": "revenue", "rate": "0.07"},
    {"id": "rest", "base": "revenue", "rate": "0.03"},
]


LOYAL_RULE = {
    "id": "loyal",
    "when": {"customer_orders_365d": {"gte": 2}},
    "base": "revenue",
    "rate": "0.09",
}


def by_period(engine: Engine) -> dict[tuple[str, str], Decimal]:
    return {(r, p): v for (r, p, _), v in engine.totals().items() if v}


SETUP: list[Event] = [
    publish(plan_doc(rules=TIER_RULES)),
    rep("rep-1", "team-a", "EMEA"),
    rep("rep-2", "team-b", "EMEA"),
]


def test_an_owner_change_dated_before_the_order_but_read_after_it_moves_the_credit() -> None:
    """Customer c owned by rep-1 since October, by rep-2 from 5 November (tier B then).
    Order o1 (1,000.00, no rep) is placed on 10 November and paid in two instalments,
    600 on 12 November and 400 on 3 December, under 5%/7%/3% by tier, earned on payment.
    Placed after the change, it is rep-2's at tier B: C = 7% × 1,000 = 70.00; November
    books 70 × 0.6 = 42.00, December 28.00. Read before the change (the CRM topic lagging
    behind the order topic), it is first rep-1's at tier A (10%: 60.00 in November), then
    restated when the change is read: rep-1 −60.00 in November, rep-2 +42.00 in November
    and, when the second payment comes, +28.00 in December. Either way rep-1 ends at 0."""
    v1 = customer("c", owner="rep-1", tier="A", at="2026-10-01T00:00:00Z", event_id="crm-1")
    v2 = customer("c", owner="rep-2", tier="B", at="2026-11-05T00:00:00Z", event_id="crm-2")
    placed = order("o1", [line("l1", 10, 100)], customer_id="c", rep_id=None)
    pay1 = pay("o1", 600, "2026-11-12T00:00:00Z", event_id="pay-1")
    pay2 = pay("o1", 400, "2026-12-03T00:00:00Z", event_id="pay-2")
    expected = {("rep-2", "2026-11"): D("42.00"), ("rep-2", "2026-12"): D("28.00")}
    in_time = run([*SETUP, v1, v2, placed, pay1, pay2])
    assert by_period(in_time) == expected
    late = run([*SETUP, v1, placed, pay1, v2, pay2])
    assert by_period(late) == expected
    restated = [d for d in late.deltas if d.cause_event_id == "crm-2"]
    assert sorted((d.rep_id, d.booked_period, d.amount) for d in restated) == [
        ("rep-1", "2026-11", D("-60.00")),
        ("rep-2", "2026-11", D("42.00")),
    ]
    assert all(d.kind is DeltaKind.ADJUSTMENT for d in restated)
    # the order's deltas per rep still run as cumulative amounts
    running: dict[str, Decimal] = defaultdict(Decimal)
    for d in late.deltas:
        running[d.rep_id] += d.amount
        assert running[d.rep_id] == d.cumulative
    # read again, the CRM record emits nothing new
    assert late.process(v2) == []


def test_a_change_dated_after_the_order_moves_nothing() -> None:
    """The same order, with rep-2's record dated 15 November (after the order): the order
    stays rep-1's at tier A (60.00 + 40.00), whether the record is read before or after
    it."""
    v1 = customer("c", owner="rep-1", tier="A", at="2026-10-01T00:00:00Z", event_id="crm-1")
    v2 = customer("c", owner="rep-2", tier="B", at="2026-11-15T00:00:00Z", event_id="crm-2")
    placed = order("o1", [line("l1", 10, 100)], customer_id="c", rep_id=None)
    pay1 = pay("o1", 600, "2026-11-12T00:00:00Z")
    pay2 = pay("o1", 400, "2026-12-03T00:00:00Z")
    expected = {("rep-1", "2026-11"): D("60.00"), ("rep-1", "2026-12"): D("40.00")}
    for events in ([v1, placed, pay1, v2, pay2], [v1, v2, placed, pay1, pay2]):
        assert by_period(run([*SETUP, *events])) == expected


def test_a_tier_restated_into_a_closed_period_books_in_the_first_open_one() -> None:
    """Order o1 credited to rep-1 by rep_id, 1,000.00 paid in full on 12 November; the
    customer's tier A record is dated 1 November but read only after November was closed
    (before it the customer was unknown: 3%, 30.00 in November). Tier A gives 100.00:
    the difference, 70.00, is a November amount, booked in December (the first open
    period) with November as its origin."""
    placed = order("o1", [line("l1", 10, 100)], customer_id="c")
    paid = pay("o1", 1000, "2026-11-12T00:00:00Z")
    tier_a = customer("c", tier="A", at="2026-11-01T00:00:00Z", event_id="crm-a")
    engine = run([*SETUP, placed, paid, close("2026-11"), tier_a])
    assert by_period(engine) == {("rep-1", "2026-11"): D("30.00"), ("rep-1", "2026-12"): D("70.00")}
    (adjustment,) = [d for d in engine.deltas if d.cause_event_id == "crm-a"]
    assert adjustment.origin_period == "2026-11" and adjustment.booked_period == "2026-12"
    assert adjustment.cumulative == D("100.00") and adjustment.commission == D("100.00")


def test_a_cancelled_order_is_restated_period_by_period() -> None:
    """Earned on booking: order o1 (1,000.00) placed on 10 November, cancelled on
    2 December. In time order it is rep-2's at tier C (3%): +30.00 in November, −30.00 in
    December. With rep-2's record read after the cancellation, rep-1 first books +100.00
    and −100.00 (tier A), then the restatement moves each period: rep-1 −100.00 in
    November and +100.00 in December, rep-2 +30.00 and −30.00. Each period ends as in
    time order, though the order's total is 0 either way."""
    doc = plan_doc(rules=TIER_RULES, earn_on="booking")
    v1 = customer("c", owner="rep-1", tier="A", at="2026-10-01T00:00:00Z")
    v2 = customer("c", owner="rep-2", tier="C", at="2026-11-05T00:00:00Z")
    placed = order("o1", [line("l1", 10, 100)], customer_id="c", rep_id=None)
    cancelled = cancel("o1", "2026-12-02T00:00:00Z")
    setup = [publish(doc), *SETUP[1:]]
    expected = {("rep-2", "2026-11"): D("30.00"), ("rep-2", "2026-12"): D("-30.00")}
    assert by_period(run([*setup, v1, v2, placed, cancelled])) == expected
    assert by_period(run([*setup, v1, placed, cancelled, v2])) == expected


# ------------------------------------------------------------------ the property


@st.composite
def crm_worlds(draw: st.DrawFn) -> tuple[list[Event], list[list[Event]], list[Event]]:
    """(setup, each customer's CRM records and each order's events as separate arrival
    sequences, the business-time order of all of them)."""
    doc = draw(plans())
    doc["rules"] = [*([LOYAL_RULE] if draw(st.booleans()) else []), *TIER_RULES]
    setup: list[Event] = [
        publish(doc),
        *(rep(r, f"team-{i % 2}", "EMEA") for i, r in enumerate(REPS)),
    ]
    timed: list[tuple[Any, int, Event]] = []
    sequences: list[list[Event]] = []
    customers = [f"c{i}" for i in range(draw(st.integers(1, 2)))]
    for cid in customers:
        for k in range(draw(st.integers(1, 3))):
            # odd seconds: never the same instant as an order (placed on whole minutes)
            at = START + timedelta(days=draw(st.integers(-20, 130)), seconds=2 * k + 1)
            record = customer(
                cid,
                owner=draw(st.sampled_from([*REPS, None])),
                tier=draw(st.sampled_from(["A", "B", "C", None])),
                at=at.isoformat(),
                event_id=f"crm-{cid}-{k}",
            )
            sequences.append([record])
            timed.append((at, len(timed), record))
    for i in range(draw(st.integers(1, 6))):
        oid = f"o{i}"
        split = draw(st.sampled_from(["owner", "owner", "rep", "half"]))
        at = START + timedelta(days=draw(st.integers(0, 120)), minutes=draw(st.integers(0, 1439)))
        seq: list[Event] = [
            order(
                oid,
                [line("l1", draw(st.integers(1, 5)), draw(money))],
                at.isoformat(),
                customer_id=draw(st.sampled_from(customers)),
                rep_id=draw(st.sampled_from(REPS)) if split == "rep" else None,
                credits=[("rep-1", "0.5"), ("rep-2", "0.5")] if split == "half" else [],
                event_id=f"placed-{oid}",
            )
        ]
        for k in range(draw(st.integers(0, 3))):
            at += timedelta(days=draw(st.integers(0, 40)), hours=draw(st.integers(1, 23)))
            kind = draw(st.sampled_from(["pay", "pay", "cancel"]))
            if kind == "pay":
                seq.append(pay(oid, draw(money), at.isoformat(), event_id=f"pay-{oid}-{k}"))
            else:
                seq.append(cancel(oid, at.isoformat(), event_id=f"cxl-{oid}-{k}"))
        sequences.append(seq)
        for e in seq:
            timed.append((e.occurred_at, len(timed), e))
    in_time = [e for _, _, e in sorted(timed, key=lambda t: (t[0], t[1]))]
    return setup, sequences, in_time


def sums(engine: Engine) -> dict[tuple[str, str, str], Decimal]:
    """(order, rep, booked period) -> amount, whatever the kind of delta."""
    out: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for d in engine.deltas:
        out[(d.order_id or "", d.rep_id, d.booked_period)] += d.amount
    return {k: v for k, v in out.items() if v}


@SETTINGS
@given(crm_worlds(), st.data())
def test_period_totals_do_not_depend_on_when_crm_records_arrive(
    world: tuple[list[Event], list[list[Event]], list[Event]], data: st.DataObject
) -> None:
    """CRM records (owner and tier changes) and orders' events read in any order give each
    order, rep and period what the business-time order gives."""
    setup, sequences, in_time = world
    reference = run(setup + in_time)
    shuffled = [data.draw(st.permutations(seq)) for seq in sequences]
    arrived = run(setup + interleave(data, shuffled))
    assert sums(arrived) == sums(reference)
    assert nonzero(arrived.totals()) == nonzero(reference.totals())
    assert_cumulative_and_unique(arrived)
    assert any(isinstance(e, CustomerChanged) for e in in_time)


def test_an_earlier_owner_read_late_takes_an_order_that_had_no_owner() -> None:
    """Order o3 is placed on 5 October, before the customer has an owner; rep-2 becomes
    the owner on 23 October and rep-1 on 1 November. The order is rep-2's: the first owner
    set after it. Read in the order 1 November, the order, 23 October, it is first rep-1's,
    then moved to rep-2 (found by the property below)."""
    placed = order("o3", [line("l1", 1, 100)], "2026-10-05T16:55:00Z", customer_id="c", rep_id=None)
    paid = pay("o3", 100, "2026-10-06T00:00:00Z")
    rep2 = customer("c", owner="rep-2", tier="A", at="2026-10-23T00:00:05Z")
    rep1 = customer("c", owner="rep-1", tier="A", at="2026-11-01T00:00:03Z")
    expected = {("rep-2", "2026-10"): D("3.00")}  # the customer unknown at placement: 3%
    assert by_period(run([*SETUP, placed, paid, rep2, rep1])) == expected
    assert by_period(run([*SETUP, rep1, placed, paid, rep2])) == expected


@SETTINGS
@given(crm_worlds(), st.data(), st.integers(0, 2**32))
def test_the_worker_layout_restates_as_the_engine_does(
    world: tuple[list[Event], list[list[Event]], list[Event]], data: st.DataObject, seed: int
) -> None:
    """The same arrival order through the worker's layout (heads, order entries and
    placement buckets in a keyed store, which a CRM record reads to find the orders
    placed after its date), writes failing at random: the engine's deltas and states."""
    setup, sequences, _ = world
    arrival = setup + interleave(data, [data.draw(st.permutations(s)) for s in sequences])
    shape = WorkerShape(rep_table_per_period=True, split=True, crash_seed=seed)
    engine = run_both(arrival, shape)
    assert by_id(shape.deltas) == by_id(list(engine.deltas))
    assert_same_states(shape, engine)


@SETTINGS
@given(crm_worlds(), st.data(), st.integers(0, 2**32))
def test_killed_at_random_the_worker_still_ends_where_business_time_does(
    world: tuple[list[Event], list[list[Event]], list[Event]], data: st.DataObject, seed: int
) -> None:
    """Stages running concurrently and killed at random (tests/unit/test_worker_crash_model):
    the ledger's totals per rep and period equal the business-time order's."""
    setup, sequences, in_time = world
    arrival = setup + interleave(data, [data.draw(st.permutations(s)) for s in sequences])
    shape = DurableShape(seed, warm=False)
    for e in arrival:
        shape.ingest(e)
    shape.run_to_end()
    assert sink_totals(shape.delta_log) == sink_totals(list(run(setup + in_time).deltas))


# ------------------------------------------------------------------ earlier orders

COUNT_SETUP: list[Event] = [
    publish(
        plan_doc(
            earn_on="booking",
            rules=[
                {
                    "id": "repeat",
                    "when": {"customer_orders_365d": {"gte": 1}},
                    "base": "revenue",
                    "rate": "0.10",
                },
                {"id": "first", "base": "revenue", "rate": "0.05"},
            ],
        )
    ),
    rep("rep-1", "team-a", "EMEA"),
]


def test_an_earlier_order_read_later_counts_for_the_orders_after_it() -> None:
    """10% for a customer's repeat orders (one or more earlier orders in the year), 5%
    for a first order; earned on booking. o1 (1,000.00) on 1 November, o2 (500.00) on
    10 November: 50.00 + 50.00 in time order. Read o2 first, it earns 25.00 as a first
    order, then o1 arrives: 50.00 for o1 and a restatement of o2 (+25.00, caused by o1's
    placement) in November."""
    o1 = order("o1", [line("l1", 10, 100)], "2026-11-01T09:00:00Z", customer_id="c")
    o2 = order("o2", [line("l1", 5, 100)], "2026-11-10T09:00:00Z", customer_id="c")
    expected = {("rep-1", "2026-11"): D("100.00")}
    assert by_period(run([*COUNT_SETUP, o1, o2])) == expected
    late = run([*COUNT_SETUP, o2, o1])
    assert by_period(late) == expected
    (restated,) = [d for d in late.deltas if d.order_id == "o2" and d.cause_event_id == "placed-o1"]
    assert (restated.amount, restated.cumulative, restated.kind) == (
        D("25.00"),
        D("50.00"),
        DeltaKind.ADJUSTMENT,
    )


def test_a_cancellation_counts_from_its_own_date_whenever_it_is_read() -> None:
    """Same plan. o1 (1,000.00) placed on 1 November and cancelled on 5 November: +50.00
    and −50.00. o2 (500.00) placed on 10 November has no earlier order left: 5%, 25.00.
    Read before the cancellation, o2 first earns 10% (50.00), and the cancellation
    restates it to 25.00 (−25.00)."""
    o1 = order("o1", [line("l1", 10, 100)], "2026-11-01T09:00:00Z", customer_id="c")
    o2 = order("o2", [line("l1", 5, 100)], "2026-11-10T09:00:00Z", customer_id="c")
    cxl = cancel("o1", "2026-11-05T00:00:00Z", event_id="cxl-1")
    expected = {("rep-1", "2026-11"): D("25.00")}
    assert by_period(run([*COUNT_SETUP, o1, cxl, o2])) == expected
    late = run([*COUNT_SETUP, o1, o2, cxl])
    assert by_period(late) == expected
    (restated,) = [d for d in late.deltas if d.order_id == "o2" and d.cause_event_id == "cxl-1"]
    assert (restated.amount, restated.cumulative) == (D("-25.00"), D("25.00"))


def test_an_earlier_second_cancellation_moves_the_cancellation_date() -> None:
    """o1 is cancelled twice, on 5 November (cxl-1) and on 2 November (cxl-0); o3 is
    placed on 3 November. By date o1 is cancelled from 2 November, so o3 has no earlier
    order (5%: 10.00) and o1 nets 0. Read with cxl-0 last, o3 first counts o1 (10%:
    20.00) and is restated when cxl-0 moves the cancellation before it."""
    o1 = order("o1", [line("l1", 10, 100)], "2026-11-01T09:00:00Z", customer_id="c")
    o3 = order("o3", [line("l1", 2, 100)], "2026-11-03T09:00:00Z", customer_id="c")
    cxl1 = cancel("o1", "2026-11-05T00:00:00Z", event_id="cxl-1")
    cxl0 = cancel("o1", "2026-11-02T00:00:00Z", event_id="cxl-0")
    expected = {("rep-1", "2026-11"): D("10.00")}
    assert by_period(run([*COUNT_SETUP, o1, cxl0, o3, cxl1])) == expected
    late = run([*COUNT_SETUP, o1, o3, cxl1, cxl0])
    assert by_period(late) == expected
    assert [d.amount for d in late.deltas if d.order_id == "o3"] == [D("20.00"), D("-10.00")]
