"""Input validation: every refusal is a DeadLetter with a machine-readable reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from processors.events import Credit, Event, OrderLine
from processors.validation import validate_event

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
)

GOOD = order("o1", [line("l1", 2, "10.50", discount="0.1", cost="3")])


def with_line(**changes: Any) -> Event:
    return replace(GOOD, lines=(replace(GOOD.lines[0], **changes),))


CASES: list[tuple[str, Event]] = [
    ("invalid.quantity_negative", with_line(quantity=Decimal(-1))),
    ("invalid.price_negative", with_line(unit_price=Decimal("-0.01"))),
    ("invalid.cost_negative", with_line(unit_cost=Decimal(-3))),
    ("invalid.discount_range", with_line(discount=Decimal("1.01"))),
    ("invalid.amount_non_finite", with_line(unit_price=Decimal("Infinity"))),
    ("invalid.amount_non_finite", with_line(quantity=Decimal("NaN"))),
    ("invalid.amount_type", with_line(unit_price=10.5)),
    ("invalid.amount_too_large", with_line(unit_price=Decimal("1000000000001"))),
    ("invalid.amount_too_large", with_line(quantity=Decimal(1000000), unit_price=Decimal(2000000))),
    ("invalid.amount_precision", pay("o1", "0.0000000000001")),
    # SEMANTICS.md section 2, "Precision": payments and refunds to 4 places (no currency's
    # minor unit is finer), line figures to 12, shares to 28
    ("invalid.amount_precision", pay("o1", "100.00001")),
    ("invalid.amount_precision", refund("o1", "0.12345")),
    ("invalid.amount_precision", with_line(unit_price=Decimal("0.0000000000001"))),
    ("invalid.amount_precision", with_line(quantity=Decimal("1.0000000000001"))),
    ("invalid.amount_precision", with_line(discount=Decimal("0.1000000000001"))),
    ("invalid.amount_precision", with_line(unit_cost=Decimal("3.0000000000001"))),
    (
        "invalid.amount_precision",
        replace(
            GOOD,
            credits=(
                Credit("a", Decimal("0.50000000000000000000000000001")),
                Credit("b", Decimal("0.49999999999999999999999999999")),
            ),
        ),
    ),
    (  # the sum is exact: 1 + 1E-28 is not 1, though it has 29 digits
        "invalid.shares_sum",
        replace(
            GOOD,
            credits=(
                Credit("a", Decimal("0.3333333333333333333333333334")),
                Credit("b", Decimal("0.3333333333333333333333333334")),
                Credit("c", Decimal("0.3333333333333333333333333333")),
            ),
        ),
    ),
    ("invalid.no_lines", replace(GOOD, lines=())),
    ("invalid.duplicate_line_id", replace(GOOD, lines=(GOOD.lines[0], GOOD.lines[0]))),
    ("invalid.missing_id", with_line(line_id="")),
    ("invalid.missing_id", replace(GOOD, order_id=" ")),
    ("invalid.missing_id", replace(GOOD, event_id="")),
    ("invalid.id_characters", replace(GOOD, order_id="o\x1f1")),
    ("invalid.id_characters", replace(GOOD, customer_id="c\x00")),
    ("invalid.currency_unknown", replace(GOOD, currency="usd")),
    ("invalid.naive_datetime", replace(GOOD, placed_at=datetime(2026, 11, 1))),
    ("invalid.naive_datetime", replace(GOOD, occurred_at=datetime(2026, 11, 1))),
    (
        "invalid.shares_sum",
        replace(GOOD, credits=(Credit("a", Decimal("0.5")), Credit("b", Decimal("0.49")))),
    ),
    ("invalid.shares_sum", replace(GOOD, credits=(Credit("a", Decimal("0.3333")),) * 1)),
    (
        "invalid.share_range",
        replace(GOOD, credits=(Credit("a", Decimal("1.5")), Credit("b", Decimal("-0.5")))),
    ),
    (
        "invalid.share_range",
        replace(GOOD, credits=(Credit("a", Decimal(0)), Credit("b", Decimal(1)))),
    ),
    (
        "invalid.duplicate_credit",
        replace(GOOD, credits=(Credit("a", Decimal("0.5")), Credit("a", Decimal("0.5")))),
    ),
    ("invalid.amount_negative", pay("o1", -1)),
    ("invalid.amount_negative", refund("o1", "-0.01")),
    ("invalid.amount_type", replace(pay("o1", 1), amount=1)),
    ("invalid.naive_datetime", replace(pay("o1", 1), received_at=datetime(2026, 1, 1))),
    ("invalid.naive_datetime", replace(cancel("o1"), cancelled_at=datetime(2026, 1, 1))),
    ("invalid.missing_id", replace(customer("c1"), customer_id="")),
    ("invalid.missing_id", replace(rep("r1"), rep_id="")),
    ("invalid.plan_definition", replace(publish(plan_doc()), definition="{}")),
    ("invalid.plan_definition", replace(publish(plan_doc()), version=2)),
    (
        "invalid.plan_definition",
        publish(plan_doc(rules=[{"id": "x", "base": "revenue", "rate": "7"}])),
    ),
    ("invalid.period", close("2026-13")),
    ("invalid.period", close("2026-Q5")),
    ("invalid.malformed", replace(GOOD, lines=(None,))),  # type: ignore[arg-type]
    ("invalid.missing_id", with_line(line_id=["x"])),
    ("invalid.missing_id", with_line(sku=None)),
    ("invalid.unknown_type", OrderLine("l", "s", "c", Decimal(1), Decimal(1))),  # type: ignore[list-item]
]


@pytest.mark.parametrize(
    ("reason", "event"), CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(CASES)]
)
def test_refused_with_reason(reason: str, event: Event) -> None:
    letter = validate_event(event)
    assert letter is not None, event
    assert letter.reason == reason, letter
    assert letter.detail
    if reason != "invalid.unknown_type" and getattr(event, "event_id", ""):
        assert letter.event_id == event.event_id
        assert letter.event_type == type(event).__name__


@pytest.mark.parametrize(
    "event",
    [
        GOOD,
        with_line(quantity=Decimal(0)),
        with_line(unit_price=Decimal("0.000000000001")),  # line figures: 12 places
        with_line(
            quantity=Decimal("1.000000000001"),
            discount=Decimal("0.123456789012"),
            unit_cost=Decimal("0.999999999999"),
        ),
        with_line(unit_price=Decimal("1.50000000000000000000")),  # zeros beyond 12 places
        replace(  # shares: 28 places, summing to exactly 1
            GOOD,
            credits=(
                Credit("a", Decimal("0.3333333333333333333333333333")),
                Credit("b", Decimal("0.3333333333333333333333333333")),
                Credit("c", Decimal("0.3333333333333333333333333334")),
            ),
        ),
        pay("o1", "100.0001"),  # to 4 places here; the order stage checks the currency
        with_line(discount=Decimal(1)),
        replace(
            GOOD,
            credits=(
                Credit("a", Decimal("0.3333")),
                Credit("b", Decimal("0.3333")),
                Credit("c", Decimal("0.3334")),
            ),
        ),
        replace(GOOD, currency="CNY"),
        pay("o1", 0),
        refund("o1", "12.34"),
        cancel("o1"),
        customer("c1", owner="r1", since="2020-01-01"),
        rep("r1"),
        publish(plan_doc()),
        close("2026-11"),
        close("2026-Q4"),
    ],
)
def test_valid_events_pass(event: Event) -> None:
    assert validate_event(event) is None
