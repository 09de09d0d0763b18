"""Rule evaluation: the commission C of one (order, rep) under one plan version, explained
line by line (SEMANTICS.md section 3, section 8).

Per line: the first rule whose ``when`` holds gives an amount (a fraction of the base, a
fixed amount, or a rate table); every modifier whose ``when`` holds multiplies it; the
rep's credit share multiplies it. C is the sum over lines, then limited by
``caps.per_order``. Everything stays at full precision; rounding happens when earning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .events import LineTrace, OrderLine, OrderPlaced
from .messages import CustomerSnapshot, RepFacts
from .money import ONE, ZERO, round_cents
from .plans import Band, Modifier, PlanVersion, RateTable, Rule, Test

__all__ = ["Commission", "compute_commission", "line_revenue", "order_total"]

NO_RULE = "no rule matched"


@dataclass(frozen=True, slots=True)
class Commission:
    """C for one (order, rep): ``amount`` after ``caps.per_order``; ``lines`` the trace of
    every line (amounts before the cap, share included)."""

    amount: Decimal
    lines: tuple[LineTrace, ...]


def line_revenue(line: OrderLine) -> Decimal:
    """quantity × unit_price × (1 − discount), full precision."""
    return line.quantity * line.unit_price * (ONE - line.discount)


def order_total(order: OrderPlaced) -> Decimal:
    """T: the sum of line revenue, rounded to 0.01 half up (what the customer is invoiced)."""
    return round_cents(sum((line_revenue(line) for line in order.lines), ZERO))


def _holds(tests: tuple[Test, ...], facts: Mapping[str, Any]) -> bool:
    for test in tests:
        value = facts[test.key]
        if value is None or not test.check(value):
            return False
    return True


def _marginal(amount: Decimal, bands: tuple[Band, ...]) -> Decimal:
    """Σ over bands of |[0, amount] ∩ [lo, hi)| × rate (tax-bracket style)."""
    total = ZERO
    for band in bands:
        if amount <= band.lo:
            break
        top = amount if band.hi is None or amount < band.hi else band.hi
        total += (top - band.lo) * band.rate
    return total


def _band_of(amount: Decimal, bands: tuple[Band, ...]) -> Band:
    """The band containing ``amount`` (lower bound inclusive, upper exclusive)."""
    for band in reversed(bands):
        if amount >= band.lo:
            return band
    return bands[0]


def _fmt_band(band: Band) -> str:
    return f"[{band.lo}, {'∞' if band.hi is None else band.hi})"


def _table_amount(scope_amount: Decimal, base: Decimal, table: RateTable) -> tuple[Decimal, str]:
    """The amount a table gives ``base`` when its band is chosen by ``scope_amount``."""
    if table.method == "whole":
        band = _band_of(scope_amount, table.bands)
        text = f"{band.rate} (whole table on {table.scope} {scope_amount}, band {_fmt_band(band)})"
        return base * band.rate, text
    text = f"marginal table on {table.scope} {scope_amount}"
    if scope_amount == base:
        return _marginal(base, table.bands), text
    if scope_amount == 0:
        return ZERO, text
    # each part of the scope at its band's rate, applied to the base in proportion
    return _marginal(scope_amount, table.bands) * base / scope_amount, text


def compute_commission(
    order: OrderPlaced,
    total: Decimal,
    customer: CustomerSnapshot,
    rep: RepFacts,
    share: Decimal,
    plan: PlanVersion,
) -> Commission:
    """C for ``rep`` (credit ``share``) on ``order`` (total ``total``) under ``plan``.

    Pure and deterministic: the same inputs always give the same amounts and trace."""
    ctx: dict[str, Any] = {
        "customer_tier": customer.tier,
        "customer_region": customer.region,
        "customer_industry": customer.industry,
        "customer_tenure_days": customer.tenure_days,
        "customer_orders_365d": customer.orders_365d,
        "rep_team": rep.team_id,
        "rep_region": rep.region,
        "order_total": total,
    }
    rules: list[Rule] = [r for r in plan.rules if not r.order_tests or _holds(r.order_tests, ctx)]
    mods: list[Modifier] = [
        m for m in plan.modifiers if not m.order_tests or _holds(m.order_tests, ctx)
    ]

    n = len(order.lines)
    matched: list[Rule | None] = [None] * n
    bases: list[Decimal] = [ZERO] * n
    revenues: list[Decimal] = [ZERO] * n
    mod_ids: list[tuple[str, ...]] = [()] * n
    mults: list[Decimal] = [ONE] * n
    groups: dict[str, Decimal] = {}
    facts: dict[str, Any] = {}
    for i, line in enumerate(order.lines):
        facts["sku"] = line.sku
        facts["category"] = line.category
        facts["discount"] = line.discount
        revenue = line.quantity * line.unit_price * (ONE - line.discount)
        revenues[i] = revenue
        rule = None
        for candidate in rules:
            if not candidate.line_tests or _holds(candidate.line_tests, facts):
                rule = candidate
                break
        if rule is None:
            continue
        matched[i] = rule
        if rule.base == "revenue":
            base = revenue
        elif rule.base == "margin":
            base = revenue - line.quantity * line.unit_cost
            if base < 0:
                base = ZERO
        else:
            base = line.quantity
        bases[i] = base
        if rule.table is not None and rule.table.scope == "order_total":
            groups[rule.id] = groups.get(rule.id, ZERO) + base
        if mods:
            ids: list[str] = []
            mult = ONE
            for mod in mods:
                if not mod.line_tests or _holds(mod.line_tests, facts):
                    ids.append(mod.id)
                    mult *= mod.multiplier
            mod_ids[i] = tuple(ids)
            mults[i] = mult

    group_amounts: dict[str, tuple[Decimal, str]] = {}
    for rule in plan.rules:
        if rule.id in groups and rule.table is not None:
            summed = groups[rule.id]
            group_amounts[rule.id] = _table_amount(summed, summed, rule.table)

    traces: list[LineTrace] = []
    uncapped = ZERO
    for i, line in enumerate(order.lines):
        rule = matched[i]
        if rule is None:
            traces.append(
                LineTrace(
                    line.line_id,
                    line.sku,
                    line.category,
                    None,
                    "revenue",
                    revenues[i],
                    "0",
                    (),
                    ONE,
                    ZERO,
                    NO_RULE,
                )
            )
            continue
        base = bases[i]
        if rule.rate is not None:
            amount = base * rule.rate
            rate_text = f"{rule.rate} per unit" if rule.base == "quantity" else str(rule.rate)
        elif rule.fixed is not None:
            amount = rule.fixed
            rate_text = f"{rule.fixed} per line"
        else:
            table = rule.table
            assert table is not None
            if table.scope == "order_total":
                summed = groups[rule.id]
                group_amount, rate_text = group_amounts[rule.id]
                amount = ZERO if summed == 0 else group_amount * base / summed
                rate_text = f"{rate_text}, this line's part {base}/{summed}"
            elif table.scope == "quantity":
                amount, rate_text = _table_amount(line.quantity, base, table)
            else:
                amount, rate_text = _table_amount(base, base, table)
        amount = amount * mults[i] * share
        uncapped += amount
        traces.append(
            LineTrace(
                line.line_id,
                line.sku,
                line.category,
                rule.id,
                rule.base,
                base,
                rate_text,
                mod_ids[i],
                mults[i],
                amount,
                "",
            )
        )

    cap = plan.caps.per_order
    if cap is not None and uncapped > cap:
        note = f"order capped at {cap} by caps.per_order (uncapped {uncapped})"
        traces = [
            LineTrace(
                t.line_id,
                t.sku,
                t.category,
                t.rule_id,
                t.base_kind,
                t.base_amount,
                t.rate,
                t.modifiers,
                t.multiplier,
                t.amount,
                f"{t.note}; {note}" if t.note else note,
            )
            for t in traces
        ]
        return Commission(cap, tuple(traces))
    return Commission(uncapped, tuple(traces))
