"""BI facts derived from the stage states (processors.facts): pure, versioned, and
without any effect on the commission results."""

from __future__ import annotations

from decimal import Decimal

from processors import serde
from processors.engine import Engine
from processors.facts import (
    CustomerFact,
    OrderFact,
    RepFact,
    customer_fact,
    order_fact,
    rep_fact,
    sales_rows,
    state_facts,
)
from processors.orders import OrderState
from tests import bi_case

D = Decimal


def _engine(events: list) -> Engine:  # type: ignore[type-arg]
    engine = Engine()
    engine.process_all(events)
    return engine


def test_order_fact_follows_the_order_and_its_payments() -> None:
    engine = _engine(bi_case.events())
    o1 = order_fact(engine.order_state("o1"))
    assert o1 is not None
    assert (o1.total, o1.paid, o1.status, o1.version) == (D("250.00"), D(250), "paid", 2)
    assert [(c.rep_id, c.share, c.team_id) for c in o1.credits] == [("r1", D(1), "team-a")]
    assert o1.credit_source == "owner"
    assert (o1.customer_tier, o1.customer_region, o1.customer_industry) == (
        "A",
        "EMEA",
        "retail",
    )
    assert [ln.revenue for ln in o1.lines] == [D(200), D(50)]
    o2 = order_fact(engine.order_state("o2"))
    assert o2 is not None
    assert (o2.status, o2.paid_fraction, o2.outstanding) == ("open", D("0.5"), D(200))
    o4 = order_fact(engine.order_state("o4"))
    assert o4 is not None
    assert (o4.status, o4.cancelled_at, o4.outstanding, o4.version) == (
        "cancelled",
        bi_case.at(11, 10),
        D(0),
        2,
    )


def test_sales_rows_split_lines_by_share_and_sum_to_the_order() -> None:
    engine = _engine(bi_case.events())
    o2 = order_fact(engine.order_state("o2"))
    assert o2 is not None
    rows = sales_rows(o2)
    assert [(r.rep_id, r.revenue, r.quantity, r.margin) for r in rows] == [
        ("r1", D(200), D(2), None),
        ("r2", D(200), D(2), None),
    ]
    o3 = order_fact(engine.order_state("o3"))
    assert o3 is not None
    (row,) = sales_rows(o3)
    assert (row.rep_id, row.revenue, row.margin, row.category) == ("r2", D(300), D(180), "sw")


def test_an_uncredited_order_has_rep_less_rows_until_credit_is_resolved() -> None:
    engine = _engine([*bi_case.head(), *bi_case.flow()])
    before = order_fact(engine.order_state("o5"))
    assert before is not None
    assert before.credits == () and before.credit_source == "none"
    assert [(r.rep_id, r.share) for r in sales_rows(before)] == [("", D(1))]
    engine.process_all(bi_case.resolution())
    after = order_fact(engine.order_state("o5"))
    assert after is not None
    assert [(r.rep_id, r.share) for r in sales_rows(after)] == [("r1", D(1))]
    assert after.credit_source == "owner"
    assert after.version == before.version + 1


def test_no_fact_before_the_order_arrives_and_the_same_state_gives_the_same_fact() -> None:
    assert order_fact(None) is None
    assert order_fact(OrderState("early")) is None  # a payment came first
    engine = _engine(bi_case.events())
    state = engine.order_state("o3")
    assert order_fact(state) == order_fact(state)


def test_customer_and_rep_facts_are_versioned() -> None:
    engine = _engine(bi_case.events())
    c3 = customer_fact(engine.customer_state("c3"))
    assert c3 is not None
    assert (c3.owner_rep_id, c3.version) == ("r1", 2)
    c1 = customer_fact(engine.customer_state("c1"))
    assert c1 is not None and c1.version == 1 and c1.name == "Acme"
    r1 = rep_fact(engine.reps["r1"])
    assert (r1.team_id, r1.name) == ("team-a", "Ann")
    assert r1.version == int(bi_case.at(9, 1).timestamp()) * 1_000_000


def test_facts_round_trip_through_serde() -> None:
    engine = _engine(bi_case.events())
    facts = state_facts(
        engine.order_states().values(),
        engine.customer_states().values(),
        engine.reps.values(),
    )
    assert sum(isinstance(f, OrderFact) for f in facts) == 5
    assert sum(isinstance(f, CustomerFact) for f in facts) == 3
    assert sum(isinstance(f, RepFact) for f in facts) == 2
    for f in facts:
        assert serde.loads(serde.dumps(f)) == f


def test_deriving_facts_changes_no_commission() -> None:
    engine = _engine(bi_case.events())
    totals = engine.totals()
    state_facts(
        engine.order_states().values(), engine.customer_states().values(), engine.reps.values()
    )
    assert engine.totals() == totals
    assert totals == {
        ("r1", "2026-10", "USD"): D("12.50"),
        ("r1", "2026-11", "USD"): D("5.00"),
        ("r2", "2026-11", "USD"): D("20.00"),
    }
