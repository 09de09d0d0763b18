"""The ledger side of ``comstream reconcile``: per-order sums of one period, booked in
it or caused in it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .clickhouse import Store

_SQL = (
    "SELECT order_id, rep_id, currency, sum(amount), count() FROM ("
    "SELECT delta_id, order_id, rep_id, currency, amount FROM commission_deltas "
    "PREWHERE {column} = {{p:String}} LIMIT 1 BY delta_id) "
    "GROUP BY order_id, rep_id, currency ORDER BY order_id, rep_id, currency"
)
ORDER_COMMISSION_SQL = _SQL.format(column="booked_period")
BY: dict[str, str] = {
    "booked": ORDER_COMMISSION_SQL,
    "origin": _SQL.format(column="origin_period"),
}


def order_commission(store: Store, period: str, by: str = "booked") -> list[dict[str, Any]]:
    """Every (order, rep, currency) with deltas booked in ``period`` (``by="booked"``)
    or caused in it wherever they were booked (``by="origin"``: prior-period adjustments
    of ``period`` included): the sum of their amounts and their number, each delta id
    counted once (however many rows the ledger holds for it). ``order_id`` is "" for
    deltas of no order (accelerators). Amounts are exact ``Decimal``. Raises ValueError
    for another ``by``, :class:`sinks.clickhouse.SinkError` when ClickHouse fails."""
    if by not in BY:
        raise ValueError(f"by={by!r}: expected booked or origin")
    rows = store.query(BY[by], {"p": period})
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


OVERPAID_SQL = (
    "SELECT order_id, customer_id, currency, total, net_paid, net_paid - total "
    "FROM orders FINAL WHERE net_paid > total "
    "ORDER BY net_paid - total DESC, order_id LIMIT {limit:UInt32}"
)


def overpaid_orders(store: Store, limit: int = 1000) -> list[dict[str, Any]]:
    """Orders whose net payments (paid minus refunded) exceed their total, from the BI
    order facts, largest excess first: ``order_id``, ``customer_id``, ``currency``,
    ``total``, ``paid`` and ``excess`` (exact ``Decimal``). Raises
    :class:`sinks.clickhouse.SinkError` when ClickHouse fails."""
    rows = store.query(OVERPAID_SQL, {"limit": limit})
    return [
        {
            "order_id": r[0],
            "customer_id": r[1],
            "currency": r[2],
            "total": Decimal(r[3]),
            "paid": Decimal(r[4]),
            "excess": Decimal(r[5]),
        }
        for r in rows
    ]
