"""Tiers (accelerators) and per-period caps: the formulas of SEMANTICS.md section 5.

Both depend only on a (rep, period) sum K of non-accelerator deltas and the earned
revenue base booked in the period, so the result does not depend on arrival order.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import NamedTuple

from .events import LineTrace
from .money import CENT, ONE, ZERO, ZERO_CENTS
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


_SETUP = ("accelerator",)  # plan.memo key prefix of the per-(rep, period) setup


def _setup(
    plan: PlanVersion, rep_id: str, period: str
) -> tuple[Tiers | None, Decimal, str, str, Decimal | None, str] | None:
    """What the accelerator of (rep, period) reads from ``plan``, worked out once per
    plan version: (tiers, quota, rule id, rate text, period cap, trace line id), or None
    when the plan gives no accelerator for the period."""
    key = (_SETUP, rep_id, period)
    memo = plan.memo
    if key in memo:
        hit: tuple[Tiers | None, Decimal, str, str, Decimal | None, str] | None = memo[key]
        return hit
    tiers = plan.tiers
    cap = plan.caps.per_period
    setup: tuple[Tiers | None, Decimal, str, str, Decimal | None, str] | None
    if (tiers is None and cap is None) or plan.period != period_kind(period):
        setup = None
    elif tiers is not None:
        quota = tiers.quota_for(rep_id)
        setup = (
            tiers,
            quota,
            f"tiers.{tiers.method}",
            _rate_text(tiers.method, quota),
            cap,
            f"period:{period}",
        )
    else:
        setup = (None, ZERO, "caps.per_period", "no tiers", cap, f"period:{period}")
    if len(memo) < 100_000:
        memo[key] = setup
    return setup


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
    setup = None if plan is None else _setup(plan, rep_id, period)
    if setup is None:
        return AcceleratorResult(ZERO_CENTS, commission, ZERO, ())
    tiers, quota, rule_id, rate, cap, line_id = setup
    if tiers is not None:
        total, attainment = tier_total(commission, revenue_base, quota, tiers)
    else:
        total, attainment = commission, ZERO
    note = ""
    if cap is not None and total > cap:
        note = f"period capped at {cap} by caps.per_period (before the cap {total})"
        total = cap
    rounded = total.quantize(CENT, ROUND_HALF_UP)
    trace = LineTrace(
        line_id,
        "",
        "",
        rule_id,
        "commission",
        commission,
        rate,
        (),
        ONE if commission == 0 else total / commission,
        rounded,
        note,
    )
    return AcceleratorResult(rounded - commission, total, attainment, (trace,))
