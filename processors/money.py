"""Money arithmetic: ``Decimal`` everywhere, rounded half up to cents only where
SEMANTICS.md says so (the order total T, the earned amount E, the tier total)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)
ZERO_CENTS = Decimal("0.00")


def round_cents(value: Decimal) -> Decimal:
    """``value`` rounded to 0.01, half up (away from zero on an exact half)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
