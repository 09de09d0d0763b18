"""``GET /api/orders/commission?period=P``: the ledger's per-order sums of one period, for
``comstream reconcile`` (which cannot open an embedded ClickHouse the worker holds)."""

from __future__ import annotations

import asyncio

import faust
from faust.web import Request, Response, View

from processors.periods import is_period
from sinks.reconcile import BY, order_commission, overpaid_orders

from .app import WorkerState, no_store


def register_reconcile_views(app: faust.App, ws: WorkerState) -> None:
    """Add ``/api/orders/commission``: ``{"period": P, "rows": [{"order_id", "rep_id",
    "currency", "amount" (a decimal string), "deltas"}]}``, each delta id once, of the
    deltas booked in P (``by=booked``, the default) or caused in P wherever they were
    booked (``by=origin``); 400 without a valid ``period`` or ``by``, 404 on a worker
    that runs no sink."""

    @app.page("/api/orders/commission")
    class OrderCommission(View):
        async def get(self, request: Request) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            period = request.query.get("period", "")
            if not is_period(period):
                return self.json(
                    {"error": f"period {period!r}: expected YYYY-MM or YYYY-Qn"}, status=400
                )
            by = request.query.get("by", "booked")
            if by not in BY:
                return self.json({"error": f"by={by!r}: expected booked or origin"}, status=400)
            rows = await asyncio.get_running_loop().run_in_executor(
                None, order_commission, store, period, by
            )
            return self.json(
                {
                    "period": period,
                    "rows": [dict(r, amount=str(r["amount"])) for r in rows],
                }
            )

    @app.page("/api/exceptions")
    class Exceptions(View):
        """Money to look at: overpaid orders (net payments above the order total), from
        the BI order facts. Payments still waiting for their order are listed by
        ``comstream reconcile`` (they have no order fact)."""

        async def get(self, request: Request) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            rows = await asyncio.get_running_loop().run_in_executor(None, overpaid_orders, store)
            return self.json(
                {
                    "overpaid": [
                        {k: str(v) if k in ("total", "paid", "excess") else v for k, v in r.items()}
                        for r in rows
                    ]
                }
            )
