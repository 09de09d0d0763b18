"""The API under attack (issue 17): every route of the OpenAPI document, called with no
token, a wrong token, a deactivated token and every role, and every POST route with
hostile bodies (deep JSON, huge, wrong types, wrong content type, YAML alias bombs).

Real broker, real worker with its ClickHouse engine. Asserts the status of every answer
(never a 500), that refusals change nothing the read views show, and that the audit log
and the read views agree after every accepted command.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from comstream.publish import publish_events
from processors.events import OrderPlaced, RepChanged
from processors.payouts import Role, can_read_statement
from streams.payouts import ROUTE_POLICY
from streams.settings import Settings
from streams.users import User, new_user, publish_user
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import RunningWorker, deployment, launch, wait_until
from tests.unit.test_planfiles import alias_bomb

pytestmark = pytest.mark.integration

P = "2026-11"
ROLES = ("rep", "manager", "finance", "admin")
BAD_TOKENS = ("anon", "wrong", "deactivated")


@dataclass
class Site:
    settings: Settings
    worker: RunningWorker
    tokens: dict[str, str]
    users: dict[str, User]
    rep: str  # a rep of team-east: the rep user, read by the manager
    rep_manager: str | None
    customer: str

    def request(
        self,
        who: str,
        method: str,
        path: str,
        data: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        req = urllib.request.Request(self.settings.web_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        token = self.tokens.get(who)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status = resp.status
                if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
                    return status, resp.readline().decode()
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def get(self, who: str, path: str) -> tuple[int, Any]:
        return self.request(who, "GET", path)

    def post(self, who: str, path: str, body: Any) -> tuple[int, Any]:
        return self.request(who, "POST", path, json.dumps(body).encode())


@pytest.fixture(scope="module")
def site(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("security")
    settings = deployment(kafka_bootstrap, root)
    events = generated(orders=30, seed=5)
    east = sorted(
        (e for e in events if isinstance(e, RepChanged) and e.team_id == "team-east"),
        key=lambda e: e.rep_id,
    )
    rep = east[0]
    people = {
        "rep": ("rep", rep.rep_id, "team-east"),
        "manager": ("manager", None, "team-east"),
        "finance": ("finance", None, None),
        "admin": ("admin", None, None),
        "deactivated": ("finance", None, None),
    }
    tokens: dict[str, str] = {"wrong": "cst_" + secrets.token_urlsafe(32)}
    users: dict[str, User] = {}
    for name, (role, rep_id, team) in people.items():
        user, token = new_user(name, role, rep_id, team)
        publish_user(settings, user)
        tokens[name], users[name] = token, user
    n_dims = n_dimension_events(events)
    publish_events(events, kafka_bootstrap, settings.topics)
    worker = launch(settings)
    customer = next(e.customer_id for e in events if isinstance(e, OrderPlaced))
    s = Site(settings, worker, tokens, users, rep.rep_id, rep.manager_id, customer)
    try:
        wait_until(lambda: s.get("admin", "/api/status")[0] == 200, 60, "the worker")
        wait_until(
            lambda: s.get("admin", "/api/status")[1]["events_in"] >= n_dims, 60, "CRM ingested"
        )
        wait_until(lambda: s.get("admin", f"/api/statements/{s.rep}/{P}")[0] == 200, 60, "rep")
        # the customer pages read the BI facts, which the fact sink writes a moment later
        wait_until(
            lambda: s.get("admin", f"/api/customers/{customer}")[0] == 200, 60, "customer facts"
        )
        deactivated = users["deactivated"]
        publish_user(settings, replace(deactivated, active=False))
        wait_until(lambda: s.get("deactivated", "/api/me")[0] == 401, 30, "deactivation")
        yield s
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.stop()


def _declared(method: str, pattern: str, status: int) -> None:
    """``status`` is among the answers the OpenAPI document declares for the route."""
    from streams.openapi import openapi_document

    responses = openapi_document()["paths"][pattern][method.lower()]["responses"]
    assert str(status) in responses, (method, pattern, status, sorted(responses))


def _routes() -> list[tuple[str, str]]:
    from streams.openapi import openapi_document

    out = []
    for path, ops in openapi_document()["paths"].items():
        for method in ops:
            out.append((method.upper(), path))
    return out


ROUTES = _routes()
GETS = [p for m, p in ROUTES if m == "GET"]
POSTS = [p for m, p in ROUTES if m == "POST"]


def _concrete(site: Site, pattern: str) -> str:
    path = (
        pattern.replace("{rep_id}", site.rep)
        .replace("{period}", P)
        .replace("{customer_id}", site.customer)
    )
    query = {
        "/api/performance": f"by=rep&period={P}",
        "/api/orders/commission": f"period={P}",
        "/api/leaderboard": f"period={P}",
        "/api/leaderboard/stream": f"period={P}",
        "/api/reps/{rep_id}/statement": f"period={P}",
        "/api/reps/{rep_id}/statement.html": f"period={P}",
    }.get(pattern)
    return f"{path}?{query}" if query else path


def _may(site: Site, pattern: str, who: str) -> bool:
    policy = ROUTE_POLICY[pattern]
    if policy.roles is None:
        return True
    if who not in ROLES or Role(who) not in policy.roles:
        return False
    if policy.owner:
        return can_read_statement(site.users[who].actor, site.rep, "team-east", site.rep_manager)
    return True


def test_the_suite_covers_every_route_of_the_openapi_document() -> None:
    assert {p for _, p in ROUTES} == set(ROUTE_POLICY)
    assert len(POSTS) == 6 and len(GETS) >= 19


@pytest.mark.parametrize("who", [*BAD_TOKENS, *ROLES])
@pytest.mark.parametrize("pattern", GETS)
def test_every_read_route_with_every_token(site: Site, pattern: str, who: str) -> None:
    status, body = site.get(who, _concrete(site, pattern))
    _declared("GET", pattern, status)
    if _may(site, pattern, who):
        assert status == 200, (pattern, who, status, body)
    else:
        expected = 403 if who in ROLES else 401
        assert status == expected, (pattern, who, status, body)
        assert body["error"] and body["audit_id"].startswith("req-"), body


@pytest.mark.parametrize("who", [*BAD_TOKENS, *ROLES])
@pytest.mark.parametrize("pattern", POSTS)
def test_every_command_route_refuses_the_wrong_callers_whatever_the_body(
    site: Site, pattern: str, who: str
) -> None:
    if _may(site, pattern, who):
        return  # the callers who may: hostile bodies below, the walk at the end
    path = _concrete(site, pattern)
    expected = 403 if who in ROLES else 401
    for data, ctype in (
        (b'{"version": 1}', "application/json"),
        (b"[" * 30_000 + b"]" * 30_000, "application/json"),
        (alias_bomb(8).encode(), "text/plain"),
    ):
        status, body = site.request(who, "POST", path, data, ctype)
        assert status == expected, (pattern, who, status, body)
        _declared("POST", pattern, status)


DEEP = b"[" * 30_000 + b"]" * 30_000
COMMAND_BODIES: list[tuple[str, bytes, str, int]] = [
    ("deep JSON", DEEP, "application/json", 400),
    ("deep JSON object", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json", 400),
    ("100,000 deep", b"[" * 100_000 + b"]" * 100_000, "application/json", 413),
    (
        "huge",
        json.dumps({"version": 1, "reason": "x" * 1_000_000}).encode(),
        "application/json",
        413,
    ),
    ("text/plain", b'{"version": 1}', "text/plain", 400),
    ("not JSON", b"{version: 1", "application/json", 400),
    ("not UTF-8", b'{"version": 1, "reason": "\xff"}', "application/json", 400),
    ("a list", b"[1]", "application/json", 400),
    ("a string", b'"review"', "application/json", 400),
    ("version as text", b'{"version": "1"}', "application/json", 400),
    ("version as float", b'{"version": 1.5}', "application/json", 400),
    ("version out of range", b'{"version": -1}', "application/json", 400),
    ("NaN", b'{"version": NaN}', "application/json", 400),
    ("reason not text", b'{"version": 1, "reason": {"a": 1}}', "application/json", 400),
    (
        "amounts overflow",
        b'{"version": 1, "amounts": {"USD": "1e999999999"}}',
        "application/json",
        400,
    ),
    ("unknown field", b'{"version": 1, "approved_by": "me"}', "application/json", 400),
    ("command id object", b'{"version": 1, "command_id": [1]}', "application/json", 400),
    ("force as text", b'{"version": 0, "force": "yes", "reason": "r"}', "application/json", 400),
]
PLAN_BODIES: list[tuple[str, bytes, str, int]] = [
    ("alias bomb", alias_bomb(8).encode(), "application/yaml", 400),
    ("anchor", b"plan_id: &a x\nversion: 1\n", "application/yaml", 400),
    ("deep YAML", b"name: " + b"[" * 30_000 + b"]" * 30_000, "application/yaml", 400),
    ("huge", b"# " + b"x" * 1_000_000, "application/yaml", 413),
    ("not UTF-8", b"plan_id: \xff", "application/yaml", 400),
    ("a list", b"[1, 2]", "application/json", 400),
    ("empty", b"", "application/yaml", 400),
]


def _views(site: Site) -> Any:
    return site.get("admin", f"/api/statements?period={P}")[1]["statements"]


@pytest.mark.parametrize("pattern", POSTS)
def test_hostile_bodies_are_refused_with_their_status_and_change_nothing(
    site: Site, pattern: str
) -> None:
    who = next(r for r in ROLES if _may(site, pattern, r))
    path = _concrete(site, pattern)
    bodies = PLAN_BODIES if pattern == "/api/plans" else COMMAND_BODIES
    before = _views(site)
    for name, data, ctype, expected in bodies:
        status, body = site.request(who, "POST", path, data, ctype)
        assert status == expected, (pattern, name, status, body)
        _declared("POST", pattern, status)
        assert isinstance(body, dict) and body["code"] == "invalid", (pattern, name, body)
        assert body["error"] and "<class" not in body["error"], (pattern, name, body)
        assert body["audit_id"], (pattern, name, body)
    assert _views(site) == before
    assert site.get("admin", "/api/health")[0] == 200


def _agrees(site: Site, record: dict[str, Any]) -> None:
    """The audit log holds the record, and the statement's views show its outcome."""
    rep, period = record["rep_id"], record["period"]
    records = site.get("admin", f"/api/audit?period={period}&limit=100000")[1]["records"]
    assert [r for r in records if r["audit_id"] == record["audit_id"]] == [record]
    if not rep:
        return
    st = site.get("admin", f"/api/statements/{rep}/{period}")[1]
    assert (st["status"], st["version"]) == (record["state_after"], record["version_after"])
    assert record["audit_id"] in {h["audit_id"] for h in st["history"]}
    (row,) = [s for s in _views(site) if s["rep_id"] == rep]
    assert (row["status"], row["version"]) == (st["status"], st["version"])
    queues = site.get("finance", f"/api/queues?period={period}")[1]
    queued = {q: {r["rep_id"] for r in rows} for q, rows in queues.items()}
    assert (rep in queued["approve"]) == (st["status"] == "reviewed")
    assert (rep in queued["pay"]) == (st["status"] == "approved")


def test_after_every_accepted_command_the_audit_log_and_the_views_agree(site: Site) -> None:
    rep = site.rep
    status, body = site.post("admin", f"/api/periods/{P}/close", {})
    assert status == 200, body
    _agrees(site, body["record"])
    wait_until(lambda: P in site.get("admin", "/api/status")[1]["closed_periods"], 30, "closed")
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("manager", "review", {"version": 1, "command_id": "shared-id"}),
        ("finance", "return", {"version": 2, "reason": "<b>check</b>", "command_id": "shared-id"}),
        ("manager", "review", {"version": 3}),
        ("finance", "approve", {"version": 4}),
    ]
    for who, action, body in steps:
        status, answer = site.post(who, f"/api/statements/{rep}/{P}/{action}", body)
        assert status == 200, (action, answer)
        _agrees(site, answer["record"])
    total = answer["record"]["amounts"]
    # refused commands are recorded and change nothing
    status, answer = site.post(
        "finance", f"/api/statements/{rep}/{P}/pay", {"version": 5, "amounts": {}, "reference": "R"}
    )
    assert status == 422 and answer["code"] == "amount_mismatch", answer
    status, answer = site.post(
        "finance",
        f"/api/statements/{rep}/{P}/pay",
        {"version": 5, "amounts": total, "reference": "PAY-1"},
    )
    assert status == 200, answer
    _agrees(site, answer["record"])
    payouts = site.get("finance", f"/api/payouts?period={P}")[1]["payouts"]
    assert [(p["rep_id"], p["paid"]) for p in payouts] == [(rep, total)]


def test_junk_names_in_every_path_are_400_or_404(site: Site) -> None:
    for pattern in [*GETS, *POSTS]:
        if "{rep_id}" not in pattern and "{period}" not in pattern:
            continue
        method = "POST" if pattern in POSTS else "GET"
        roles = ROUTE_POLICY[pattern].roles or frozenset()
        who = next(r for r in ("finance", "admin", "manager") if Role(r) in roles)
        cases = []
        if "{rep_id}" in pattern:
            cases.append(("no-such-rep", P, 404))
        if "{period}" in pattern:
            cases.append((site.rep, "0000-01", 400))
        for rep, period, expected in cases:
            path = pattern.replace("{rep_id}", rep).replace("{period}", period)
            data = b'{"version": 1}' if method == "POST" else None
            status, body = site.request(who, method, path, data)
            assert status == expected, (pattern, rep, period, status, body)
            _declared(method, pattern, status)
            assert body["error"], body


def test_every_answer_carries_the_browser_security_headers(site: Site) -> None:
    for path in ("/", "/queues", "/api/health", "/api/openapi.json", "/nope"):
        req = urllib.request.Request(site.settings.web_url + path)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                headers = resp.headers
        except urllib.error.HTTPError as exc:
            headers = exc.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert (
            headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        )
