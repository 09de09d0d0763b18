"""Rule evaluation: the commission C of one (order, rep) under one plan version, explained
line by line (SEMANTICS.md section 3, section 8).

Per line: the first rule whose ``when`` holds gives an amount (a fraction of the base, a
fixed amount, or a rate table); every modifier whose ``when`` holds multiplies it; the
rep's credit share multiplies it. C is the sum over lines, then limited by
``caps.per_order``. Everything stays at full precision; rounding happens when earning.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .events import LineTrace, OrderLine, OrderPlaced
from .messages import CustomerSnapshot, RepFacts
from .money import ONE, ZERO, round_cents
from .plans import Band, Modifier, PlanVersion, RateTable, Rule, Test
from .records import record

__all__ = ["Commission", "compute_commission", "line_revenue", "line_revenues", "order_total"]

NO_RULE = "no rule matched"


@record
class Commission:
    """C for one (order, rep): ``amount`` after ``caps.per_order``; ``lines`` the trace of
    every line (amounts before the cap, share included)."""

    amount: Decimal
    lines: tuple[LineTrace, ...]


def line_revenue(line: OrderLine) -> Decimal:
    """quantity × unit_price × (1 − discount), full precision."""
    return line.quantity * line.unit_price * (ONE - line.discount)


_REVENUES: dict[int, tuple[OrderPlaced, tuple[Decimal, ...]]] = {}
_REVENUES_LIMIT = 10_000  # orders kept alive at most (~3 KB each): bounded in a worker


def line_revenues(order: OrderPlaced) -> tuple[Decimal, ...]:
    """Each line's revenue, full precision, in line order.

    Remembered per order object (a cache, never an answer: the entry keeps the order
    alive, so its id is not reused): the order stage reads them for T when the order is
    accepted and again for C when it first earns."""
    hit = _REVENUES.get(id(order))
    if hit is not None and hit[0] is order:
        return hit[1]
    revenues = tuple([ln.quantity * ln.unit_price * (ONE - ln.discount) for ln in order.lines])
    if len(_REVENUES) >= _REVENUES_LIMIT:
        _REVENUES.clear()
    _REVENUES[id(order)] = (order, revenues)
    return revenues


def order_total(order: OrderPlaced, revenues: tuple[Decimal, ...] | None = None) -> Decimal:
    """T: the sum of line revenue, rounded to 0.01 half up (what the customer is invoiced).
    ``revenues`` (from :func:`line_revenues`) saves recomputing them."""
    if revenues is None:
        revenues = line_revenues(order)
    return round_cents(sum(revenues, ZERO))


def _holds(tests: tuple[Test, ...], facts: Mapping[str, Any]) -> bool:
    for test in tests:
        value = facts[test.key]
        if value is None or not test.check(value):
            return False
    return True


_MEMO_LIMIT = 100_000


def _match_line(
    rules: list[Rule], mods: list[Modifier], line: OrderLine
) -> tuple[Rule | None, tuple[str, ...], Decimal]:
    """The first rule whose line tests hold, and the modifiers whose line tests hold (their
    ids and the product of their multipliers), among the order-eligible ones."""
    facts = {"sku": line.sku, "category": line.category, "discount": line.discount}
    rule = None
    for candidate in rules:
        if not candidate.line_tests or _holds(candidate.line_tests, facts):
            rule = candidate
            break
    if rule is None:
        return None, (), ONE
    ids: list[str] = []
    mult = ONE
    for mod in mods:
        if not mod.line_tests or _holds(mod.line_tests, facts):
            ids.append(mod.id)
            mult *= mod.multiplier
    return rule, tuple(ids), mult


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
    revenues: tuple[Decimal, ...] | None = None,
) -> Commission:
    """C for ``rep`` (credit ``share``) on ``order`` (total ``total``) under ``plan``;
    ``revenues`` are the lines' revenues when already known (:func:`line_revenues`).

    Pure and deterministic: the same inputs always give the same amounts and trace."""
    if revenues is None:
        revenues = line_revenues(order)
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
    rule_mask = 0
    rules: list[Rule] = []
    for i, r in enumerate(plan.rules):
        if not r.order_tests or _holds(r.order_tests, ctx):
            rules.append(r)
            rule_mask |= 1 << i
    mod_mask = 0
    mods: list[Modifier] = []
    for i, m in enumerate(plan.modifiers):
        if not m.order_tests or _holds(m.order_tests, ctx):
            mods.append(m)
            mod_mask |= 1 << i

    memo = plan.memo
    traces: list[LineTrace | None] = []
    deferred: list[tuple[int, OrderLine, Rule, Decimal, tuple[str, ...], Decimal]] = []
    groups: dict[str, Decimal] = {}
    uncapped = ZERO
    for i, line in enumerate(order.lines):
        revenue = revenues[i]
        key = (rule_mask, mod_mask, line.sku, line.category, line.discount)
        hit = memo.get(key)
        if hit is None:
            hit = _match_line(rules, mods, line)
            if len(memo) < _MEMO_LIMIT:
                memo[key] = hit
        rule, ids, mult = hit
        if rule is None:
            traces.append(
                LineTrace(
                    line.line_id,
                    line.sku,
                    line.category,
                    None,
                    "revenue",
                    revenue,
                    "0",
                    (),
                    ONE,
                    ZERO,
                    NO_RULE,
                )
            )
            continue
        kind = rule.base
        if kind == "revenue":
            base = revenue
        elif kind == "margin":
            base = revenue - line.quantity * line.unit_cost
            if base < 0:
                base = ZERO
        else:
            base = line.quantity
        table = rule.table
        if rule.rate is not None:
            amount = base * rule.rate
            rate_text = rule.rate_text
        elif table is None:
            amount = rule.fixed  # type: ignore[assignment]
            rate_text = rule.rate_text
        elif table.scope == "order_total":
            groups[rule.id] = groups.get(rule.id, ZERO) + base
            deferred.append((i, line, rule, base, ids, mult))
            traces.append(None)
            continue
        elif table.scope == "quantity":
            amount, rate_text = _table_amount(line.quantity, base, table)
        else:
            amount, rate_text = _table_amount(base, base, table)
        amount = amount * mult * share
        uncapped += amount
        traces.append(
            LineTrace(
                line.line_id,
                line.sku,
                line.category,
                rule.id,
                kind,
                base,
                rate_text,
                ids,
                mult,
                amount,
                "",
            )
        )

    if deferred:
        group_amounts: dict[str, tuple[Decimal, str]] = {}
        for rule_id, summed in groups.items():
            table = next(r.table for r in rules if r.id == rule_id)
            assert table is not None
            group_amounts[rule_id] = _table_amount(summed, summed, table)
        for i, line, rule, base, ids, mult in deferred:
            summed = groups[rule.id]
            group_amount, text = group_amounts[rule.id]
            amount = ZERO if summed == 0 else group_amount * base / summed
            amount = amount * mult * share
            uncapped += amount
            traces[i] = LineTrace(
                line.line_id,
                line.sku,
                line.category,
                rule.id,
                rule.base,
                base,
                f"{text}, this line's part {base}/{summed}",
                ids,
                mult,
                amount,
                "",
            )
    done: list[LineTrace] = [t for t in traces if t is not None]

    cap = plan.caps.per_order
    if cap is not None and uncapped > cap:
        note = f"order capped at {cap} by caps.per_order (uncapped {uncapped})"
        done = [
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
            for t in done
        ]
        return Commission(cap, tuple(done))
    return Commission(uncapped, tuple(done))
