"""Worked scenarios: each a short event list under a plan, with the exact deltas and totals
expected, worked out by hand in the comment above it (SEMANTICS.md sections 1-6, 8).

A delta is written ``(kind, rep, order, amount, booked period, origin period)`` with kind
C = commission, A = adjustment, X = accelerator, in the order the engine emits them.
Totals are per (rep, booked period), USD, zero totals left out. Unless a scenario says
otherwise: plan ``std`` v1 pays 5% of revenue to everyone, monthly, UTC, effective
2026-01-01; rep-1 is in team-a / EMEA; cust-1 is tier A, EMEA, retail, customer since
2020-01-01, owned by rep-9; orders are placed 2026-11-10 by rep-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from processors.events import Event

from .test_scenarios_kit import (
    brief,
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
    totals_of,
)

Delta = tuple[str, str, str | None, str, str, str]


@dataclass
class Case:
    id: str
    events: list[Event]
    deltas: list[Delta]
    totals: dict[tuple[str, str], str]
    dead: list[str] = field(default_factory=list)


def setup(*docs: dict[str, Any], crm: bool = True) -> list[Event]:
    """The plans (published 2025-12-01), then the CRM: reps and cust-1."""
    events: list[Event] = [publish(d) for d in (docs or (plan_doc(),))]
    if crm:
        events += [
            rep("rep-1", "team-a", "EMEA"),
            rep("rep-2", "team-b", "EMEA"),
            rep("rep-9", "team-a", "APAC"),
            customer(
                "cust-1",
                owner="rep-9",
                tier="A",
                region="EMEA",
                industry="retail",
                since="2020-01-01",
            ),
        ]
    return events


BOOKING = plan_doc(earn_on="booking")
L1000 = [line("l1", 10, "100.00")]  # revenue 10 x 100.00 = 1000.00: T = 1000.00

CASES: list[Case] = []


def case(
    id: str,
    events: list[Event],
    deltas: list[Delta],
    totals: dict[tuple[str, str], str],
    dead: list[str] | None = None,
) -> None:
    CASES.append(Case(id, events, deltas, totals, dead or []))


# --------------------------------------------------------------------- earning (section 4)

# Booking: f = 1 once placed. C = 1000.00 x 0.05 = 50.00, booked at placed_at (2026-11).
case(
    "booking-basic",
    [*setup(BOOKING), order("o1", L1000)],
    [("C", "rep-1", "o1", "50.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "50.00"},
)

# Payment: C = 50.00, f = P/T. 500 paid in Nov: f = 0.5, E = 25.00 (+25.00 Nov);
# 500 more in Dec: f = 1, E = 50.00 (+25.00 Dec).
case(
    "payment-pro-rata",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 500, "2026-11-15T10:00:00Z"),
        pay("o1", 500, "2026-12-03T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "25.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "25.00", "2026-12", "2026-12"),
    ],
    {("rep-1", "2026-11"): "25.00", ("rep-1", "2026-12"): "25.00"},
)

# Overpaid: P = 1200 > T = 1000, f = min(1, 1.2) = 1: E = 50.00, nothing more.
case(
    "payment-overpaid",
    [*setup(), order("o1", L1000), pay("o1", 1200)],
    [("C", "rep-1", "o1", "50.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "50.00"},
)

# Full payment: 400 of 1000 paid -> f = 0 (no delta); 600 more on Dec 3 -> P = T, f = 1,
# E = 50.00 booked in December (the payment that completed it).
case(
    "full-payment",
    [
        *setup(plan_doc(earn_on="full_payment")),
        order("o1", L1000),
        pay("o1", 400),
        pay("o1", 600, "2026-12-03T09:00:00Z"),
    ],
    [("C", "rep-1", "o1", "50.00", "2026-12", "2026-12")],
    {("rep-1", "2026-12"): "50.00"},
)

# Booking + refund: +50.00 at placement; a refund of 250.00 on Dec 5 lowers f to
# 1 - 250/1000 = 0.75: E = 37.50, a clawback of -12.50 in December.
case(
    "booking-refund",
    [*setup(BOOKING), order("o1", L1000), refund("o1", 250, "2026-12-05T10:00:00Z")],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-12.50", "2026-12", "2026-12"),
    ],
    {("rep-1", "2026-11"): "50.00", ("rep-1", "2026-12"): "-12.50"},
)

# Refund larger than payments: pay 300 -> f = 0.3, E = 15.00; refund 500 -> P =
# max(0, 300 - 500) = 0, E = 0 (-15.00); pay 1000 in Dec -> P = 1300 - 500 = 800,
# f = 0.8, E = 40.00 (+40.00 Dec).
case(
    "refund-larger-than-payments",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 300, "2026-11-15T10:00:00Z"),
        refund("o1", 500, "2026-11-20T10:00:00Z"),
        pay("o1", 1000, "2026-12-02T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "15.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-15.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "40.00", "2026-12", "2026-12"),
    ],
    {("rep-1", "2026-12"): "40.00"},
)

# A payment that arrives before its order is kept; when the order arrives it is applied:
# 600 of 1000 -> E = 30.00 booked by the payment's own time (Nov 12). The next payment
# (400, Dec 1) completes it: +20.00 in December.
case(
    "payment-before-order",
    [
        *setup(),
        pay("o1", 600, "2026-11-12T10:00:00Z"),
        order("o1", L1000),
        pay("o1", 400, "2026-12-01T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "30.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "20.00", "2026-12", "2026-12"),
    ],
    {("rep-1", "2026-11"): "30.00", ("rep-1", "2026-12"): "20.00"},
)

# ----------------------------------------------------- arrival order (section 4)
# Payments, refunds and cancellations come from other topics than the order and can arrive
# out of business-time order. Period p books E(the order's movements up to the end of p)
# - E(its movements before p), whatever the arrival order; a late movement emits one delta
# per period whose amount changes.

# Dec 5 payment of 400 arrives first: f = 0.4, E = 20.00 (+20.00 Dec). Then the Nov 20
# payment of 600: November now ends at f = 0.6, E = 30.00 (+30.00 Nov); December ends at
# E = 50.00 as before, and 50.00 - 30.00 = 20.00 is what December already has: no change.
case(
    "late-payment-from-an-earlier-period",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 400, "2026-12-05T10:00:00Z"),
        pay("o1", 600, "2026-11-20T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "20.00", "2026-12", "2026-12"),
        ("C", "rep-1", "o1", "30.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "30.00", ("rep-1", "2026-12"): "20.00"},
)

# The Dec 3 payment of 1000 arrives first: +50.00 Dec. The cancellation of Nov 25 arrives
# next: in business time the order was cancelled before it was paid, so no period earns
# anything: November stays 0, December goes from 50.00 to 0 (-50.00 Dec, a clawback).
case(
    "cancellation-arrives-after-a-later-payment",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 1000, "2026-12-03T10:00:00Z"),
        cancel("o1", "2026-11-25T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-12", "2026-12"),
        ("C", "rep-1", "o1", "-50.00", "2026-12", "2026-12"),
    ],
    {},
)

# A Dec 10 refund of 300 arrives before the Nov 20 payment of 1000 it refunds: P =
# max(0, 0 - 300) = 0, nothing. The payment: November ends at f = 1, E = 50.00 (+50.00
# Nov); December ends at P = 700, E = 35.00, so December books 35.00 - 50.00 = -15.00.
case(
    "refund-arrives-before-its-payment",
    [
        *setup(),
        order("o1", L1000),
        refund("o1", 300, "2026-12-10T10:00:00Z"),
        pay("o1", 1000, "2026-11-20T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-15.00", "2026-12", "2026-12"),
    ],
    {("rep-1", "2026-11"): "50.00", ("rep-1", "2026-12"): "-15.00"},
)

# Booking: +50.00 Nov at placement; a Dec 10 refund of 200 arrives first: f = 0.8,
# E = 40.00 (-10.00 Dec). The Nov 25 cancellation arrives late: November ends cancelled
# (E = 0, was 50.00: -50.00 Nov), December ends at 0 as well (was 40.00, so December's
# amount goes from -10.00 to 0: +10.00 Dec). Both months total 0, as in business order.
case(
    "cancellation-arrives-after-a-later-refund",
    [
        *setup(BOOKING),
        order("o1", L1000),
        refund("o1", 200, "2026-12-10T10:00:00Z"),
        cancel("o1", "2026-11-25T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-10.00", "2026-12", "2026-12"),
        ("C", "rep-1", "o1", "-50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "10.00", "2026-12", "2026-12"),
    ],
    {},
)

# As the first case, but November is closed before the Nov 20 payment arrives: its
# +30.00 keeps November as its origin and is booked in December, the first open period.
case(
    "late-payment-into-a-closed-period",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 400, "2026-12-05T10:00:00Z"),
        close("2026-11"),
        pay("o1", 600, "2026-11-20T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "20.00", "2026-12", "2026-12"),
        ("C", "rep-1", "o1", "30.00", "2026-12", "2026-11"),
    ],
    {("rep-1", "2026-12"): "50.00"},
)

# Duplicates change nothing: the same payment event twice, the same OrderPlaced twice and
# the plan published twice give one delta of 500/1000 x 50 = 25.00.
_dup_pay = pay("o1", 500, event_id="pay-dup")
case(
    "duplicate-events",
    [
        *setup(),
        order("o1", L1000),
        _dup_pay,
        _dup_pay,
        order("o1", L1000),
        publish(plan_doc()),
        _dup_pay,
    ],
    [("C", "rep-1", "o1", "25.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "25.00"},
)

# Cancellation after a partial payment: 400 paid -> E = 20.00; cancelled Nov 25 -> f = 0,
# a -20.00 clawback; a payment after the cancellation earns nothing.
case(
    "cancel-after-partial-payment",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 400),
        cancel("o1", "2026-11-25T10:00:00Z"),
        pay("o1", 600, "2026-12-02T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "20.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-20.00", "2026-11", "2026-11"),
    ],
    {},
)

# Booking, cancelled the next month: +50.00 in Nov, -50.00 in Dec (the cancellation's
# own period): Nov's statement is not rewritten.
case(
    "booking-cancel-next-month",
    [*setup(BOOKING), order("o1", L1000), cancel("o1", "2026-12-02T10:00:00Z")],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-50.00", "2026-12", "2026-12"),
    ],
    {("rep-1", "2026-11"): "50.00", ("rep-1", "2026-12"): "-50.00"},
)

# A cancellation that arrives before its order: kept, then applied after the placement
# (booking): +50.00 at placement, -50.00 at the cancellation (both November).
case(
    "cancel-before-order",
    [*setup(BOOKING), cancel("o1", "2026-11-25T10:00:00Z"), order("o1", L1000)],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-50.00", "2026-11", "2026-11"),
    ],
    {},
)

# Zero total: one free line (T = 0) under a fixed 10.00 per line rule, earned on payment.
# Nothing is owed, so the order counts as fully paid: E = 10.00 at placement.
case(
    "zero-total-fixed",
    [
        *setup(plan_doc(rules=[{"id": "fee", "base": "revenue", "fixed": "10.00"}])),
        order("o1", [line("l1", 1, "0.00")]),
    ],
    [("C", "rep-1", "o1", "10.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "10.00"},
)

# Half up: 1 x 2.50 at 5% = 0.125 -> E = 0.13 (booking).
case(
    "rounding-half-up",
    [*setup(BOOKING), order("o1", [line("l1", 1, "2.50")])],
    [("C", "rep-1", "o1", "0.13", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "0.13"},
)

# Shares that do not divide evenly: T = 1000.01, C(order) = 50.0005; shares
# 0.3333/0.3333/0.3334: rep-1 and rep-2 C = 16.66516665 -> 16.67 each; rep-9
# C = 16.6701667 -> 16.67 (each rep rounds its own cumulative amount). A refund of
# 333.34 (booking) leaves f = 666.67/1000.01: rep-1 E = 16.66516665 x 666.67/1000.01
# = 11.110... -> 11.11, delta -5.56; rep-9 E = 11.1134... -> 11.11, delta -5.56.
case(
    "uneven-shares",
    [
        *setup(BOOKING),
        order(
            "o1",
            [line("l1", 1, "1000.01")],
            rep_id=None,
            credits=[("rep-1", "0.3333"), ("rep-2", "0.3333"), ("rep-9", "0.3334")],
        ),
        refund("o1", "333.34"),
    ],
    [
        ("C", "rep-1", "o1", "16.67", "2026-11", "2026-11"),
        ("C", "rep-2", "o1", "16.67", "2026-11", "2026-11"),
        ("C", "rep-9", "o1", "16.67", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-5.56", "2026-11", "2026-11"),
        ("C", "rep-2", "o1", "-5.56", "2026-11", "2026-11"),
        ("C", "rep-9", "o1", "-5.56", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "11.11", ("rep-2", "2026-11"): "11.11", ("rep-9", "2026-11"): "11.11"},
)

# Payment in a partial cent: C = 50.00, pay 0.01 of 1000 -> E = round(0.0005) = 0.00:
# E does not change, nothing is emitted... except the revenue base moved by 0.01, which
# attainment needs: a 0.00 delta carries it.
case(
    "tiny-payment-carries-revenue",
    [*setup(), order("o1", L1000), pay("o1", "0.01")],
    [("C", "rep-1", "o1", "0.00", "2026-11", "2026-11")],
    {},
)

# ---------------------------------------------------------------------- crediting (2)

# Precedence: credits, else rep_id, else the customer's owner (rep-9).
# o1 has credits (rep-2: 1) and rep_id rep-1: rep-2 earns 50.00; o2 has rep_id rep-1;
# o3 has neither: the owner rep-9.
case(
    "credit-precedence",
    [
        *setup(BOOKING),
        order("o1", L1000, credits=[("rep-2", "1")]),
        order("o2", L1000),
        order("o3", L1000, rep_id=None),
    ],
    [
        ("C", "rep-2", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o2", "50.00", "2026-11", "2026-11"),
        ("C", "rep-9", "o3", "50.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "50.00", ("rep-2", "2026-11"): "50.00", ("rep-9", "2026-11"): "50.00"},
)

# A CRM change after the order moves nothing: o1 is credited to the owner rep-9 and
# snapshots tier A (10% rule); the CRM then gives cust-1 to rep-2 and tier C. The payment
# still pays rep-9 at 10%: 1000 x 0.10 = 100.00.
case(
    "crm-change-moves-nothing",
    [
        *setup(
            plan_doc(
                rules=[
                    {"id": "a", "when": {"customer_tier": "A"}, "base": "revenue", "rate": "0.10"},
                    {"id": "rest", "base": "revenue", "rate": "0.05"},
                ]
            )
        ),
        order("o1", L1000, rep_id=None),
        customer("cust-1", owner="rep-2", tier="C", at="2026-11-11T00:00:00Z"),
        pay("o1", 1000),
    ],
    [("C", "rep-9", "o1", "100.00", "2026-11", "2026-11")],
    {("rep-9", "2026-11"): "100.00"},
)

# Uncredited: cust-2 has no owner and the order no rep: kept, earns nobody anything. The
# CRM sets owner rep-2 on Dec 1: the order is credited as if from the start, the
# 500.00 payment of Nov 15 earning 25.00 booked in November (its own period). A later
# payment of 500.00 (Dec 5) earns 25.00 in December.
case(
    "uncredited-credited-later",
    [
        *setup(),
        customer("cust-2", tier="B"),
        order("o1", L1000, customer_id="cust-2", rep_id=None),
        pay("o1", 500, "2026-11-15T10:00:00Z"),
        customer("cust-2", owner="rep-2", tier="B", at="2026-12-01T00:00:00Z"),
        pay("o1", 500, "2026-12-05T10:00:00Z"),
    ],
    [
        ("C", "rep-2", "o1", "25.00", "2026-11", "2026-11"),
        ("C", "rep-2", "o1", "25.00", "2026-12", "2026-12"),
    ],
    {("rep-2", "2026-11"): "25.00", ("rep-2", "2026-12"): "25.00"},
)

# An order of a customer the CRM does not know at all, no rep: uncredited; the customer's
# first CRM record (with an owner) credits it: booking, +50.00 in November.
case(
    "unknown-customer-credited-later",
    [
        *setup(BOOKING),
        order("o1", L1000, customer_id="cust-new", rep_id=None),
        customer("cust-new", owner="rep-1", at="2026-12-01T00:00:00Z"),
    ],
    [("C", "rep-1", "o1", "50.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "50.00"},
)

# ------------------------------------------------------------------------ rules (3)

# sku and category: hardware 2 x 500 at 10% = 100.00; the SETUP line a fixed 25.00;
# the rest 1% of 1000 = 10.00. C = 135.00 (booking).
case(
    "condition-sku-category-fixed",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "hw",
                        "when": {"category": "hardware"},
                        "base": "revenue",
                        "rate": "0.10",
                    },
                    {"id": "setup", "when": {"sku": "SETUP"}, "base": "revenue", "fixed": "25.00"},
                    {"id": "rest", "base": "revenue", "rate": "0.01"},
                ],
            )
        ),
        order(
            "o1",
            [
                line("l1", 2, 500, category="hardware"),
                line("l2", 1, 300, sku="SETUP", category="services"),
                line("l3", 1, 1000),
            ],
        ),
    ],
    [("C", "rep-1", "o1", "135.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "135.00"},
)

# discount condition and modifiers that multiply: l1 30% off: revenue 700, rule deep 1%
# = 7.00, x tier-A 1.10 = 7.70; l2 20% off: 800 x 5% = 40 x 0.80 (discounted) x 1.10
# = 35.20; l3 no discount: 1000 x 5% x 1.10 = 55.00. C = 97.90.
case(
    "discount-and-modifiers",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "deep",
                        "when": {"discount": {"gte": "0.30"}},
                        "base": "revenue",
                        "rate": "0.01",
                    },
                    {"id": "std", "base": "revenue", "rate": "0.05"},
                ],
                modifiers=[
                    {
                        "id": "discounted",
                        "when": {"discount": {"gt": "0.15", "lt": "0.30"}},
                        "multiplier": "0.80",
                    },
                    {"id": "tier-a", "when": {"customer_tier": "A"}, "multiplier": "1.10"},
                ],
            )
        ),
        order(
            "o1",
            [
                line("l1", 10, 100, discount="0.30"),
                line("l2", 10, 100, discount="0.20"),
                line("l3", 10, 100),
            ],
        ),
    ],
    [("C", "rep-1", "o1", "97.90", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "97.90"},
)

# Customer region, industry (list: one of) and tenure: cust-1 (EMEA, retail, since
# 2026-01-01) has tenure 313 days on 2026-11-10 (< 365): rule young pays 10% = 100.00.
# cust-3 (since 2025-01-01, 678 days) falls to 5% = 50.00.
case(
    "condition-customer-region-industry-tenure",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "young",
                        "when": {
                            "customer_region": "EMEA",
                            "customer_industry": ["retail", "finance"],
                            "customer_tenure_days": {"lt": 365},
                        },
                        "base": "revenue",
                        "rate": "0.10",
                    },
                    {"id": "std", "base": "revenue", "rate": "0.05"},
                ],
            ),
            crm=False,
        ),
        rep("rep-1", "team-a", "EMEA"),
        customer("cust-1", tier="A", region="EMEA", industry="retail", since="2026-01-01"),
        customer("cust-3", tier="A", region="EMEA", industry="finance", since="2025-01-01"),
        order("o1", L1000),
        order("o2", L1000, customer_id="cust-3"),
    ],
    [
        ("C", "rep-1", "o1", "100.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o2", "50.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "150.00"},
)

# customer_orders_365d, cancelled excluded. Modifier loyal (x1.5) when >= 2 earlier
# orders in the 365 days before placed_at. o0 (2025-11-01) is before the plan's
# effective_from: no plan, earns nothing, but counts. o1 2026-01-10: 1 earlier (o0)
# -> 50.00. o2 2026-06-10: o0, o1 -> 75.00. o3 2026-09-10: o0, o1, o2 -> 75.00, then
# cancelled (-75.00). o4 2026-11-10: window from 2025-11-10 excludes o0; o1, o2 count,
# o3 is cancelled -> 2 -> 75.00.
case(
    "condition-orders-365d",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                modifiers=[
                    {
                        "id": "loyal",
                        "when": {"customer_orders_365d": {"gte": 2}},
                        "multiplier": "1.5",
                    }
                ],
            )
        ),
        order("o0", L1000, "2025-11-01T10:00:00Z"),
        order("o1", L1000, "2026-01-10T10:00:00Z"),
        order("o2", L1000, "2026-06-10T10:00:00Z"),
        order("o3", L1000, "2026-09-10T10:00:00Z"),
        cancel("o3", "2026-09-20T10:00:00Z"),
        order("o4", L1000, "2026-11-10T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-01", "2026-01"),
        ("C", "rep-1", "o2", "75.00", "2026-06", "2026-06"),
        ("C", "rep-1", "o3", "75.00", "2026-09", "2026-09"),
        ("C", "rep-1", "o3", "-75.00", "2026-09", "2026-09"),
        ("C", "rep-1", "o4", "75.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-01"): "50.00", ("rep-1", "2026-06"): "75.00", ("rep-1", "2026-11"): "75.00"},
)

# rep_team / rep_region, split credits: rep-1 (team-a, EMEA) matches rule a: 10% x 0.5
# = 50.00; rep-2 (team-b, EMEA) matches emea: 7% x 0.3 = 21.00; rep-x (not in the CRM:
# team and region unknown, conditions on them do not hold) gets 5% x 0.2 = 10.00.
case(
    "condition-rep-team-region-shares",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {"id": "a", "when": {"rep_team": "team-a"}, "base": "revenue", "rate": "0.10"},
                    {
                        "id": "emea",
                        "when": {"rep_region": {"eq": "EMEA"}},
                        "base": "revenue",
                        "rate": "0.07",
                    },
                    {"id": "std", "base": "revenue", "rate": "0.05"},
                ],
            )
        ),
        order(
            "o1", L1000, rep_id=None, credits=[("rep-1", "0.5"), ("rep-2", "0.3"), ("rep-x", "0.2")]
        ),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-2", "o1", "21.00", "2026-11", "2026-11"),
        ("C", "rep-x", "o1", "10.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "50.00", ("rep-2", "2026-11"): "21.00", ("rep-x", "2026-11"): "10.00"},
)

# order_total on the bound: big (8%) needs T >= 1000. o1 T = 999.99 -> 5% = 49.9995
# -> 50.00 (half up); o2 T = 1000.00 exactly -> 8% = 80.00.
case(
    "condition-order-total-bound",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "big",
                        "when": {"order_total": {"gte": "1000"}},
                        "base": "revenue",
                        "rate": "0.08",
                    },
                    {"id": "small", "base": "revenue", "rate": "0.05"},
                ],
            )
        ),
        order("o1", [line("l1", 1, "999.99")]),
        order("o2", L1000),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o2", "80.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "130.00"},
)

# not_in / in / ne: l1 sku A in [A, B] and category ne services -> r1 3% of 1000 = 30;
# l2 sku C not_in [A, B] -> r2 2% of 1000 = 20. Unknown tier: ne does not hold (cust-u has
# no tier), so the same lines for cust-u fall to r3 1%: 10 + 10 = 20.
case(
    "condition-operators-and-unknown-facts",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "r1",
                        "when": {
                            "sku": {"in": ["A", "B"]},
                            "category": {"ne": "services"},
                            "customer_tier": {"ne": "Z"},
                        },
                        "base": "revenue",
                        "rate": "0.03",
                    },
                    {
                        "id": "r2",
                        "when": {"sku": {"not_in": ["A", "B"]}, "customer_tier": {"ne": "Z"}},
                        "base": "revenue",
                        "rate": "0.02",
                    },
                    {"id": "r3", "base": "revenue", "rate": "0.01"},
                ],
            )
        ),
        customer("cust-u", owner="rep-1"),
        order("o1", [line("l1", 1, 1000, sku="A"), line("l2", 1, 1000, sku="C")]),
        order(
            "o2", [line("l1", 1, 1000, sku="A"), line("l2", 1, 1000, sku="C")], customer_id="cust-u"
        ),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o2", "20.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "70.00"},
)

# No rule matched: only hardware pays (10%). The goods line earns 0 (trace: "no rule
# matched"); the hardware line 100 x 10% = 10.00.
case(
    "no-rule-matched",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "hw",
                        "when": {"category": "hardware"},
                        "base": "revenue",
                        "rate": "0.10",
                    }
                ],
            )
        ),
        order("o1", [line("l1", 1, 500), line("l2", 1, 100, category="hardware")]),
    ],
    [("C", "rep-1", "o1", "10.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "10.00"},
)

# Margin floored at 0: l1 10 x (100 - 60) = 400 x 20% = 80.00; l2 costs more than its
# price: margin max(0, 1000 - 1200) = 0. C = 80.00.
case(
    "margin-floor",
    [
        *setup(plan_doc(earn_on="booking", rules=[{"id": "m", "base": "margin", "rate": "0.20"}])),
        order("o1", [line("l1", 10, 100, cost=60), line("l2", 10, 100, cost=120)]),
    ],
    [("C", "rep-1", "o1", "80.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "80.00"},
)

# Quantity base: 2.50 per unit; 12 units (at any price) -> 30.00.
case(
    "quantity-base",
    [
        *setup(
            plan_doc(earn_on="booking", rules=[{"id": "u", "base": "quantity", "rate": "2.50"}])
        ),
        order("o1", [line("l1", 12, "99.99")]),
    ],
    [("C", "rep-1", "o1", "30.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "30.00"},
)

# Whole table on the line base, bands [0, 1000) 3%, [1000, inf) 5%: a line of exactly
# 1000 is in the upper band (lower bound inclusive): 50.00; a line of 999 pays 3%:
# 29.97. C = 79.97.
_bands = [{"from": "0", "to": "1000", "rate": "0.03"}, {"from": "1000", "rate": "0.05"}]
case(
    "table-whole-line-base",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "t",
                        "base": "revenue",
                        "table": {"scope": "line_base", "method": "whole", "bands": _bands},
                    }
                ],
            )
        ),
        order("o1", [line("l1", 1, 1000), line("l2", 1, 999)]),
    ],
    [("C", "rep-1", "o1", "79.97", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "79.97"},
)

# Marginal table on the line base, same bands: a 1500 line pays 1000 x 3% + 500 x 5%
# = 30 + 25 = 55.00.
case(
    "table-marginal-line-base",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "t",
                        "base": "revenue",
                        "table": {"scope": "line_base", "method": "marginal", "bands": _bands},
                    }
                ],
            )
        ),
        order("o1", [line("l1", 1, 1500)]),
    ],
    [("C", "rep-1", "o1", "55.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "55.00"},
)

# Order-total scope, marginal: the software lines (20000 + 10000 = 30000) are summed:
# 20000 x 4% + 10000 x 5% = 1300, shared by base (866.67 and 433.33); the hardware line
# 5000 x 1% = 50. C = 1350.00.
_sw = [
    {"from": "0", "to": "20000", "rate": "0.04"},
    {"from": "20000", "to": "100000", "rate": "0.05"},
    {"from": "100000", "rate": "0.06"},
]
_sw_lines = [
    line("l1", 1, 20000, category="software"),
    line("l2", 2, 5000, category="software"),
    line("l3", 1, 5000, category="hardware"),
]
case(
    "table-order-total-marginal-shared",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "sw",
                        "when": {"category": "software"},
                        "base": "revenue",
                        "table": {"scope": "order_total", "method": "marginal", "bands": _sw},
                    },
                    {"id": "rest", "base": "revenue", "rate": "0.01"},
                ],
            )
        ),
        order("o1", _sw_lines),
    ],
    [("C", "rep-1", "o1", "1350.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "1350.00"},
)

# Order-total scope, whole: the software sum 30000 falls in [20000, 100000): all of it
# at 5% = 1500; plus hardware 50. C = 1550.00.
case(
    "table-order-total-whole",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "sw",
                        "when": {"category": "software"},
                        "base": "revenue",
                        "table": {"scope": "order_total", "method": "whole", "bands": _sw},
                    },
                    {"id": "rest", "base": "revenue", "rate": "0.01"},
                ],
            )
        ),
        order("o1", _sw_lines),
    ],
    [("C", "rep-1", "o1", "1550.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "1550.00"},
)

# Quantity scope, whole, per-unit rates [0, 10) 5.00, [10, inf) 8.00: 4 units -> 20.00,
# exactly 10 units -> 80.00 (upper band), 12 units -> 96.00. C = 196.00.
case(
    "table-quantity-whole",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                rules=[
                    {
                        "id": "units",
                        "base": "quantity",
                        "table": {
                            "scope": "quantity",
                            "method": "whole",
                            "bands": [
                                {"from": "0", "to": "10", "rate": "5.00"},
                                {"from": "10", "rate": "8.00"},
                            ],
                        },
                    }
                ],
            )
        ),
        order("o1", [line("l1", 4, 90), line("l2", 10, 90), line("l3", 12, 90)]),
    ],
    [("C", "rep-1", "o1", "196.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "196.00"},
)

# Per-order cap 40: C = min(50, 40) = 40.00.
case(
    "cap-per-order",
    [*setup(plan_doc(earn_on="booking", caps={"per_order": "40"})), order("o1", L1000)],
    [("C", "rep-1", "o1", "40.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "40.00"},
)

# Per-order cap with payment: C = 40 (capped); half paid -> 20.00.
case(
    "cap-per-order-earned-pro-rata",
    [*setup(plan_doc(caps={"per_order": "40"})), order("o1", L1000), pay("o1", 500)],
    [("C", "rep-1", "o1", "20.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "20.00"},
)

# --------------------------------------------------------------- periods and time zones

# Asia/Shanghai periods: o1 at 2026-10-31 23:30 UTC is Nov 1 07:30 in Shanghai:
# booked 2026-11. o2 at 15:59 UTC is 23:59 Oct 31 in Shanghai: 2026-10.
case(
    "timezone-period-boundary",
    [
        *setup(plan_doc(earn_on="booking", timezone="Asia/Shanghai")),
        order("o1", L1000, "2026-10-31T23:30:00Z"),
        order("o2", L1000, "2026-10-31T15:59:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o2", "50.00", "2026-10", "2026-10"),
    ],
    {("rep-1", "2026-10"): "50.00", ("rep-1", "2026-11"): "50.00"},
)

# Quarters: payments of 500 on Dec 31 23:00 UTC (2026-Q4) and Jan 2 (2027-Q1).
case(
    "quarter-periods",
    [
        *setup(plan_doc(period="quarter")),
        order("o1", L1000),
        pay("o1", 500, "2026-12-31T23:00:00Z"),
        pay("o1", 500, "2027-01-02T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "25.00", "2026-Q4", "2026-Q4"),
        ("C", "rep-1", "o1", "25.00", "2027-Q1", "2027-Q1"),
    ],
    {("rep-1", "2026-Q4"): "25.00", ("rep-1", "2027-Q1"): "25.00"},
)

# Closed period: booked +50.00 in October, October closed, then a refund dated Oct 28
# arrives: its -50.00 is booked in the first open period (2026-11), origin 2026-10.
case(
    "closed-period-prior-period-adjustment",
    [
        *setup(BOOKING),
        order("o1", L1000, "2026-10-20T10:00:00Z"),
        close("2026-10"),
        refund("o1", 1000, "2026-10-28T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-10", "2026-10"),
        ("C", "rep-1", "o1", "-50.00", "2026-11", "2026-10"),
    ],
    {("rep-1", "2026-10"): "50.00", ("rep-1", "2026-11"): "-50.00"},
)

# Several closed periods in a row: Oct and Nov closed, the late Oct payment lands in Dec.
case(
    "closed-periods-skip-to-first-open",
    [
        *setup(),
        order("o1", L1000, "2026-10-20T10:00:00Z"),
        close("2026-10"),
        close("2026-11"),
        pay("o1", 1000, "2026-10-28T10:00:00Z"),
    ],
    [("C", "rep-1", "o1", "50.00", "2026-12", "2026-10")],
    {("rep-1", "2026-12"): "50.00"},
)

# ------------------------------------------------------------------ plan selection (3)

# Specificity: everyone 5%, region EMEA 6%, team-a 7%, rep-1 10%. rep-1 (team-a, EMEA)
# -> 10% = 100; rep-2 (team-b, EMEA) -> region 6% = 60; rep-9 (team-a, APAC) -> team
# 7% = 70; rep-z (unknown) -> everyone 5% = 50.
case(
    "plan-specificity",
    [
        *setup(
            plan_doc(earn_on="booking"),
            plan_doc(
                plan_id="emea",
                earn_on="booking",
                applies_to={"regions": ["EMEA"]},
                rules=[{"id": "r", "base": "revenue", "rate": "0.06"}],
            ),
            plan_doc(
                plan_id="team-a",
                earn_on="booking",
                applies_to={"teams": ["team-a"]},
                rules=[{"id": "r", "base": "revenue", "rate": "0.07"}],
            ),
            plan_doc(
                plan_id="rep-1",
                earn_on="booking",
                applies_to={"reps": ["rep-1"]},
                rules=[{"id": "r", "base": "revenue", "rate": "0.10"}],
            ),
        ),
        order("o1", L1000),
        order("o2", L1000, rep_id="rep-2"),
        order("o3", L1000, rep_id="rep-9"),
        order("o4", L1000, rep_id="rep-z"),
    ],
    [
        ("C", "rep-1", "o1", "100.00", "2026-11", "2026-11"),
        ("C", "rep-2", "o2", "60.00", "2026-11", "2026-11"),
        ("C", "rep-9", "o3", "70.00", "2026-11", "2026-11"),
        ("C", "rep-z", "o4", "50.00", "2026-11", "2026-11"),
    ],
    {
        ("rep-1", "2026-11"): "100.00",
        ("rep-2", "2026-11"): "60.00",
        ("rep-9", "2026-11"): "70.00",
        ("rep-z", "2026-11"): "50.00",
    },
)

# Two plans equally specific (both everyone): the second is refused (plan.conflict);
# orders keep the first (5%).
case(
    "plan-conflict-refused",
    [
        *setup(
            BOOKING,
            plan_doc(
                plan_id="other",
                earn_on="booking",
                rules=[{"id": "r", "base": "revenue", "rate": "0.50"}],
            ),
        ),
        order("o1", L1000),
    ],
    [("C", "rep-1", "o1", "50.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "50.00"},
    dead=["plan.conflict"],
)

# effective_from against the calendar date of placed_at as written: v2 (8%) from
# 2026-11-15, published in advance. o1 placed 2026-11-14T23:00-05:00 (Nov 15 in UTC) is
# dated Nov 14 as written -> v1 5% = 50; o2 placed 2026-11-15T01:00+08:00 (Nov 14 in UTC)
# is dated Nov 15 -> v2 8% = 80.
case(
    "effective-from-date-as-written",
    [
        *setup(
            BOOKING,
            plan_doc(
                version=2,
                effective_from="2026-11-15",
                earn_on="booking",
                rules=[{"id": "r", "base": "revenue", "rate": "0.08"}],
            ),
        ),
        order("o1", L1000, "2026-11-14T23:00:00-05:00"),
        order("o2", L1000, "2026-11-15T01:00:00+08:00"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o2", "80.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "130.00"},
)

# ------------------------------------------------------- retroactive versions (6)

# v2 (8%) published Dec 3 with effective_from Nov 1: o1 (placed Nov 10, fully paid in
# Nov: 50.00) is recomputed: E = 80.00, an adjustment of +30.00 booked in December with
# origin November. o0 (placed Oct 20, before Nov 1) stays on v1: no adjustment.
case(
    "plan-change-effective-in-past",
    [
        *setup(),
        order("o0", L1000, "2026-10-20T10:00:00Z"),
        pay("o0", 1000),
        order("o1", L1000),
        pay("o1", 1000),
        publish(
            plan_doc(
                version=2,
                effective_from="2026-11-01",
                rules=[{"id": "r", "base": "revenue", "rate": "0.08"}],
            ),
            at="2026-12-03T09:00:00Z",
        ),
    ],
    [
        ("C", "rep-1", "o0", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("A", "rep-1", "o1", "30.00", "2026-12", "2026-11"),
    ],
    {("rep-1", "2026-11"): "100.00", ("rep-1", "2026-12"): "30.00"},
)

# A retroactive version that changes earn_on from booking to payment: o1 had earned
# 50.00 at booking, unpaid; under v2 E = 0: adjustment -50.00 in December. The payment
# on Dec 10 then earns +50.00 under v2.
case(
    "plan-change-earn-on",
    [
        *setup(BOOKING),
        order("o1", L1000),
        publish(plan_doc(version=2, effective_from="2026-11-01"), at="2026-12-03T09:00:00Z"),
        pay("o1", 1000, "2026-12-10T10:00:00Z"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("A", "rep-1", "o1", "-50.00", "2026-12", "2026-11"),
        ("C", "rep-1", "o1", "50.00", "2026-12", "2026-12"),
    ],
    {("rep-1", "2026-11"): "50.00"},
)

# A more specific plan published later for rep-1 with effective_from in the past takes
# over o1 (10%): half paid, E goes from 25.00 to 50.00: +25.00 adjustment in December.
case(
    "new-specific-plan-retroactive",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 500),
        publish(
            plan_doc(
                plan_id="rep-1",
                applies_to={"reps": ["rep-1"]},
                rules=[{"id": "r", "base": "revenue", "rate": "0.10"}],
            ),
            at="2026-12-03T09:00:00Z",
        ),
    ],
    [
        ("C", "rep-1", "o1", "25.00", "2026-11", "2026-11"),
        ("A", "rep-1", "o1", "25.00", "2026-12", "2026-11"),
    ],
    {("rep-1", "2026-11"): "25.00", ("rep-1", "2026-12"): "25.00"},
)

# ----------------------------------------------------------------- tiers and caps (5)

_retro = {
    "quota": "1000",
    "method": "retroactive",
    "bands": [{"from": "0", "to": "1", "multiplier": "1.0"}, {"from": "1", "multiplier": "1.5"}],
}

# A rep crosses a tier band and falls back after a refund (retroactive, quota 1000).
# Placement: K = 50.00, revenue base 1000 -> a = 1.0 exactly, in [1, inf): total
# 50 x 1.5 = 75, accelerator +25.00. Refund 200: E = 40 (-10.00), base 800 -> a = 0.8,
# m = 1.0: total 40, accelerator 0: -25.00. November: 50 + 25 - 10 - 25 = 40.00.
case(
    "tier-cross-and-fall-back",
    [*setup(plan_doc(earn_on="booking", tiers=_retro)), order("o1", L1000), refund("o1", 200)],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("X", "rep-1", None, "25.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o1", "-10.00", "2026-11", "2026-11"),
        ("X", "rep-1", None, "-25.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "40.00"},
)

# Marginal tiers (the rich plan's example): quota 1000, attainment 1.6, bands 0.8 / 1.0
# / 1.5 / 2.0 at 0, 0.5, 1, 1.5: factor (0.5x0.8 + 0.5x1.0 + 0.5x1.5 + 0.1x2.0) / 1.6
# = 1.85 / 1.6 = 1.15625. An order of 1600 at 5%: K = 80.00, total 92.50: +12.50.
case(
    "tier-marginal",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                tiers={
                    "quota": "1000",
                    "method": "marginal",
                    "bands": [
                        {"from": "0", "to": "0.5", "multiplier": "0.8"},
                        {"from": "0.5", "to": "1.0", "multiplier": "1.0"},
                        {"from": "1.0", "to": "1.5", "multiplier": "1.5"},
                        {"from": "1.5", "multiplier": "2.0"},
                    ],
                },
            )
        ),
        order("o1", [line("l1", 16, 100)]),
    ],
    [
        ("C", "rep-1", "o1", "80.00", "2026-11", "2026-11"),
        ("X", "rep-1", None, "12.50", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "92.50"},
)

# Marginal tiers below the first band's end: a = 0.3, all in [0, 0.5) at 0.8: an order
# of 300 at 5%: K = 15.00, total 12.00: accelerator -3.00 (a negative accelerator).
case(
    "tier-marginal-below-quota",
    [
        *setup(
            plan_doc(
                earn_on="booking",
                tiers={
                    "quota": "1000",
                    "method": "marginal",
                    "bands": [
                        {"from": "0", "to": "0.5", "multiplier": "0.8"},
                        {"from": "0.5", "multiplier": "1.0"},
                    ],
                },
            )
        ),
        order("o1", [line("l1", 3, 100)]),
    ],
    [
        ("C", "rep-1", "o1", "15.00", "2026-11", "2026-11"),
        ("X", "rep-1", None, "-3.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "12.00"},
)

# Quota override: rep-1's quota is 2000, so 1000 of revenue is a = 0.5: m = 1.0, no
# accelerator; rep-2 (plan quota 1000) reaches a = 1.0: +25.00.
case(
    "tier-quota-override",
    [
        *setup(plan_doc(earn_on="booking", tiers={**_retro, "quota_overrides": {"rep-1": "2000"}})),
        order("o1", L1000),
        order("o2", L1000, rep_id="rep-2"),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-2", "o2", "50.00", "2026-11", "2026-11"),
        ("X", "rep-2", None, "25.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "50.00", ("rep-2", "2026-11"): "75.00"},
)

# Per-period cap 70: o1 K = 50 (total 50, under the cap: nothing); o2 K = 80 -> total
# capped at 70: accelerator -10.00. November: 50 + 30 - 10 = 70.00.
case(
    "cap-per-period",
    [
        *setup(plan_doc(earn_on="booking", caps={"per_period": "70"})),
        order("o1", L1000),
        order("o2", [line("l1", 6, 100)]),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-11", "2026-11"),
        ("C", "rep-1", "o2", "30.00", "2026-11", "2026-11"),
        ("X", "rep-1", None, "-10.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "70.00"},
)

# Tiers then the period cap: retroactive 1.5x on K = 100 (a = 2.0) = 150, capped at 120:
# accelerator +20.00.
case(
    "tiers-then-period-cap",
    [
        *setup(plan_doc(earn_on="booking", tiers=_retro, caps={"per_period": "120"})),
        order("o1", [line("l1", 20, 100)]),
    ],
    [
        ("C", "rep-1", "o1", "100.00", "2026-11", "2026-11"),
        ("X", "rep-1", None, "20.00", "2026-11", "2026-11"),
    ],
    {("rep-1", "2026-11"): "120.00"},
)

# A tier change for a closed period: October K = 50, a = 1.0: +25.00 in October; October
# closes; v2 of the plan (same rules, the top band now 2.0x, same effective_from) is
# published on Nov 5: October's accelerator becomes 50 x 2 - 50 = 50: +25.00, booked in
# November (October is closed), origin October. The order itself is unchanged (same C).
case(
    "tier-change-for-closed-period",
    [
        *setup(plan_doc(earn_on="booking", tiers=_retro)),
        order("o1", L1000, "2026-10-20T10:00:00Z"),
        close("2026-10", at="2026-11-01T00:00:00Z"),
        publish(
            plan_doc(
                version=2,
                earn_on="booking",
                tiers={
                    **_retro,
                    "bands": [
                        {"from": "0", "to": "1", "multiplier": "1.0"},
                        {"from": "1", "multiplier": "2.0"},
                    ],
                },
            ),
            at="2026-11-05T00:00:00Z",
        ),
    ],
    [
        ("C", "rep-1", "o1", "50.00", "2026-10", "2026-10"),
        ("X", "rep-1", None, "25.00", "2026-10", "2026-10"),
        ("X", "rep-1", None, "25.00", "2026-11", "2026-10"),
    ],
    {("rep-1", "2026-10"): "75.00", ("rep-1", "2026-11"): "25.00"},
)

# --------------------------------------------------------------- dead letters (1)

_bad_order = order("bad", L1000)
case(
    "invalid-events-dead-letters",
    [
        *setup(),
        order("n1", [line("l1", -1, 100)]),
        order("n2", L1000, rep_id=None, credits=[("rep-1", "0.5"), ("rep-2", "0.4")]),
        order("n3", L1000, currency="XXY"),
        order("n4", [line("l1", 1, "NaN")]),
        order("n5", [line("l1", 1, "1E+13")]),
        order("n6", []),
        order("n7", [line("l1", 1, 10), line("l1", 1, 20)]),
        pay("n8", -5),
        type(_bad_order)(
            **{
                **{f: getattr(_bad_order, f) for f in _bad_order.__dataclass_fields__},
                "placed_at": _bad_order.placed_at.replace(tzinfo=None),
            }
        ),
        close("2026-13"),
    ],
    [],
    {},
    dead=[
        "invalid.quantity_negative",
        "invalid.shares_sum",
        "invalid.currency_unknown",
        "invalid.amount_non_finite",
        "invalid.amount_too_large",
        "invalid.no_lines",
        "invalid.duplicate_line_id",
        "invalid.amount_negative",
        "invalid.naive_datetime",
        "invalid.period",
    ],
)

# The same payment_id published again under another event id is refused (never counted
# twice); an order id placed again by a different event too.
case(
    "conflicting-duplicates-dead-letters",
    [
        *setup(),
        order("o1", L1000),
        pay("o1", 500, event_id="p1", payment_id="bank-1"),
        pay("o1", 500, event_id="p2", payment_id="bank-1"),
        order("o1", L1000, event_id="placed-again"),
    ],
    [("C", "rep-1", "o1", "25.00", "2026-11", "2026-11")],
    {("rep-1", "2026-11"): "25.00"},
    dead=["conflict.duplicate_payment_id", "conflict.order_exists"],
)


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES])
def test_scenario(c: Case) -> None:
    engine, deltas, letters = run(c.events)
    assert [brief(d) for d in deltas] == c.deltas
    assert totals_of(engine) == c.totals
    assert [d.reason for d in letters] == c.dead
    # every delta is a difference of rounded cumulative amounts: per (order, rep), and per
    # (rep, period) for accelerators, the running sum of amounts is the cumulative
    running: dict[tuple[str, str, str], Decimal] = {}
    for d in deltas:
        key = (d.rep_id, d.order_id or "", "" if d.order_id else d.origin_period)
        running[key] = running.get(key, Decimal(0)) + d.amount
        assert running[key] == d.cumulative, d
        assert d.amount == d.amount.quantize(Decimal("0.01"))
    assert len({d.delta_id for d in deltas}) == len(deltas)


def test_there_are_at_least_forty_scenarios() -> None:
    assert len(CASES) >= 40
