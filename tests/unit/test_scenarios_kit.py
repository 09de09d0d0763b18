"""Builders for the engine's unit tests: short, readable events and plan documents.

Not a test module itself (it holds no tests); the scenario, stage and property tests
import it. Every builder gives deterministic event ids unless one is passed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from processors.engine import Engine
from processors.events import (
    CommissionDelta,
    Credit,
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

_ids = itertools.count(1)

KIND_CODE = {"commission": "C", "adjustment": "A", "accelerator": "X"}


def eid(prefix: str) -> str:
    return f"{prefix}-{next(_ids):06d}"


def ts(text: str) -> datetime:
    """A timestamp from ISO text; a text without offset is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def D(text: str | int) -> Decimal:
    return Decimal(str(text))


def plan_doc(**fields: Any) -> dict[str, Any]:
    """A plan document: 5% of revenue for everyone, earned on payment, monthly, UTC,
    effective 2026-01-01 — with ``fields`` replacing or adding top-level keys."""
    doc: dict[str, Any] = {
        "plan_id": "std",
        "version": 1,
        "effective_from": "2026-01-01",
        "applies_to": {"everyone": True},
        "period": "month",
        "timezone": "UTC",
        "earn_on": "payment",
        "rules": [{"id": "flat", "base": "revenue", "rate": "0.05"}],
    }
    doc.update(fields)
    return doc


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal | date):
        return str(value)
    raise TypeError(type(value).__name__)


def publish(
    doc: Mapping[str, Any], at: str = "2025-12-01T00:00:00Z", event_id: str | None = None
) -> PlanPublished:
    return PlanPublished(
        event_id or f"plan-{doc['plan_id']}-{doc['version']}",
        ts(at),
        str(doc["plan_id"]),
        int(doc["version"]),
        date.fromisoformat(str(doc["effective_from"])),
        json.dumps(doc, default=_json_default, sort_keys=True),
    )


def rep(
    rep_id: str,
    team: str | None = None,
    region: str | None = None,
    at: str = "2025-12-01T00:00:00Z",
    event_id: str | None = None,
) -> RepChanged:
    return RepChanged(event_id or eid("rep"), ts(at), rep_id, rep_id.title(), team, None, region)


def customer(
    customer_id: str,
    owner: str | None = None,
    tier: str | None = None,
    region: str | None = None,
    industry: str | None = None,
    since: str | None = None,
    at: str = "2025-12-01T00:00:00Z",
    event_id: str | None = None,
) -> CustomerChanged:
    return CustomerChanged(
        event_id or eid("cust"),
        ts(at),
        customer_id,
        customer_id.title(),
        tier,
        region,
        industry,
        owner,
        None if since is None else date.fromisoformat(since),
    )


def line(
    line_id: str,
    quantity: str | int,
    price: str | int,
    discount: str | int = "0",
    cost: str | int = "0",
    sku: str = "SKU-1",
    category: str = "goods",
) -> OrderLine:
    return OrderLine(line_id, sku, category, D(quantity), D(price), D(discount), D(cost))


def order(
    order_id: str,
    lines: Sequence[OrderLine],
    placed_at: str = "2026-11-10T10:00:00Z",
    customer_id: str = "cust-1",
    rep_id: str | None = "rep-1",
    credits: Iterable[tuple[str, str]] = (),
    currency: str = "USD",
    event_id: str | None = None,
) -> OrderPlaced:
    at = ts(placed_at)
    return OrderPlaced(
        event_id or f"placed-{order_id}",
        at,
        order_id,
        customer_id,
        at,
        currency,
        tuple(lines),
        rep_id,
        tuple(Credit(r, D(s)) for r, s in credits),
    )


def pay(
    order_id: str,
    amount: str | int,
    at: str = "2026-11-15T10:00:00Z",
    event_id: str | None = None,
    payment_id: str | None = None,
) -> PaymentReceived:
    event_id = event_id or eid("pay")
    return PaymentReceived(event_id, ts(at), order_id, payment_id or event_id, D(amount), ts(at))


def refund(
    order_id: str,
    amount: str | int,
    at: str = "2026-11-20T10:00:00Z",
    event_id: str | None = None,
    refund_id: str | None = None,
) -> RefundIssued:
    event_id = event_id or eid("rfd")
    return RefundIssued(event_id, ts(at), order_id, refund_id or event_id, D(amount), ts(at))


def cancel(
    order_id: str, at: str = "2026-11-25T10:00:00Z", event_id: str | None = None
) -> OrderCancelled:
    return OrderCancelled(event_id or eid("cxl"), ts(at), order_id, ts(at))


def close(
    period: str, at: str = "2026-12-01T00:00:00Z", event_id: str | None = None
) -> PeriodClosed:
    return PeriodClosed(event_id or f"close-{period}", ts(at), period, "finance")


def run(events: Iterable[Event]) -> tuple[Engine, list[CommissionDelta], list[DeadLetter]]:
    engine = Engine()
    deltas: list[CommissionDelta] = []
    letters: list[DeadLetter] = []
    for event in events:
        for out in engine.process(event):
            if isinstance(out, CommissionDelta):
                deltas.append(out)
            else:
                letters.append(out)
    return engine, deltas, letters


def brief(d: CommissionDelta) -> tuple[str, str, str | None, str, str, str]:
    """(kind code, rep, order, amount, booked period, origin period)."""
    return (
        KIND_CODE[d.kind.value],
        d.rep_id,
        d.order_id,
        str(d.amount),
        d.booked_period,
        d.origin_period,
    )


def totals_of(engine: Engine) -> dict[tuple[str, str], str]:
    """(rep, booked period) -> total as text, USD only, zero totals left out."""
    out: dict[tuple[str, str], str] = {}
    for (rep_id, period, _currency), amount in sorted(engine.totals().items()):
        if amount != 0:
            out[(rep_id, period)] = str(amount)
    return out
