"""Input validation: an event the engine cannot process becomes a :class:`DeadLetter`
with a machine-readable reason, never an exception and never silence (SEMANTICS.md
section 1).

Reasons (``invalid.*``):

========================== =========================================================
``unknown_type``           not one of the eight event types
``malformed``              a field of the wrong shape (e.g. a line that is not a line)
``missing_id``             an empty event_id, order_id, customer_id, rep_id, line_id...
``id_characters``          an id holding a control character (U+0000-U+001F, U+007F)
``naive_datetime``         a timestamp without a time zone
``amount_type``            a money, quantity, fraction or share that is not a Decimal
``amount_non_finite``      NaN or infinity
``amount_too_large``       more than 10^12 in absolute value
``amount_precision``       a figure finer than allowed (SEMANTICS.md section 2, "Precision"):
                           a line figure with more than 12 decimal places, a share with
                           more than 28, a payment or refund with more than 4 (no
                           currency's minor unit is finer) or, checked by the order stage
                           once the order is known (:func:`money_precision`), finer than
                           the minor unit of its order's currency
``amount_negative``        a negative payment or refund
``quantity_negative``      a line with quantity < 0
``price_negative``         a line with unit_price < 0
``cost_negative``          a line with unit_cost < 0
``discount_range``         a discount outside [0, 1]
``no_lines``               an order without lines
``duplicate_line_id``      two lines of one order with the same line_id
``currency_unknown``       a currency not in :data:`processors.currencies.ISO_4217`
``share_range``            a credit share outside (0, 1]
``shares_sum``             credit shares that do not sum to exactly 1
``duplicate_credit``       a rep credited twice on one order
``plan_definition``        a PlanPublished whose definition is not a valid plan
``period``                 a PeriodClosed whose period is not ``YYYY-MM`` or ``YYYY-Qn``
========================== =========================================================

A plan that is valid on its own but conflicts with the plan book (two plans equally
specific for one rep on one date) is refused by the engine with ``plan.conflict``.

Each refusal concerns the one event: the engine, ``comstream replay`` and the worker go on
with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

from .currencies import ISO_4217, MAX_MINOR_UNIT, minor_unit
from .errors import PlanError
from .events import (
    CustomerChanged,
    DeadLetter,
    Event,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    PaymentReceived,
    PeriodClosed,
    PlanPublished,
    RefundIssued,
    RepChanged,
)
from .money import ONE
from .periods import is_period
from .plans import plan_from_event

__all__ = [
    "MAX_AMOUNT",
    "MAX_MONEY_PLACES",
    "MAX_PLACES",
    "MAX_SHARE_PLACES",
    "money_precision",
    "validate_event",
]

MAX_AMOUNT = Decimal(10) ** 12
MAX_PLACES = 12
"""Decimal places an amount of an event may carry (line figures)."""
MAX_SHARE_PLACES = 28
"""Decimal places a credit share may carry (a third to 28 places)."""
MAX_MONEY_PLACES = MAX_MINOR_UNIT
"""Decimal places a payment or refund may carry whatever its order's currency."""
_MIN_AMOUNT = -MAX_AMOUNT
_ZERO = Decimal(0)
_ONE = Decimal(1)
_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)
_QUANTA = {n: Decimal(1).scaleb(-n) for n in range(MAX_SHARE_PLACES + 1)}
# wide enough for any figure validation accepts (13 integer digits, 28 places) and the
# exact sum of an order's shares, whatever the thread's decimal context
_EXACT = Context(prec=64)
# quantize to MAX_PLACES raising Inexact when digits other than zeros would go: cheaper
# than comparing the result (a line's four figures are checked on every order)
_FIT = Context(prec=28, traps=[InvalidOperation, Inexact]).quantize
_FIT_MONEY = Context(prec=64, traps=[InvalidOperation, Inexact]).quantize


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def _id(value: Any, name: str) -> None:
    if type(value) is not str or not value or value.isspace():
        raise _Invalid("invalid.missing_id", f"{name} is empty or not a string: {value!r}")
    if not value.isprintable() and any(c < " " or c == "\x7f" for c in value):
        # the worker's stores join ids with a control character (processors.storage)
        raise _Invalid("invalid.id_characters", f"{name} holds a control character: {value!r}")


def _aware(value: Any, name: str) -> None:
    if not isinstance(value, datetime):
        raise _Invalid("invalid.naive_datetime", f"{name} is not a timestamp: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _Invalid("invalid.naive_datetime", f"{name} has no time zone: {value.isoformat()}")


def _number(value: Any, name: str, places: int = MAX_PLACES) -> Decimal:
    if type(value) is not Decimal:
        raise _Invalid(
            "invalid.amount_type", f"{name} is a {type(value).__name__}, not a Decimal: {value!r}"
        )
    if not value.is_finite():
        raise _Invalid("invalid.amount_non_finite", f"{name} is {value}")
    if value > MAX_AMOUNT or value < _MIN_AMOUNT:
        raise _Invalid("invalid.amount_too_large", f"{name} {value} exceeds {MAX_AMOUNT:,}")
    quantum = _QUANTA[places]
    # up to 12 places a figure within MAX_AMOUNT fits the default 28 digits; shares need more
    if (
        value.quantize(quantum) if places <= MAX_PLACES else value.quantize(quantum, context=_EXACT)
    ) != value:
        raise _Invalid(
            "invalid.amount_precision",
            f"{name} {value} has more than {places} digits after the decimal point",
        )
    return value


def _line(line: OrderLine) -> None:
    """Name what is wrong with a line the fast path refused."""
    line_id = line.line_id
    _id(line_id, "line_id")
    if type(line.sku) is not str or type(line.category) is not str:
        raise _Invalid("invalid.missing_id", f"line {line_id}: sku and category must be strings")
    quantity = _number(line.quantity, f"line {line_id} quantity")
    price = _number(line.unit_price, f"line {line_id} unit_price")
    discount = _number(line.discount, f"line {line_id} discount")
    cost = _number(line.unit_cost, f"line {line_id} unit_cost")
    if quantity < 0:
        raise _Invalid("invalid.quantity_negative", f"line {line_id}: quantity {quantity} < 0")
    if price < 0:
        raise _Invalid("invalid.price_negative", f"line {line_id}: unit_price {price} < 0")
    if cost < 0:
        raise _Invalid("invalid.cost_negative", f"line {line_id}: unit_cost {cost} < 0")
    if discount < 0 or discount > 1:
        raise _Invalid(
            "invalid.discount_range", f"line {line_id}: discount {discount} not in [0, 1]"
        )
    raise _Invalid(
        "invalid.amount_too_large",
        f"line {line_id}: quantity × unit_price {quantity * price} exceeds {MAX_AMOUNT:,}",
    )


def _order(event: OrderPlaced) -> None:
    _id(event.order_id, "order_id")
    _id(event.customer_id, "customer_id")
    _aware(event.placed_at, "placed_at")
    if event.currency not in ISO_4217:
        raise _Invalid(
            "invalid.currency_unknown", f"currency {event.currency!r} is not an ISO 4217 code"
        )
    lines = event.lines
    if not lines:
        raise _Invalid("invalid.no_lines", f"order {event.order_id} has no lines")
    seen: set[str] = set()
    fit = _FIT
    for line in lines:
        line_id = line.line_id
        q, p, d, c = line.quantity, line.unit_price, line.discount, line.unit_cost
        try:  # the fast path checks everything at once; the slow path names the problem
            ok = (
                type(q) is type(p) is type(d) is type(c) is Decimal
                and _ZERO <= q <= MAX_AMOUNT
                and _ZERO <= p <= MAX_AMOUNT
                and _ZERO <= d <= _ONE
                and _ZERO <= c <= MAX_AMOUNT
                and q * p <= MAX_AMOUNT
                and type(line_id) is str
                and line_id
                and not line_id.isspace()
                and type(line.sku) is str
                and type(line.category) is str
            )
            if ok:  # at most MAX_PLACES decimal places: Inexact is raised beyond
                fit(q, _QUANTUM)
                fit(p, _QUANTUM)
                fit(d, _QUANTUM)
                fit(c, _QUANTUM)
        except (InvalidOperation, Inexact):  # a NaN compared, a figure too fine
            ok = False
        if not ok:
            _line(line)
        if line_id in seen:
            raise _Invalid("invalid.duplicate_line_id", f"line_id {line_id} appears more than once")
        seen.add(line_id)
    if event.rep_id is not None:
        _id(event.rep_id, "rep_id")
    if event.credits:
        reps: set[str] = set()
        total = Decimal(0)
        for credit in event.credits:
            _id(credit.rep_id, "credits.rep_id")
            share = _number(credit.share, f"share of {credit.rep_id}", MAX_SHARE_PLACES)
            if not 0 < share <= 1:
                raise _Invalid(
                    "invalid.share_range", f"share {share} of {credit.rep_id} not in (0, 1]"
                )
            if credit.rep_id in reps:
                raise _Invalid("invalid.duplicate_credit", f"rep {credit.rep_id} is credited twice")
            reps.add(credit.rep_id)
            total = _EXACT.add(total, share)  # exact: 28-place shares overflow 28 digits
        if total != ONE:
            raise _Invalid("invalid.shares_sum", f"credit shares sum to {total}, not exactly 1")


def _money(event: PaymentReceived | RefundIssued, amount: Any) -> None:
    _id(event.order_id, "order_id")
    value = _number(amount, "amount", MAX_MONEY_PLACES)
    if value < 0:
        raise _Invalid("invalid.amount_negative", f"amount {value} < 0")


def _payment(event: PaymentReceived) -> None:
    _id(event.payment_id, "payment_id")
    _aware(event.received_at, "received_at")
    _money(event, event.amount)


def _refund(event: RefundIssued) -> None:
    _id(event.refund_id, "refund_id")
    _aware(event.issued_at, "issued_at")
    _money(event, event.amount)


def _cancel(event: OrderCancelled) -> None:
    _id(event.order_id, "order_id")
    _aware(event.cancelled_at, "cancelled_at")


def _customer(event: CustomerChanged) -> None:
    _id(event.customer_id, "customer_id")
    if event.owner_rep_id is not None:
        _id(event.owner_rep_id, "owner_rep_id")
    since = event.customer_since
    if since is not None and (not isinstance(since, date) or isinstance(since, datetime)):
        raise _Invalid("invalid.missing_id", f"customer_since is not a date: {since!r}")


def _rep(event: RepChanged) -> None:
    _id(event.rep_id, "rep_id")


def _plan(event: PlanPublished) -> None:
    _id(event.plan_id, "plan_id")
    try:
        plan_from_event(event)
    except PlanError as exc:
        raise _Invalid("invalid.plan_definition", str(exc)) from exc


def _period(event: PeriodClosed) -> None:
    if not isinstance(event.period, str) or not is_period(event.period):
        raise _Invalid("invalid.period", f"{event.period!r} is not YYYY-MM or YYYY-Qn")


_CHECKS: dict[type[Any], Callable[[Any], None]] = {
    OrderPlaced: _order,
    PaymentReceived: _payment,
    RefundIssued: _refund,
    OrderCancelled: _cancel,
    CustomerChanged: _customer,
    RepChanged: _rep,
    PlanPublished: _plan,
    PeriodClosed: _period,
}


def validate_event(event: Event) -> DeadLetter | None:
    """None when the engine can process ``event``; else a :class:`DeadLetter` whose
    ``reason`` is one of the codes in this module's docstring. Never raises."""
    check = _CHECKS.get(type(event))
    try:
        if check is None:
            raise _Invalid("invalid.unknown_type", f"{type(event).__name__} is not an event type")
        _id(event.event_id, "event_id")
        occurred = event.occurred_at
        if type(occurred) is not datetime or occurred.tzinfo is None:
            _aware(occurred, "occurred_at")
        try:
            check(event)
        except (AttributeError, TypeError, ValueError, ArithmeticError) as exc:
            raise _Invalid("invalid.malformed", f"{type(exc).__name__}: {exc}") from exc
    except _Invalid as bad:
        event_id = getattr(event, "event_id", None)
        return DeadLetter(
            bad.reason,
            bad.detail,
            event_id if isinstance(event_id, str) else None,
            type(event).__name__,
        )
    return None


def money_precision(
    amount: Decimal, currency: str, order_id: str, event_id: str, event_type: str
) -> DeadLetter | None:
    """None when ``amount`` (of a payment or refund already valid: :func:`validate_event`)
    is a whole number of ``currency``'s minor unit; else an ``invalid.amount_precision``
    :class:`DeadLetter` for that event (USD 10.001, JPY 100.5). The order stage applies it
    where the order, hence the currency, is known. Never raises."""
    places = minor_unit(currency)
    try:
        _FIT_MONEY(amount, _QUANTA[places])  # raises Inexact when finer
        return None
    except (ArithmeticError, AttributeError, TypeError):
        pass
    noun = "payment" if event_type == "PaymentReceived" else "refund"
    return DeadLetter(
        "invalid.amount_precision",
        f"{noun} amount {amount} of order {order_id} is finer than the minor unit of "
        f"its currency {currency} ({places} decimal places)",
        event_id,
        event_type,
    )
