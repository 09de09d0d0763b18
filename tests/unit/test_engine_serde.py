"""State and message bytes: exact round trips of every registered type."""

from __future__ import annotations

from datetime import timedelta, timezone
from decimal import Decimal

import pytest

from processors import serde
from processors.errors import SerdeError
from processors.events import CommissionDelta, DeadLetter
from processors.messages import CreditResolved, OrderAccepted, OrderCancelledNotice

from .test_scenarios_kit import (
    cancel,
    close,
    customer,
    line,
    order,
    pay,
    plan_doc,
    publish,
    refund,
    rep,
    run,
)


def rich_run() -> list[object]:
    """States, messages and deltas of a run that touches every stage and feature."""
    tiers = {
        "quota": "1000",
        "method": "marginal",
        "bands": [
            {"from": "0", "to": "1", "multiplier": "0.9"},
            {"from": "1", "multiplier": "1.5"},
        ],
    }
    events = [
        publish(plan_doc(tiers=tiers, caps={"per_order": "400", "per_period": "900"})),
        rep("rep-1", "team-a", "EMEA"),
        customer("cust-1", owner="rep-1", tier="A", since="2020-02-29"),
        order(
            "o1",
            [line("l1", 3, "99.95", discount="0.1", cost="40"), line("l2", 1, 5)],
            credits=[("rep-1", "0.6"), ("rep-2", "0.4")],
        ),
        pay("o1", "100.00"),
        refund("o1", "20"),
        pay("o2", "50"),  # before its order
        order("o2", [line("l1", 1, 500)], customer_id="cust-2", rep_id=None),
        customer("cust-2", owner="rep-2"),
        cancel("o1"),
        close("2026-11"),
    ]
    engine, deltas, _ = run(events)
    objects: list[object] = [*events, *deltas]
    objects += [engine.order_state(o) for o in ("o1", "o2")]
    objects += [engine.customer_state(c) for c in ("cust-1", "cust-2")]
    objects += [engine.rep_state(r) for r in ("rep-1", "rep-2")]
    objects.append(DeadLetter("invalid.no_lines", "no lines", "e1", "OrderPlaced"))
    o1 = engine.order_state("o1")
    assert o1 is not None and o1.accepted is not None
    objects.append(o1.accepted)
    objects.append(
        CreditResolved(
            "c", o1.accepted.order.placed_at, "o1", "cust-1", o1.accepted.credits, o1.accepted.reps
        )
    )
    objects.append(OrderCancelledNotice("x", "o1", "cust-1", o1.accepted.order.placed_at))
    assert all(o is not None for o in objects)
    return objects


def test_every_state_message_and_delta_round_trips() -> None:
    seen: set[str] = set()
    for obj in rich_run():
        data = serde.dumps(obj)
        assert isinstance(data, bytes)
        back = serde.loads(data)
        assert back == obj and type(back) is type(obj)
        assert serde.dumps(back) == data  # same bytes again: nothing was normalised away
        seen.add(type(obj).__name__)
    assert {
        "OrderState",
        "CustomerState",
        "RepState",
        "CommissionDelta",
        "OrderAccepted",
        "CreditResolved",
        "OrderCancelledNotice",
        "OrderPlaced",
        "PlanPublished",
        "PeriodClosed",
        "DeadLetter",
        "PaymentReceived",
        "RefundIssued",
        "OrderCancelled",
        "CustomerChanged",
        "RepChanged",
    } <= seen


def test_exact_decimals_and_offsets() -> None:
    o = order("o1", [line("l1", "1.000", "1E+2")], "2026-11-10T23:30:00+08:00")
    back = serde.loads(serde.dumps(o))
    assert str(back.lines[0].quantity) == "1.000" and str(back.lines[0].unit_price) == "1E+2"
    assert back.placed_at.utcoffset() == timedelta(hours=8)
    assert back.placed_at.date() == o.placed_at.date()
    tz = back.placed_at.tzinfo
    assert tz is not None and tz.utcoffset(None) == timezone(timedelta(hours=8)).utcoffset(None)


def test_delta_round_trip_keeps_kind_and_trace() -> None:
    deltas = [o for o in rich_run() if isinstance(o, CommissionDelta)]
    assert {d.kind.value for d in deltas} >= {"commission", "accelerator"}
    for d in deltas:
        back = serde.loads(serde.dumps(d))
        assert back.kind is d.kind and back.lines == d.lines
        assert isinstance(back.amount, Decimal)


def test_refuses_what_it_does_not_know() -> None:
    with pytest.raises(SerdeError):
        serde.dumps(object())
    with pytest.raises(SerdeError):
        serde.dumps({"a": 1})
    for data in (
        b"",
        b"not json",
        b'["Nope", 1]',
        b'["DeadLetter", 1]',
        b"[]",
        b'{"a": 1}',
        b'["DeadLetter", "r", "d", null]',
        b'["RepFacts", "r", null, null, "yes"]',
    ):
        with pytest.raises(SerdeError):
            serde.loads(data)


def test_accepted_message_is_compact() -> None:
    objs = [o for o in rich_run() if isinstance(o, OrderAccepted)]
    assert objs and len(serde.dumps(objs[0])) < 2000
