"""The worker's BI routes (JSON, and the printable statement page):

- ``GET /api/performance?by=rep,category&period=2026-11[&compare=0][&team=...]``:
  :func:`sinks.bi.performance` as :func:`sinks.bi.report_json` (400 on a bad query);
- ``GET /api/customers/{customer_id}``: :func:`sinks.bi.customer_view` (404 when unknown);
- ``GET /api/reps/{rep_id}/statement?period=P[&lang=zh]``: the statement lines, each with
  its explanation, and the totals (:func:`comstream.statements.statement_json`);
- ``GET /api/reps/{rep_id}/statement.html?period=P[&lang=zh]``: the printable page.

Every query runs in a thread (the store serialises on its own lock), so the event loop
that drives the Faust agents is never blocked by ClickHouse.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View

from schemas.jsonl import jsonable
from sinks.bi import DIMENSIONS, BIError, NotFound, customer_view, performance
from sinks.bi import report_json as performance_json
from sinks.clickhouse import Store

from .app import WorkerState, no_store


def _month_now() -> str:
    now = datetime.now(UTC)
    return f"{now.year:04d}-{now.month:02d}"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


MAX_STATEMENT_PAGE = 5000


def _count(value: str | None, name: str, least: int, most: int | None) -> int | None:
    """A whole-number query parameter between ``least`` and ``most`` (None: absent)."""
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if n < least or (most is not None and n > most):
        bound = f"between {least} and {most}" if most is not None else f"at least {least}"
        raise ValueError(f"{name} must be {bound}, not {n}")
    return n


def _rep_name(store: Store, rep_id: str) -> str | None:
    rows = store.query("SELECT name FROM v_reps WHERE rep_id = {r:String}", {"r": rep_id})
    return str(rows[0][0]) if rows and rows[0][0] else None


def register_bi_views(app: faust.App, ws: WorkerState) -> None:
    """Add the BI routes of this module to ``app``."""
    from comstream.statements import render_html, statement_json

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))

    @app.page("/api/performance")
    class Performance(View):
        async def get(self, request: Request) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            q = request.query
            filters = {k: q[k] for k in DIMENSIONS if q.get(k)}
            try:
                report = await run(
                    performance,
                    store,
                    q.get("by", "rep"),
                    q.get("period") or _month_now(),
                    compare=_flag(q.get("compare"), True),
                    filters=filters,
                )
            except BIError as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json(performance_json(report))

    @app.page("/api/customers/{customer_id}")
    class Customer(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            try:
                view = await run(customer_view, store, customer_id)
            except NotFound as exc:
                return self.json(
                    {"error": str(exc), "customer_id": customer_id, "status": 404}, status=404
                )
            return self.json(jsonable(view))

    def statement(rep_id: str, period: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        assert ws.store is not None
        page = ws.store.statement_page(rep_id, period)  # lines and totals, one read
        return page.lines, page.totals

    def statement_page(
        rep_id: str, period: str, offset: int, limit: int | None, lang: str
    ) -> dict[str, Any]:
        assert ws.store is not None
        page = ws.store.statement_page(rep_id, period, offset, limit)
        body = statement_json(page.lines, page.totals, lang)
        body.update(
            offset=page.offset,
            limit=limit,
            line_count=page.line_count,
            days=[
                {"day": day.isoformat(), "currency": currency, "amount": str(amount)}
                for day, currency, amount in page.days
            ],
        )
        return body

    @app.page("/api/reps/{rep_id}/statement")
    class Statement(View):
        async def get(self, request: Request, rep_id: str) -> Response:
            if ws.store is None:
                return no_store(self)
            q = request.query
            period = q.get("period") or _month_now()
            try:
                offset = _count(q.get("offset"), "offset", 0, None) or 0
                limit = _count(q.get("limit"), "limit", 1, MAX_STATEMENT_PAGE)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            body = await run(statement_page, rep_id, period, offset, limit, q.get("lang", "en"))
            return self.json(body)

    @app.page("/api/reps/{rep_id}/statement.html")
    class StatementPage(View):
        async def get(self, request: Request, rep_id: str) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            period = request.query.get("period") or _month_now()
            lines, totals = await run(statement, rep_id, period)
            name = await run(_rep_name, store, rep_id)
            page = await run(render_html, lines, totals, request.query.get("lang", "en"), name)
            return self.html(page)
