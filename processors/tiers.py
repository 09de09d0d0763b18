"""Tiers (accelerators) and per-period caps: the formulas of SEMANTICS.md section 5.

Both depend only on a (rep, period) sum K of non-accelerator deltas and the earned
revenue base booked in the period, so the result does not depend on arrival order.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from .events import LineTrace
from .money import ONE, ZERO, ZERO_CENTS, round_cents
from .periods import period_kind
from .plans import PlanVersion, Tiers

__all__ = ["AcceleratorResult", "accelerator", "tier_total"]


class AcceleratorResult(NamedTuple):
    """The accelerator of one (rep, period): ``amount`` = round(total) − K."""

    amount: Decimal
    total: Decimal  # after tiers and caps.per_period, full precision
    attainment: Decimal
    trace: tuple[LineTrace, ...]


def tier_total(
    commission: Decimal, revenue_base: Decimal, quota: Decimal, tiers: Tiers
) -> tuple[Decimal, Decimal]:
    """(total, attainment) for a period sum K = ``commission`` and attainment
    a = ``revenue_base`` / ``quota``.

    - marginal: K × Σ over bands of m × |[0, a] ∩ [lo, hi)| / a;
    - retroactive: K × the m of the band containing a (lower bound inclusive);
    - a ≤ 0: K × the first band's m."""
    bands = tiers.bands
    attainment = revenue_base / quota
    if attainment <= 0:
        return commission * bands[0].multiplier, attainment
    if tiers.method == "retroactive":
        multiplier = bands[0].multiplier
        for band in bands:
            if attainment >= band.lo:
                multiplier = band.multiplier
        return commission * multiplier, attainment
    weighted = ZERO
    for band in bands:
        if attainment <= band.lo:
            break
        top = attainment if band.hi is None or attainment < band.hi else band.hi
        weighted += band.multiplier * (top - band.lo)
    return commission * weighted / attainment, attainment


@lru_cache(maxsize=1024)
def _rate_text(method: str, quota: Decimal) -> str:
    return f"{method} tiers, quota {quota}"


def accelerator(
    rep_id: str,
    period: str,
    commission: Decimal,
    revenue_base: Decimal,
    plan: PlanVersion | None,
) -> AcceleratorResult:
    """The accelerator amount of (rep, period) under ``plan`` (the rep's plan version in
    effect on the period's last day), from the period's sums.

    No plan, a plan whose period kind differs from ``period``'s, or a plan with neither
    tiers nor ``caps.per_period`` gives 0."""
    if (
        plan is None
        or (plan.tiers is None and plan.caps.per_period is None)
        or plan.period != period_kind(period)
    ):
        return AcceleratorResult(ZERO_CENTS, commission, ZERO, ())
    notes: list[str] = []
    if plan.tiers is not None:
        quota = plan.tiers.quota_for(rep_id)
        total, attainment = tier_total(commission, revenue_base, quota, plan.tiers)
        rule_id = f"tiers.{plan.tiers.method}"
        rate = _rate_text(plan.tiers.method, quota)
    else:
        total, attainment = commission, ZERO
        rule_id = "caps.per_period"
        rate = "no tiers"
    cap = plan.caps.per_period
    if cap is not None and total > cap:
        notes.append(f"period capped at {cap} by caps.per_period (before the cap {total})")
        total = cap
    rounded = round_cents(total)
    amount = rounded - commission
    multiplier = ONE if commission == 0 else total / commission
    trace = LineTrace(
        f"period:{period}",
        "",
        "",
        rule_id,
        "commission",
        commission,
        rate,
        (),
        multiplier,
        rounded,
        "; ".join(notes),
    )
    return AcceleratorResult(amount, total, attainment, (trace,))
