"""The three stages one at a time: what each keeps, what it emits, and that a message
applied again re-emits exactly the same outputs and changes nothing."""

from __future__ import annotations

from decimal import Decimal

from processors import customers, orders, reps
from processors.events import CommissionDelta, Credit, DeadLetter, DeltaKind, RepChanged
from processors.messages import (
    CreditResolved,
    OrderAccepted,
    OrderCancelledNotice,
    RepFacts,
    SnapshotRestated,
)
from processors.plans import PlanBook, plan_from_event

from .test_scenarios_kit import (
    D,
    cancel,
    customer,
    line,
    order,
    pay,
    plan_doc,
    publish,
    refund,
    rep,
    ts,
)

REPS: dict[str, RepChanged] = {"rep-1": rep("rep-1", "team-a", "EMEA")}
CLOSED: frozenset[str] = frozenset()


def book(*docs: dict[str, object]) -> PlanBook:
    b = PlanBook()
    for doc in docs or (plan_doc(),):
        b = b.with_version(plan_from_event(publish(doc)))
    return b


# --------------------------------------------------------------------------- customer


def test_customer_stage_snapshot_and_credit() -> None:
    state, out = customers.apply(
        None,
        customer(
            "c1", owner="rep-1", tier="B", region="APAC", industry="retail", since="2026-11-01"
        ),
        REPS,
    )
    assert out == []
    placed = order("o1", [line("l1", 1, 10)], customer_id="c1", rep_id=None)
    state, out = customers.apply(state, placed, REPS)
    (msg,) = out
    assert isinstance(msg, OrderAccepted)
    assert msg.credit_source == "owner"
    assert [(c.rep_id, c.share) for c in msg.credits] == [("rep-1", Decimal(1))]
    assert msg.reps == (RepFacts("rep-1", "team-a", "EMEA", True),)
    assert msg.customer.tier == "B" and msg.customer.tenure_days == 9
    assert msg.customer.orders_365d == 0
    # a replay re-emits the same message, and the state is the same object
    again, out2 = customers.apply(state, placed, REPS)
    assert again is state and out2 == [msg]
    # a later order counts this one
    _, out3 = customers.apply(
        state, order("o2", [line("l1", 1, 10)], "2026-11-20T00:00:00Z", customer_id="c1"), REPS
    )
    assert isinstance(out3[0], OrderAccepted) and out3[0].customer.orders_365d == 1
    assert out3[0].credit_source == "rep_id"


def test_customer_stage_cancellation_notice_uncounts_the_order() -> None:
    state, _ = customers.apply(None, order("o1", [line("l1", 1, 10)], "2026-11-01T00:00:00Z"), REPS)
    notice = OrderCancelledNotice("cx", "o1", "cust-1", ts("2026-11-02T00:00:00Z"))
    state, out = customers.apply(state, notice, REPS)
    assert out == []
    assert customers.apply(state, notice, REPS)[0] is state  # idempotent
    _, out = customers.apply(state, order("o2", [line("l1", 1, 10)]), REPS)
    assert isinstance(out[0], OrderAccepted) and out[0].customer.orders_365d == 0


def test_customer_stage_uncredited_then_resolved_and_replayed() -> None:
    state, out = customers.apply(None, order("o1", [line("l1", 1, 10)], rep_id=None), REPS)
    assert isinstance(out[0], OrderAccepted) and out[0].credits == ()
    assert state.uncredited == ("o1",)
    # the customer's first CRM record, dated after the order: it credits the order
    change = customer("cust-1", owner="rep-1", event_id="crm-1", at="2026-11-12T00:00:00Z")
    state2, out = customers.apply(state, change, REPS)
    (resolved,) = out
    assert isinstance(resolved, CreditResolved)
    assert resolved.event_id == "crm-1" and resolved.reps[0].team_id == "team-a"
    # still listed: a CRM record dated between the order and this one may yet arrive
    assert state2.uncredited == ("o1",)
    # replaying the CRM change re-emits the same resolution; nothing changes
    state3, out = customers.apply(state2, change, REPS)
    assert state3 is state2 and out == [resolved]
    # a later owner change credits nothing again
    later = customer("cust-1", owner="rep-2", at="2026-11-20T00:00:00Z")
    _, out = customers.apply(state2, later, REPS)
    assert out == []


def test_customer_stage_takes_crm_facts_as_of_placed_at_whatever_arrives_first() -> None:
    """A CRM record dated before an order but read after it (another topic) restates the
    order's facts and owner credit; records dated after it change nothing."""
    placed = order("o1", [line("l1", 1, 10)], rep_id=None)  # 2026-11-10T10:00
    state, out = customers.apply(None, placed, REPS)
    assert out[0].credits == () and not out[0].customer.known
    first = customer("cust-1", owner="rep-1", tier="B", at="2026-11-01T00:00:00Z", event_id="c1")
    state, out = customers.apply(state, first, REPS)
    (restated,) = out
    assert isinstance(restated, SnapshotRestated)
    assert restated.customer.known and restated.customer.tier == "B"
    assert restated.credits == (Credit("rep-1", D("1")),) and restated.credit_source == "owner"
    assert state.uncredited == ()
    again, out = customers.apply(state, first, REPS)  # read again: the same message
    assert again is state and out == [restated]
    # dated after the order: no effect on it
    after = customer("cust-1", owner="rep-2", tier="C", at="2026-11-11T00:00:00Z")
    state_after, out = customers.apply(state, after, REPS)
    assert out == [] and state_after.facts == after
    # dated between the first record and the order: the order's facts are now these
    between = customer("cust-1", owner="rep-2", tier="A", at="2026-11-05T00:00:00Z")
    state, out = customers.apply(state_after, between, REPS)
    (moved,) = out
    assert isinstance(moved, SnapshotRestated) and moved.customer.tier == "A"
    assert moved.credits == (Credit("rep-2", D("1")),)
    # a record older than the one in effect changes nothing
    older = customer("cust-1", owner="rep-1", tier="C", at="2026-10-01T00:00:00Z")
    _, out = customers.apply(state, older, REPS)
    assert out == []
    # an order placed now reads the facts in effect at its own placed_at
    _, out = customers.apply(state, order("o2", [line("l1", 1, 10)], rep_id=None), REPS)
    assert out[0].customer.tier == "A" and out[0].credits == (Credit("rep-2", D("1")),)
    late_order = order("o3", [line("l1", 1, 10)], rep_id=None, placed_at="2026-11-12T00:00:00Z")
    _, out = customers.apply(state, late_order, REPS)
    assert out[0].customer.tier == "C" and out[0].credits == (Credit("rep-2", D("1")),)


def test_customer_stage_refuses_an_order_id_placed_twice() -> None:
    state, _ = customers.apply(None, order("o1", [line("l1", 1, 10)]), REPS)
    _, out = customers.apply(state, order("o1", [line("l1", 1, 10)], event_id="other"), REPS)
    assert isinstance(out[0], DeadLetter) and out[0].reason == "conflict.order_exists"


# ------------------------------------------------------------------------------ order


def accepted(
    o_id: str = "o1", quantity: int = 10, rep_id: str | None = "rep-1", customer_id: str = "cust-1"
) -> OrderAccepted:
    placed = order(o_id, [line("l1", quantity, 100)], rep_id=rep_id, customer_id=customer_id)
    _, out = customers.apply(None, placed, REPS)
    msg = out[0]
    assert isinstance(msg, OrderAccepted)
    return msg


def test_order_stage_replay_reemits_same_deltas() -> None:
    plans = book()
    state, out = orders.apply(None, accepted(), plans, CLOSED)
    assert out == []  # payment mode, nothing paid
    p = pay("o1", 500)
    state2, out = orders.apply(state, p, plans, CLOSED)
    (d,) = out
    assert isinstance(d, CommissionDelta) and d.amount == Decimal("25.00")
    assert d.kind == DeltaKind.COMMISSION and d.cause_event_id == p.event_id
    assert d.lines[0].rule_id == "flat" and d.revenue_base == Decimal("500.00")
    state3, again = orders.apply(state2, p, plans, CLOSED)
    assert state3 is state2 and again == [d]


def test_order_stage_pending_events_and_notice() -> None:
    plans = book(plan_doc(earn_on="booking"))
    c = cancel("o1", "2026-11-25T00:00:00Z")
    state, out = orders.apply(None, c, plans, CLOSED)
    assert out == [] and state is not None and state.accepted is None
    state, out = orders.apply(state, accepted(), plans, CLOSED)
    kinds = [type(o).__name__ for o in out]
    assert kinds == ["CommissionDelta", "OrderCancelledNotice", "CommissionDelta"]
    assert [o.amount for o in out if isinstance(o, CommissionDelta)] == [D("50.00"), D("-50.00")]
    notice = out[1]
    assert isinstance(notice, OrderCancelledNotice) and notice.customer_id == "cust-1"
    clawback = out[2]
    assert isinstance(clawback, CommissionDelta) and clawback.reverses == out[0].delta_id  # type: ignore[union-attr]


def test_order_stage_broadcasts_to_unknown_or_unchanged_orders() -> None:
    plans = book()
    event = publish(plan_doc(plan_id="other", applies_to={"teams": ["zzz"]}))
    assert orders.apply(None, event, plans, CLOSED) == (None, [])
    state, _ = orders.apply(None, accepted(), plans, CLOSED)
    # a plan the book does not hold yet (the dimension lags): applied from the event
    assert orders.apply(state, event, plans, CLOSED)[0] is state


def test_order_stage_plan_change_adjusts_and_replays() -> None:
    plans = book(plan_doc(earn_on="booking"))
    state, out = orders.apply(None, accepted(), plans, CLOSED)
    assert out[0].amount == D("50.00")  # type: ignore[union-attr]
    v2 = publish(
        plan_doc(
            version=2,
            earn_on="booking",
            effective_from="2026-11-01",
            rules=[{"id": "r", "base": "revenue", "rate": "0.07"}],
        ),
        at="2026-12-02T00:00:00Z",
    )
    plans2 = plans.with_version(plan_from_event(v2))
    state2, out = orders.apply(state, v2, plans2, CLOSED)
    (adj,) = out
    assert isinstance(adj, CommissionDelta)
    assert adj.kind == DeltaKind.ADJUSTMENT and adj.amount == D("20.00")
    assert (adj.booked_period, adj.origin_period) == ("2026-12", "2026-11")
    assert (adj.plan_id, adj.plan_version) == ("std", 2)
    state3, again = orders.apply(state2, v2, plans2, CLOSED)
    assert state3 is state2 and again == [adj]


def test_order_stage_credit_resolution_replays_history() -> None:
    plans = book()
    acc = accepted(rep_id=None, customer_id="nobody")
    state, out = orders.apply(None, acc, plans, CLOSED)
    p1 = pay("o1", 300, "2026-11-11T00:00:00Z")
    r1 = refund("o1", 100, "2026-11-12T00:00:00Z")
    state, _ = orders.apply(state, p1, plans, CLOSED)
    state, _ = orders.apply(state, r1, plans, CLOSED)
    res = CreditResolved(
        "crm-9",
        ts("2026-12-01T00:00:00Z"),
        "o1",
        "nobody",
        (Credit("rep-1", D(1)),),
        (RepFacts("rep-1"),),
    )
    state2, out = orders.apply(state, res, plans, CLOSED)
    assert [
        (d.cause_event_id, str(d.amount), d.booked_period)
        for d in out  # type: ignore[union-attr]
    ] == [(p1.event_id, "15.00", "2026-11"), (r1.event_id, "-5.00", "2026-11")]
    assert orders.apply(state2, res, plans, CLOSED) == (state2, out)


def test_order_stage_refuses_duplicate_payment_id() -> None:
    plans = book()
    state, _ = orders.apply(None, accepted(), plans, CLOSED)
    state, _ = orders.apply(state, pay("o1", 100, payment_id="bank-1"), plans, CLOSED)
    _, out = orders.apply(state, pay("o1", 100, payment_id="bank-1"), plans, CLOSED)
    assert isinstance(out[0], DeadLetter) and out[0].reason == "conflict.duplicate_payment_id"


def test_earned_part() -> None:
    t = D("1000.00")
    assert orders.earned_part("booking", t, D(0), D(0), False) == (t, D(1))
    assert orders.earned_part("booking", t, D(0), D(250), False) == (D("750.00"), D("0.75"))
    assert orders.earned_part("booking", t, D(0), D(2000), False)[1] == 0
    assert orders.earned_part("payment", t, D(300), D(500), False) == (0, 0)
    assert orders.earned_part("payment", t, D(1300), D(500), False) == (D(800), D("0.8"))
    assert orders.earned_part("full_payment", t, D(999), D(0), False)[1] == 0
    assert orders.earned_part("full_payment", t, D(1000), D(0), False)[1] == 1
    assert orders.earned_part("payment", t, D(1000), D(0), True) == (0, 0)
    assert orders.earned_part("payment", D(0), D(0), D(0), False)[1] == 1


# --------------------------------------------------------------------------- rep-period


TIERS = plan_doc(
    earn_on="booking",
    tiers={
        "quota": "1000",
        "method": "retroactive",
        "bands": [{"from": "0", "to": "1", "multiplier": "1"}, {"from": "1", "multiplier": "2"}],
    },
)


def deltas_for(plans: PlanBook, *quantities: int) -> list[CommissionDelta]:
    """The booking deltas of one order of ``quantity`` x 100.00 each, all for rep-1."""
    out: list[CommissionDelta] = []
    for i, quantity in enumerate(quantities):
        _, outputs = orders.apply(None, accepted(f"o{i}", quantity), plans, CLOSED)
        out.extend(d for d in outputs if isinstance(d, CommissionDelta))
    return out


def test_rep_stage_counts_a_delta_once_and_is_order_independent() -> None:
    plans = book(TIERS)
    ds = deltas_for(plans, 4, 7, 2)  # revenue 400 + 700 + 200 = 1300: a = 1.3 -> 2x
    forward: reps.RepState | None = None
    out_f: list[CommissionDelta] = []
    for d in ds:
        forward, o = reps.apply(forward, d, plans, REPS, CLOSED)
        out_f += o
    again, o = reps.apply(forward, ds[1], plans, REPS, CLOSED)
    assert again is forward
    backward: reps.RepState | None = None
    for d in reversed(ds):
        backward, _ = reps.apply(backward, d, plans, REPS, CLOSED)
    assert forward is not None and backward is not None
    (sums_f,), (sums_b,) = forward.periods, backward.periods
    assert sums_f.commission == sums_b.commission == D("65.00")
    assert sums_f.accelerator == sums_b.accelerator == D("65.00")  # 2 x 65 - 65
    assert sum(d.amount for d in out_f) == D("65.00")
    assert all(d.kind == DeltaKind.ACCELERATOR for d in out_f)


def test_rep_stage_recomputes_on_plan_and_rep_change() -> None:
    plans = book(TIERS)
    state: reps.RepState | None = None
    for d in deltas_for(plans, 12):  # K = 60, a = 1.2 -> 2x: accelerator 60
        state, _ = reps.apply(state, d, plans, REPS, CLOSED)
    assert state is not None and state.periods[0].accelerator == D("60.00")
    # v2: top band 3x, published later: the period is recomputed (+60)
    v2 = publish(
        plan_doc(
            version=2,
            earn_on="booking",
            tiers={
                "quota": "1000",
                "method": "retroactive",
                "bands": [
                    {"from": "0", "to": "1", "multiplier": "1"},
                    {"from": "1", "multiplier": "3"},
                ],
            },
        ),
        at="2026-11-20T00:00:00Z",
    )
    plans2 = plans.with_version(plan_from_event(v2))
    state2, out = reps.apply(state, v2, plans2, REPS, CLOSED)
    assert [str(d.amount) for d in out] == ["60.00"]
    assert reps.apply(state2, v2, plans2, REPS, CLOSED) == (state2, out)
    # the rep moves to a team with its own plan (no tiers): the accelerator goes away
    plans3 = plans2.with_version(
        plan_from_event(
            publish(plan_doc(plan_id="b", applies_to={"teams": ["team-b"]}, earn_on="booking"))
        )
    )
    moved = rep("rep-1", "team-b", "EMEA", at="2026-11-21T00:00:00Z")
    state3, out = reps.apply(state2, moved, plans3, {"rep-1": moved}, CLOSED)
    assert [str(d.amount) for d in out] == ["-120.00"]
    assert out[0].reverses is not None
    assert state3 is not None and state3.periods[0].accelerator == 0


def test_rep_stage_ignores_accelerators_and_unknown_broadcasts() -> None:
    plans = book(TIERS)
    assert reps.apply(None, publish(TIERS), plans, REPS, CLOSED) == (None, [])
    state: reps.RepState | None = None
    for d in deltas_for(plans, 12):
        state, out = reps.apply(state, d, plans, REPS, CLOSED)
    accel = out[0]
    assert reps.apply(state, accel, plans, REPS, CLOSED) == (state, [])


def test_order_stage_computes_commission_when_first_needed() -> None:
    plans = book()
    state, out = orders.apply(None, accepted(), plans, CLOSED)
    assert out == [] and state is not None
    (ledger,) = state.ledgers
    assert (ledger.plan_id, ledger.plan_version) == ("std", 1)
    assert ledger.commission is None and ledger.lines == ()  # unpaid: C not needed yet
    state, out = orders.apply(state, pay("o1", 100), plans, CLOSED)
    (ledger,) = state.ledgers
    assert ledger.commission == D("50.00") and len(ledger.lines) == 1
    (d,) = out
    assert isinstance(d, CommissionDelta) and d.commission == D("50.00")
    assert d.amount == D("5.00") and d.lines == ledger.lines
