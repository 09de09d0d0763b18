"""The web UI's server side without a broker: routes and the OpenAPI document agree, the
pages and assets are served from the package, Faust's /table views are absent, the ledger
signal wakes waiters across threads, and the leaderboard rows are filtered and ranked."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from comstream.demo import plan_event
from processors.events import RepChanged
from processors.plans import PlanBook, plan_from_event
from sinks.clickhouse import LeaderRow
from streams.app import WorkerState, build_app
from streams.dimensions import Dimensions
from streams.live import LedgerSignal, board_rows, quota_for, start_of_day
from streams.openapi import openapi_document
from streams.settings import Settings
from streams.web import register_views

REPO = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def web_app(tmp_path: Path) -> Iterator[Any]:
    """The worker's aiohttp application with every view and blueprint, not started."""
    settings = Settings(data_dir=tmp_path, web_port=1)
    ws = WorkerState(settings, None, Dimensions())
    app = build_app(ws)
    register_views(app, ws)
    app.web.init_server()  # applies Faust's blueprints, as the worker's start does
    yield app.web.web_app


def _api_routes(web_app: Any) -> set[str]:
    paths = set()
    for resource in web_app.router.resources():
        path = resource.canonical
        if path.startswith("/api"):
            paths.add(path)
    return paths


def test_every_api_route_is_in_the_openapi_document_and_back(web_app: Any) -> None:
    documented = set(openapi_document()["paths"])
    assert _api_routes(web_app) == documented


def _fetch(web_app: Any, paths: list[str]) -> dict[str, tuple[int, str, str]]:
    """(status, content type, body) of GET ``path`` for each path, in one server run."""

    async def go() -> dict[str, tuple[int, str, str]]:
        out = {}
        async with TestClient(TestServer(web_app)) as client:
            for path in paths:
                r = await client.get(path)
                out[path] = (r.status, r.headers.get("Content-Type", ""), await r.text())
        return out

    return asyncio.run(go())


def test_pages_assets_and_openapi_are_served_and_tables_are_not(web_app: Any) -> None:
    pages = ["/", "/reps/r-1", "/customers/c-1"]
    tables = ["/table", "/table/", "/table/customers/", "/table/orders/x/"]
    api = ["/api/openapi.json", "/api/leaderboard/stream"]
    got = _fetch(
        web_app,
        [*pages, *tables, "/static/app.js", "/static/app.css", "/static/..%2Fweb.py", *api],
    )
    for page in pages:
        status, ctype, body = got[page]
        assert status == 200 and ctype.startswith("text/html"), page
        assert '<script src="/static/app.js">' in body
    status, ctype, body = got["/static/app.js"]
    assert status == 200 and "javascript" in ctype and "EventSource" in body
    assert "charset=utf-8" in ctype  # the catalogue holds Chinese
    assert got["/static/app.css"][0] == 200
    assert got["/static/..%2Fweb.py"][0] == 404
    status, _, body = got["/api/openapi.json"]
    assert status == 200 and json.loads(body)["openapi"].startswith("3.")
    for path in tables:
        assert got[path][0] == 404, path
    # no sink in this worker: the stream says so instead of failing
    assert got["/api/leaderboard/stream"][0] == 404


def test_ledger_signal_wakes_a_waiter_from_another_thread() -> None:
    signal = LedgerSignal()

    async def go() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        seen = signal.version
        timer = threading.Timer(0.1, signal.notify, args=(3,))
        start = loop.time()
        timer.start()
        version = await signal.wait(seen, 5.0)
        return version, loop.time() - start

    version, waited = asyncio.run(go())
    assert version == 1 and waited < 2.0

    async def timeout() -> int:
        return await signal.wait(signal.version, 0.05)

    assert asyncio.run(timeout()) == 1
    signal.close()
    assert asyncio.run(signal.wait(signal.version, 5.0)) == 2 and signal.closed


def _rep(rep_id: str, team: str, region: str) -> RepChanged:
    return RepChanged(f"e-{rep_id}", AT, rep_id, f"Name {rep_id}", team, None, region)


def test_board_rows_filter_rank_attainment_and_change() -> None:
    rich = plan_from_event(plan_event(REPO / "plans" / "rich.yaml", AT))
    plans = PlanBook([rich])
    reps = {
        "r1": _rep("r1", "team-east", "north"),
        "r2": _rep("r2", "team-west", "south"),
        "r3": _rep("r3", "team-east", "south"),
    }
    rows = [
        LeaderRow(1, "r1", "USD", Decimal("300.00"), Decimal("9000"), 5),
        LeaderRow(2, "r2", "USD", Decimal("200.00"), Decimal("6000"), 4),
        LeaderRow(3, "r3", "USD", Decimal("100.00"), Decimal("3000"), 2),
        LeaderRow(4, "ghost", "USD", Decimal("50.00"), Decimal("1000"), 1),
    ]
    before = {("r1", "USD"): Decimal("250.00"), ("r3", "USD"): Decimal("120.00")}
    out = board_rows(rows, before, reps, plans, "2026-11")
    assert [r["rank"] for r in out] == [1, 2, 3, 4]
    assert out[0]["change_today"] == "50.00" and out[1]["change_today"] == "200.00"
    assert out[2]["change_today"] == "-20.00"
    assert out[3]["name"] is None and out[3]["team_id"] is None
    quota = quota_for(plans, reps["r1"], "r1", "2026-11")
    assert quota is not None and out[0]["quota"] == str(quota.quantize(Decimal("0.01")))
    assert Decimal(out[0]["attainment"]) == (Decimal(9000) / quota).quantize(Decimal("0.0001"))
    team = board_rows(rows, before, reps, plans, "2026-11", team="team-east")
    assert [(r["rank"], r["rep_id"]) for r in team] == [(1, "r1"), (2, "r3")]
    south = board_rows(rows, before, reps, plans, "2026-11", region="south", limit=1)
    assert [r["rep_id"] for r in south] == ["r2"]
    # a plan without tiers: no quota, no attainment
    simple = PlanBook([plan_from_event(plan_event(REPO / "plans" / "simple.yaml", AT))])
    assert board_rows(rows[:1], {}, reps, simple, "2026-11")[0]["attainment"] is None


def test_quota_is_scaled_between_months_and_quarters() -> None:
    rich = PlanBook([plan_from_event(plan_event(REPO / "plans" / "rich.yaml", AT))])
    rep = _rep("r1", "team-east", "north")
    quarter = quota_for(rich, rep, "r1", "2026-Q4")
    month = quota_for(rich, rep, "r1", "2026-11")
    assert quarter is not None and month is not None and month * 3 == quarter
    assert quota_for(rich, rep, "r1", "not-a-period") is None


def test_today_starts_at_midnight_utc() -> None:
    now = datetime(2026, 11, 5, 23, 30, tzinfo=UTC)
    assert start_of_day(now) == datetime(2026, 11, 5, tzinfo=UTC)
    assert start_of_day(now).date() == date(2026, 11, 5)


def test_the_ui_catalogue_has_every_string_in_both_languages() -> None:
    source = (REPO / "streams" / "static" / "app.js").read_text(encoding="utf-8")
    catalogue = r"const I18N = \{\s*en: \{(.*?)\n  \},\s*zh: \{(.*?)\n  \},\n\};"
    blocks = re.search(catalogue, source, re.S)
    assert blocks is not None
    key = re.compile(r"^\s+(\w+):", re.M)
    en, zh = (set(key.findall(b)) for b in blocks.groups())
    assert len(en) > 50 and en == zh
    used = set(re.findall(r"\bt\(\"(\w+)\"\)", source))
    used |= {f"kind_{k}" for k in ("commission", "adjustment", "accelerator")}
    assert used <= en, used - en


# ---- browser hardening (issue 17, item 8) ----------------------------------------------


def _headers(web_app: Any, paths: list[str]) -> dict[str, tuple[int, Any]]:
    async def go() -> dict[str, tuple[int, Any]]:
        out = {}
        async with TestClient(TestServer(web_app)) as client:
            for path in paths:
                r = await client.get(path)
                out[path] = (r.status, r.headers)
        return out

    return asyncio.run(go())


def test_every_page_asset_and_api_answer_carries_the_browser_security_headers(
    web_app: Any,
) -> None:
    paths = [
        "/",
        "/reps/r-1",
        "/customers/c-1",
        "/queues",
        "/payouts",
        "/static/app.js",
        "/static/app.css",
        "/api/openapi.json",
        "/api/health",
        "/api/me",
        "/no/such/page",
        "/table/customers/",
    ]
    for path, (status, headers) in _headers(web_app, paths).items():
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, (path, status)
        assert "default-src 'none'" in csp and "object-src 'none'" in csp
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert headers.get("X-Frame-Options") == "DENY", path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") == "no-referrer", path


def test_the_policy_allows_exactly_the_printable_statements_inline_style_and_button() -> None:
    import base64
    import hashlib

    from comstream.statements import render_html
    from streams.headers import CONTENT_SECURITY_POLICY

    page = render_html([], {"rep_id": "r-1", "period": "2026-11", "currencies": {}})
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    handler = re.search(r'onclick="([^"]*)"', page)
    assert style and handler
    for inline in (style.group(1), handler.group(1)):
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in CONTENT_SECURITY_POLICY, inline[:40]


def test_the_sign_in_token_leaves_the_address_and_links_carry_none() -> None:
    js = (REPO / "streams" / "static" / "app.js").read_text(encoding="utf-8")
    take = js[js.index("(function takeToken()") :]
    take = take[: take.index("})();")]
    assert "history.replaceState" in take and "u.hash" in take  # ?token= and #token=
    # the printable statement is fetched with the header, never linked with the token
    printable = js[js.index('id: "printable"') - 200 : js.index('id: "printable"') + 400]
    assert "withToken(" not in printable
    # withToken is only for EventSource, which cannot send a header
    uses = [m.start() for m in re.finditer(r"withToken\(", js)]
    assert len(uses) == 2  # its definition and the event stream
    assert "new EventSource(withToken(" in js
