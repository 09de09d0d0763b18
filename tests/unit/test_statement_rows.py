"""Statement lines from unsorted query columns: each delta id once, in statement order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sinks.clickhouse import STATEMENT_COLUMNS, statement_order, statement_rows, statement_sums

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _row(n: int, minute: int) -> dict[str, Any]:
    """A stored statement row as the query returns it (decimals as text)."""
    return {
        "delta_id": f"d{n:04d}",
        "kind": "commission",
        "order_id": f"o{n}" if n % 3 else "",
        "customer_id": "c1",
        "plan_id": "standard",
        "plan_version": 1,
        "currency": "USD",
        "amount": f"{n}.25",
        "cumulative": f"{n}.25",
        "commission": "1.500000000000",
        "earned_fraction": "1.000000000000",
        "share": "0.333333333333",
        "revenue_base": f"{n}0.000000000000",
        "cause_event_id": f"e{n}",
        "cause_event_type": "PaymentReceived",
        "occurred_at": T0 + timedelta(minutes=minute),
        "booked_period": "2026-11",
        "origin_period": "2026-11",
        "reverses": "",
        "trace": "[]",
    }


def _columns(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r[c] for r in rows] for c in STATEMENT_COLUMNS]


@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=30),  # minute of each delta
    st.lists(st.integers(0, 3), min_size=30, max_size=30),  # extra copies of each
    st.randoms(use_true_random=False),
)
def test_any_order_and_any_copies_give_the_same_lines(
    minutes: list[int], copies: list[int], rnd: random.Random
) -> None:
    rows = [_row(n, m) for n, m in enumerate(minutes)]
    stored = [r for n, r in enumerate(rows) for _ in range(1 + copies[n])]
    rnd.shuffle(stored)

    lines = statement_rows(_columns(stored))

    want = sorted(rows, key=lambda r: (r["occurred_at"], r["delta_id"]))
    assert [line["delta_id"] for line in lines] == [r["delta_id"] for r in want]
    for line, r in zip(lines, want, strict=True):
        assert line["amount"] == Decimal(r["amount"])
        assert line["share"] == Decimal("0.333333333333")
        assert line["order_id"] == (r["order_id"] or None)
        assert line["reverses"] is None
        assert line["occurred_at"] == r["occurred_at"]


@given(
    st.lists(st.integers(0, 3000), min_size=1, max_size=40),  # minute of each delta
    st.integers(0, 45),
    st.integers(0, 45),
    st.randoms(use_true_random=False),
)
def test_a_page_is_a_slice_and_days_cover_the_whole_statement(
    minutes: list[int], offset: int, size: int, rnd: random.Random
) -> None:
    rows = [_row(n, m) for n, m in enumerate(minutes)]
    stored = rows + rows[: len(rows) // 2]  # some ids twice, as after a re-emit
    rnd.shuffle(stored)
    columns = _columns(stored)

    order = statement_order(columns)
    whole = statement_rows(columns)
    assert len(order) == len(rows)
    assert statement_rows(columns, order[offset : offset + size]) == whole[offset : offset + size]

    days, kinds = statement_sums(columns, order)
    assert kinds == {
        ("USD", "commission"): (sum((line["amount"] for line in whole), Decimal(0)), len(whole))
    }
    assert [(d, c) for d, c, _ in days] == sorted({(r["occurred_at"].date(), "USD") for r in rows})
    for day, _, amount in days:
        assert amount == sum(
            (line["amount"] for line in whole if line["occurred_at"].date() == day), Decimal(0)
        )


def test_one_row_and_no_rows() -> None:
    (line,) = statement_rows(_columns([_row(7, 1)]))
    assert line["delta_id"] == "d0007"
    assert line["amount"] == Decimal("7.25")
    assert statement_rows([]) == []
    assert statement_rows([[] for _ in STATEMENT_COLUMNS]) == []
    assert statement_sums([], []) == ([], {})  # the query returns no columns at all
