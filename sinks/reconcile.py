"""The ledger side of ``comstream reconcile``: per-order sums of one booked period."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .clickhouse import Store

ORDER_COMMISSION_SQL = (
    "SELECT order_id, rep_id, currency, sum(amount), count() FROM ("
    "SELECT delta_id, order_id, rep_id, currency, amount FROM commission_deltas "
    "PREWHERE booked_period = {p:String} LIMIT 1 BY delta_id) "
    "GROUP BY order_id, rep_id, currency ORDER BY order_id, rep_id, currency"
)


def order_commission(store: Store, period: str) -> list[dict[str, Any]]:
    """Every (order, rep, currency) with deltas booked in ``period``: the sum of their
    amounts and their number, each delta id counted once (however many rows the ledger
    holds for it). ``order_id`` is "" for deltas of no order (accelerators). Amounts are
    exact ``Decimal``. Raises :class:`sinks.clickhouse.SinkError` when ClickHouse fails."""
    rows = store.query(ORDER_COMMISSION_SQL, {"p": period})
    return [
        {
            "order_id": r[0],
            "rep_id": r[1],
            "currency": r[2],
            "amount": Decimal(r[3]),
            "deltas": int(r[4]),
        }
        for r in rows
    ]
