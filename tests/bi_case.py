"""A small hand-worked BI case shared by the unit and ClickHouse tests.

Plan ``plans/simple.yaml``: 5% of revenue, earned as paid, monthly UTC periods.

October: o1 (c1, credited r1 by owner): L1 2 x S1 (hw) at 100 = 200, L2 1 x S2 (sw) at 100
with 50% discount = 50; T = 250, paid in full on Oct 12 -> r1 +12.50 (hw 10.00, sw 2.50).

November:
- o2 (c1, credits r1 1/2, r2 1/2): 4 x S1 (hw) at 100 = 400; 200 paid on Nov 6 -> f = 1/2:
  C = 400 x 5% x 1/2 = 10.00 per rep, earned 5.00 each;
- o3 (c2, owner r2): 3 x S2 (sw) at 100, unit cost 40 = 300 (margin 180); paid in full
  on Nov 8 -> r2 +15.00;
- o4 (c2): 1 x S1 at 100, cancelled on Nov 10, never paid: no revenue, no commission;
- o5 (c3, no owner yet: uncredited): 1 x S3 (svc) at 50, placed Nov 11; c3 gets owner r1
  on Nov 12 (credit resolved), never paid.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from comstream.demo import plan_event
from processors.events import (
    Credit,
    CustomerChanged,
    Event,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    PaymentReceived,
    RepChanged,
)

SIMPLE = Path(__file__).resolve().parents[1] / "plans" / "simple.yaml"
D = Decimal


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def head() -> list[Event]:
    """Plan, reps and CRM facts."""
    return [
        plan_event(SIMPLE, at(1, 1)),
        RepChanged("rep-1", at(9, 1), "r1", "Ann", "team-a", None, "EMEA"),
        RepChanged("rep-2", at(9, 1), "r2", "Bo", "team-b", None, "APAC"),
        CustomerChanged(
            "crm-1", at(9, 1), "c1", "Acme", "A", "EMEA", "retail", "r1", date(2025, 1, 1)
        ),
        CustomerChanged("crm-2", at(9, 1), "c2", "Bolt", "B", "APAC", "tech", "r2", None),
        CustomerChanged("crm-3", at(9, 1), "c3", "Cora", "C", "EMEA", "retail", None, None),
    ]


def flow() -> list[Event]:
    """The orders, payments and the cancellation, in time order (o5's credit resolution
    is :func:`resolution`)."""
    return [
        OrderPlaced(
            "ev-o1",
            at(10, 10),
            "o1",
            "c1",
            at(10, 10),
            "USD",
            (
                OrderLine("L1", "S1", "hw", D(2), D(100)),
                OrderLine("L2", "S2", "sw", D(1), D(100), D("0.5")),
            ),
        ),
        PaymentReceived("ev-p1", at(10, 12), "o1", "p1", D(250), at(10, 12)),
        OrderPlaced(
            "ev-o2",
            at(11, 5),
            "o2",
            "c1",
            at(11, 5),
            "USD",
            (OrderLine("L1", "S1", "hw", D(4), D(100)),),
            credits=(Credit("r1", D("0.5")), Credit("r2", D("0.5"))),
        ),
        PaymentReceived("ev-p2", at(11, 6), "o2", "p2", D(200), at(11, 6)),
        OrderPlaced(
            "ev-o3",
            at(11, 7),
            "o3",
            "c2",
            at(11, 7),
            "USD",
            (OrderLine("L1", "S2", "sw", D(3), D(100), D(0), D(40)),),
        ),
        PaymentReceived("ev-p3", at(11, 8), "o3", "p3", D(300), at(11, 8)),
        OrderPlaced(
            "ev-o4",
            at(11, 9),
            "o4",
            "c2",
            at(11, 9),
            "USD",
            (OrderLine("L1", "S1", "hw", D(1), D(100)),),
        ),
        OrderCancelled("ev-x4", at(11, 10), "o4", at(11, 10)),
        OrderPlaced(
            "ev-o5",
            at(11, 11),
            "o5",
            "c3",
            at(11, 11),
            "USD",
            (OrderLine("L1", "S3", "svc", D(1), D(50)),),
        ),
    ]


def resolution() -> list[Event]:
    return [CustomerChanged("crm-4", at(11, 12), "c3", "Cora", "C", "EMEA", "retail", "r1", None)]


def events() -> list[Event]:
    return [*head(), *flow(), *resolution()]
