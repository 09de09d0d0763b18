"""The payout workflow's server side without a broker: every /api route has an access
policy, users and tokens, the COMSTREAM_AUTH setting, the payroll file format, and the
queue/payout pages served from the package."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from comstream.payouts_cmd import PAYROLL_FIELDS, payroll_lines, read_payroll_file
from processors.payouts import Role
from streams.app import WorkerState, build_app
from streams.dimensions import Dimensions
from streams.openapi import PUBLIC_PATHS
from streams.payouts import ROUTE_POLICY
from streams.settings import Settings, SettingsError, load_settings
from streams.users import (
    TOKEN_PREFIX,
    UserError,
    Users,
    auth_enabled,
    decode_user,
    encode_user,
    new_user,
    token_hash,
)
from streams.web import register_views


@pytest.fixture
def web_app(tmp_path: Path) -> Iterator[Any]:
    settings = Settings(data_dir=tmp_path, web_port=1)
    ws = WorkerState(settings, None, Dimensions())
    app = build_app(ws)
    register_views(app, ws)
    app.web.init_server()
    yield app.web.web_app


def test_every_api_route_has_an_access_policy_and_back(web_app: Any) -> None:
    routes = {r.canonical for r in web_app.router.resources() if r.canonical.startswith("/api")}
    assert routes == set(ROUTE_POLICY)
    public = {p for p, pol in ROUTE_POLICY.items() if pol.roles is None}
    assert public == {"/api/health", "/api/openapi.json"} == PUBLIC_PATHS
    # a rep reads only the leaderboard and their own statements
    rep_may = {p for p, pol in ROUTE_POLICY.items() if pol.roles and Role.REP in pol.roles}
    assert all(
        p.startswith(("/api/leaderboard", "/api/reps/", "/api/statements"))
        or p
        in (
            "/api/filters",
            "/api/me",
        )
        for p in rep_may
    )
    for p in rep_may:
        if "{rep_id}" in p:
            assert ROUTE_POLICY[p].owner, p


def test_queue_and_payout_pages_are_the_app_shell(web_app: Any) -> None:
    async def go() -> dict[str, tuple[int, str]]:
        async with TestClient(TestServer(web_app)) as client:
            out = {}
            for path in ("/queues", "/payouts", "/api/me"):
                r = await client.get(path)
                out[path] = (r.status, await r.text())
            return out

    got = asyncio.run(go())
    for page in ("/queues", "/payouts"):
        assert got[page][0] == 200 and '<script src="/static/app.js">' in got[page][1]
    # no users, auth auto: the API is open and says so
    assert got["/api/me"][0] == 200
    assert json.loads(got["/api/me"][1]) == {"auth": False, "user": None}


def test_users_tokens_are_random_and_stored_hashed() -> None:
    user, token = new_user("Ann <b>", "manager", team="east")
    other, token2 = new_user("Bob", "rep", rep_id="r1")
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40 and token != token2
    assert user.token_sha256 == token_hash(token) and token not in encode_user(user).decode()
    assert decode_user(encode_user(user)) == user
    users = Users()
    users.apply(user)
    users.apply(other)
    assert users.by_token(token) == user and users.by_token(token2) == other
    assert users.by_token("cst_wrong") is None
    assert user.actor.role == Role.MANAGER and user.actor.team == "east"
    # a deactivated user's token stops working
    from dataclasses import replace

    users.apply(replace(user, active=False))
    assert users.by_token(token) is None
    assert decode_user(b"not json") is None


@pytest.mark.parametrize(
    ("role", "rep_id", "team"),
    [("boss", None, None), ("rep", None, None), ("manager", None, None), ("rep", "a|b", None)],
)
def test_invalid_users_are_refused(role: str, rep_id: str | None, team: str | None) -> None:
    with pytest.raises(UserError):
        new_user("x", role, rep_id, team)


def test_auth_setting(tmp_path: Path) -> None:
    users = Users()
    auto = Settings(data_dir=tmp_path)
    assert not auth_enabled(auto, users)
    assert auth_enabled(Settings(data_dir=tmp_path, auth="true"), users)
    users.apply(new_user("a", "admin")[0])
    assert auth_enabled(auto, users)
    assert not auth_enabled(Settings(data_dir=tmp_path, auth="false"), users)
    assert load_settings({"COMSTREAM_AUTH": "TRUE"}).auth == "true"
    assert load_settings({}).auth == "auto"
    with pytest.raises(SettingsError, match="COMSTREAM_AUTH"):
        load_settings({"COMSTREAM_AUTH": "maybe"})


def test_payroll_lines_and_files_round_trip(tmp_path: Path) -> None:
    statements = [
        {
            "rep_id": "r2",
            "name": "=cmd|' /C calc'!A0",
            "period": "2026-11",
            "status": "approved",
            "version": 3,
            "approved_by": "u-fin",
            "approved_totals": {"USD": "10.5", "EUR": "2.00"},
        },
        {"rep_id": "r1", "period": "2026-11", "status": "reviewed", "version": 2},
    ]
    lines = payroll_lines(statements)
    assert [(ln["rep_id"], ln["currency"], ln["amount"]) for ln in lines] == [
        ("r2", "EUR", "2.00"),
        ("r2", "USD", "10.50"),
    ]
    assert all(set(ln) == set(PAYROLL_FIELDS) for ln in lines)
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"lines": lines}))
    assert read_payroll_file(path) == lines
    import csv

    csv_path = tmp_path / "p.csv"
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=PAYROLL_FIELDS)
        w.writeheader()
        w.writerows(lines)
    assert read_payroll_file(csv_path) == lines


def test_payroll_csv_keeps_free_text_from_running_as_a_spreadsheet_formula() -> None:
    from comstream.payouts_cmd import csv_safe

    line = {
        "rep_id": "rep-1",
        "name": '=HYPERLINK("http://x","pay me")',
        "period": "2026-11",
        "currency": "USD",
        "amount": "-12.50",
        "version": "3",
        "approved_by": "@SUM(A1)",
        "payout_reference": "",
    }
    safe = csv_safe(line)
    assert safe["name"] == '\'=HYPERLINK("http://x","pay me")'
    assert safe["approved_by"] == "'@SUM(A1)"
    assert safe["amount"] == "-12.50"  # amounts stay exact: a clawback total is negative
    assert line["name"].startswith("=")  # the JSON export keeps the original
    assert csv_safe({"name": "Ann", "approved_by": "fin-1"}) == {
        "name": "Ann",
        "approved_by": "fin-1",
    }
