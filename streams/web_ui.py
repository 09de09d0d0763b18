"""The worker's web UI: pages, their static assets, the live leaderboard stream (server-sent
events) and the OpenAPI document, as Faust web views on the worker's aiohttp server.

The pages are one HTML shell (``streams/static/index.html``) whose script reads the path
(``/``, ``/reps/{rep_id}``, ``/customers/{customer_id}``) and draws the page from the JSON
API. Everything is shipped in the package: no CDN, no network beyond the worker.

``GET /api/leaderboard/stream`` answers with ``text/event-stream``: a ``leaderboard``
event with the same body as ``GET /api/leaderboard`` at once, then again every time the
sink inserted rows (:class:`streams.live.LedgerSignal`, woken from the sink thread), at
most every ``PUSH_MIN_INTERVAL`` seconds, and a comment line every ``KEEPALIVE`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import faust
from aiohttp import web as aioweb
from faust.web import Request, Response, View

from sinks.clickhouse import Store

from .app import WorkerState, no_store
from .live import board_rows, start_of_day
from .openapi import openapi_document

PUSH_MIN_INTERVAL = 0.2
KEEPALIVE = 15.0
ACCESS_CHECK = 0.25  # an open stream re-checks its token this often
ACCESS_KEY = "comstream.access"
"""Request key of a ``() -> bool`` the auth middleware sets: whether the token the
request came with still names an active user. A stream ends once it says no."""

_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def _asset(name: str) -> bytes | None:
    """A file of ``streams/static`` by plain name, or None (no paths, no dot files)."""
    if (
        "/" in name
        or "\\" in name
        or name.startswith(".")
        or not any(name.endswith(ext) for ext in _TYPES)
    ):
        return None
    ref = resources.files("streams").joinpath("static", name)
    return ref.read_bytes() if ref.is_file() else None


def period_now() -> str:
    now = datetime.now(UTC)
    return f"{now.year:04d}-{now.month:02d}"


def leaderboard_payload(
    ws: WorkerState,
    store: Store,
    period: str,
    team: str | None,
    region: str | None,
    limit: int,
) -> dict[str, Any]:
    """The body of ``/api/leaderboard`` (blocking: runs ClickHouse queries)."""
    dims = ws.dims
    reps = dims.reps
    rows = store.leaderboard(period, 100_000 if team or region else limit)
    if team or region:
        rows = [
            r
            for r in rows
            if (not team or (r.rep_id in reps and reps[r.rep_id].team_id == team))
            and (not region or (r.rep_id in reps and reps[r.rep_id].region == region))
        ][:limit]
    now = datetime.now(UTC)
    since = start_of_day(now)
    before = store.period_sums_before(period, since, [r.rep_id for r in rows]) if rows else {}
    return {
        "period": period,
        "team": team,
        "region": region,
        "today_starts": since.isoformat(),
        "generated_at": now.isoformat(timespec="milliseconds"),
        "rows": board_rows(rows, before, reps, dims.plans, period, team, region, limit),
    }


def leaderboard_args(request: Request) -> tuple[str, str | None, str | None, int]:
    """(period, team, region, limit) from a request's query; ValueError if invalid."""
    q = request.query
    period = q.get("period") or period_now()
    try:
        limit = max(1, min(1000, int(q.get("limit", "20"))))
    except ValueError:
        raise ValueError("limit must be an integer") from None
    return period, q.get("team") or None, q.get("region") or None, limit


def register_ui_views(app: faust.App, ws: WorkerState) -> None:
    """Add the pages, ``/static/{name}``, ``/api/leaderboard/stream``, ``/api/filters``
    and ``/api/openapi.json``."""

    async def run(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def text(name: str, content_type: str) -> Any:
        """An asset as a utf-8 text response (aiohttp's, for its charset)."""
        body = _asset(name)
        if body is None:
            return aioweb.json_response({"error": f"no asset {name!r}"}, status=404)
        return aioweb.Response(
            text=body.decode("utf-8"),
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    def page(view: View) -> Any:
        return text("index.html", "text/html")

    @app.page("/")
    class Home(View):
        async def get(self, request: Request) -> Any:
            return page(self)

    @app.page("/reps/{rep_id}")
    class RepPage(View):
        async def get(self, request: Request, rep_id: str) -> Any:
            return page(self)

    @app.page("/customers/{customer_id}")
    class CustomerPage(View):
        async def get(self, request: Request, customer_id: str) -> Any:
            return page(self)

    @app.page("/static/{name}")
    class Static(View):
        async def get(self, request: Request, name: str) -> Any:
            ext = name[name.rfind(".") :]
            return text(name, _TYPES.get(ext, "text/plain"))

    @app.page("/api/openapi.json")
    class OpenAPI(View):
        async def get(self, request: Request) -> Response:
            return self.json(openapi_document())

    @app.page("/api/filters")
    class Filters(View):
        async def get(self, request: Request) -> Response:
            reps = ws.dims.reps.values()
            store = ws.store
            periods = await run(store.periods) if store is not None else []
            current = period_now()
            if current not in periods:
                periods = [current, *periods]
            return self.json(
                {
                    "teams": sorted({r.team_id for r in reps if r.team_id}),
                    "regions": sorted({r.region for r in reps if r.region}),
                    "periods": periods,
                    "current_period": current,
                }
            )

    # The last event text per (period, team, region, limit): every open stream of the
    # same board shares one computation per ledger version and day.
    shared: dict[tuple[str, str | None, str | None, int], tuple[int, str, str]] = {}

    async def board_event(key: tuple[str, str | None, str | None, int], version: int) -> str:
        day = start_of_day(datetime.now(UTC)).isoformat()
        hit = shared.get(key)
        if hit is not None and hit[0] == version and hit[1] == day:
            return hit[2]
        body = await run(leaderboard_payload, ws, store_of(), *key)
        body["version"] = version
        data = json.dumps(body, separators=(",", ":"))
        if len(shared) > 256:
            shared.clear()
        shared[key] = (version, day, data)
        return data

    def store_of() -> Store:
        assert ws.store is not None
        return ws.store

    @app.page("/api/leaderboard/stream")
    class LeaderboardStream(View):
        async def get(self, request: Request) -> Any:
            store = ws.store
            if store is None:
                return no_store(self)
            try:
                period, team, region, limit = leaderboard_args(request)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            signal = ws.ledger_signal
            key = (period, team, region, limit)
            response = aioweb.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            raw: Any = request  # the aiohttp request under Faust's Request type
            await response.prepare(raw)
            await response.write(b"retry: 1000\n\n")
            seen = -1
            last_push = 0.0
            last_write = time.monotonic()
            allowed = raw.get(ACCESS_KEY) or (lambda: True)
            try:
                pushed_day = ""
                # ends when the worker stops, or within ACCESS_CHECK seconds of the
                # user's deactivation or token change (the users follower applies it)
                while not signal.closed and allowed():
                    version = signal.version
                    day = start_of_day(datetime.now(UTC)).isoformat()
                    if version != seen or day != pushed_day:  # a new day resets "today"
                        pause = PUSH_MIN_INTERVAL - (time.monotonic() - last_push)
                        if pause > 0:
                            await asyncio.sleep(pause)
                            version = signal.version
                        data = await board_event(key, version)
                        await response.write(f"event: leaderboard\ndata: {data}\n\n".encode())
                        seen, last_push, pushed_day = version, time.monotonic(), day
                        last_write = last_push
                    idle = await signal.wait(seen, ACCESS_CHECK) == seen and not signal.closed
                    if idle and time.monotonic() - last_write >= KEEPALIVE:
                        await response.write(b": keepalive\n\n")
                        last_write = time.monotonic()
            except ConnectionResetError:  # the browser went away
                pass
            return response

    async def close_streams(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        ws.ledger_signal.close()  # open event streams end, so the server can stop

    app.on_before_shutdown.connect(close_streams)
