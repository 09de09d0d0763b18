"""The worker's JSON API (Faust web views). Only aggregated, deliberate answers: Faust's
default table views are disabled in :func:`streams.app.build_app`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.web import Request, Response, View

from schemas.jsonl import jsonable

from .app import WorkerState, no_store
from .headers import add_security_headers
from .payouts import register_payouts
from .web_bi import register_bi_views
from .web_reconcile import register_reconcile_views
from .web_ui import leaderboard_args, leaderboard_payload, register_ui_views


def register_views(app: faust.App, ws: WorkerState) -> None:
    """Add ``/api/health``, ``/api/status``, ``/api/leaderboard`` and ``/api/totals``,
    then the web UI and the rest of the API (:func:`streams.web_ui.register_ui_views`)."""

    async def run(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def status() -> dict[str, Any]:
        rows, distinct = ws.store.delta_count() if ws.store is not None else (None, None)
        sink = ws.sink
        return {
            "now": datetime.now(UTC).isoformat(timespec="seconds"),
            "events_in": ws.counters["events_in"],
            "dead_letters": ws.counters["dead_letters"],
            "deltas_out": ws.counters["deltas_out"],
            "deltas_stored": distinct,
            "ledger_rows": rows,
            "sink": ws.settings.sink,
            "sink_alive": bool(sink and sink.is_alive()),
            "plans": [f"{p.plan_id}@{p.version}" for p in ws.dims.plans.versions],
            "refused_plans": ws.dims.refused_plans,
            "closed_periods": sorted(ws.dims.closed_periods),
            "local_tables": "kept" if ws.tables_kept else "rebuilt",
            "changelog_records": {
                "sent": ws.changelog.issued,
                "acknowledged": ws.changelog.acknowledged,
                "failed": ws.changelog.failed,
            },
        }

    @app.page("/api/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            sink = ws.sink
            # ready: the tables hold every state of the assigned partitions (Faust sets
            # ``completed`` when recovery ends and starts a new recovery on every
            # rebalance), and the sink runs where this worker runs one
            recovery = cast(Any, app.tables).recovery  # faust.tables.recovery.Recovery
            recovered = recovery.completed.is_set() and not recovery.in_recovery
            sinking = not ws.settings.sink or bool(sink and sink.is_alive())
            ready = recovered and sinking
            body = {"ready": ready, "recovered": recovered, "sink": sinking}
            return self.json(body, status=200 if ready else 503)

    @app.page("/api/status")
    class Status(View):
        async def get(self, request: Request) -> Response:
            return self.json(jsonable(await run(status)))

    @app.page("/api/leaderboard")
    class Leaderboard(View):
        async def get(self, request: Request) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            try:
                period, team, region, limit = leaderboard_args(request)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            body = await run(leaderboard_payload, ws, store, period, team, region, limit)
            return self.json(body)

    @app.page("/api/totals")
    class Totals(View):
        async def get(self, request: Request) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            totals = await run(store.exact_totals)
            return self.json(
                {
                    "totals": [
                        {"rep_id": r, "period": p, "currency": c, "amount": str(a)}
                        for (r, p, c), a in sorted(totals.items())
                    ]
                }
            )

    web: Any = app.web  # faust.web.drivers.aiohttp.Web
    add_security_headers(web.web_app)
    register_ui_views(app, ws)
    register_bi_views(app, ws)
    register_reconcile_views(app, ws)
    register_payouts(app, ws)
