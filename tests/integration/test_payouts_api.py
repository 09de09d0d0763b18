"""The payout workflow through the real worker's API (docs/payouts.md): a real broker,
a real worker process with its ClickHouse engine, users on the users topic.

- every role (and no token) against every route: allowed or refused with 401/403;
- a period walked from open to paid by the right roles, with the audit trail;
- segregation of duties, two approvals at once (one wins, one 409), the same command
  twice (applied once), a payment that does not match (422), free text kept verbatim;
- a delta caused in the closed period lands in the next one as a prior-period adjustment;
- ``comstream audit`` and ``comstream payroll export/confirm``.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from comstream.cli import main as cli_main
from comstream.publish import publish_events
from comstream.replay import replay
from processors.events import Event, OrderPlaced, PaymentReceived
from streams.settings import Settings
from streams.users import User, new_user, publish_user
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import RunningWorker, deployment, launch, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
P = "2026-11"
NEXT = "2026-12"
NASTY = "'); DROP TABLE audit_log; -- <script>alert('x')</script> \"提成\" & <b>"


@dataclass
class Env:
    settings: Settings
    worker: RunningWorker
    tokens: dict[str, str]
    users: dict[str, User]
    events: list[Event]
    totals: dict[tuple[str, str, str], Decimal]

    def call_text(self, who: str, path: str, text: str) -> tuple[int, Any]:
        return self.call(who, path, None, text.encode())

    def call(
        self,
        who: str | None,
        path: str,
        body: dict[str, Any] | None = None,
        raw_body: bytes | None = None,
    ) -> tuple[int, Any]:
        url = self.settings.web_url + path
        data = (
            raw_body
            if raw_body is not None
            else None
            if body is None
            else json.dumps(body).encode()
        )
        req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
        req.add_header("Content-Type", "application/json")
        if who is not None:
            req.add_header("Authorization", f"Bearer {self.tokens[who]}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")


USERS = {
    # name: (role, rep_id, team)
    "admin": ("admin", None, None),
    "mgr": ("manager", None, "team-east"),
    "mgr-west": ("manager", None, "team-west"),
    "mgr-self": ("manager", "rep-010", "team-east"),
    "fin": ("finance", None, None),
    "fin2": ("finance", None, None),
    "fin-rep": ("finance", "rep-007", None),
    "rep": ("rep", "rep-004", "team-east"),
    "rep-other": ("rep", "rep-001", "team-east"),
}


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("payouts")
    settings = deployment(kafka_bootstrap, root)
    events = generated(orders=60, seed=11)
    expected = replay(events).totals()
    tokens: dict[str, str] = {}
    users: dict[str, User] = {}
    for name, (role, rep_id, team) in USERS.items():
        user, token = new_user(name if name != "rep" else NASTY, role, rep_id, team)
        publish_user(settings, user)
        tokens[name] = token
        users[name] = user
    n_dims = n_dimension_events(events)
    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    worker = launch(settings)
    e = Env(settings, worker, tokens, users, events, expected)
    try:
        wait_until(
            lambda: worker.get("/api/health")["ready"] and e.call("admin", "/api/status")[0] == 200,
            60,
            "worker",
        )
        wait_until(
            lambda: e.call("admin", "/api/status")[1]["events_in"] >= n_dims, 60, "CRM ingested"
        )
        publish_events(events[n_dims:], kafka_bootstrap, settings.topics)

        def totals() -> dict[tuple[str, str, str], Decimal]:
            rows = e.call("admin", "/api/totals")[1]["totals"]
            return {(r["rep_id"], r["period"], r["currency"]): Decimal(r["amount"]) for r in rows}

        wait_until(lambda: totals() == expected, 180, "stream totals == replay")
        yield e
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.stop()


ANY = {"rep", "rep-other", "mgr", "mgr-west", "fin", "admin"}
STAFF = {"mgr", "mgr-west", "fin", "admin"}
BOOKS = {"fin", "admin"}
R = "rep-004"  # team-east
GETS: list[tuple[str, set[str]]] = [
    ("/api/health", ANY | {"anon"}),
    ("/api/openapi.json", ANY | {"anon"}),
    ("/api/me", ANY),
    (f"/api/leaderboard?period={P}", ANY),
    ("/api/filters", ANY),
    ("/api/status", STAFF),
    ("/api/totals", BOOKS),
    (f"/api/performance?by=rep&period={P}", STAFF),
    ("/api/customers/{customer}", STAFF),
    (f"/api/orders/commission?period={P}", BOOKS),
    ("/api/exceptions", BOOKS),
    (f"/api/reps/{R}/statement?period={P}", {"rep", "mgr", "fin", "admin"}),
    (f"/api/reps/{R}/statement.html?period={P}", {"rep", "mgr", "fin", "admin"}),
    (f"/api/statements?period={P}", ANY),
    (f"/api/statements/{R}/{P}", {"rep", "mgr", "fin", "admin"}),
    (f"/api/statements/{R}/{P}/history", {"rep", "mgr", "fin", "admin"}),
    ("/api/queues", STAFF),
    ("/api/payouts", BOOKS),
    ("/api/audit", BOOKS),
]
# POSTs refused by role before they become commands (the state machine decides the rest)
POSTS: list[tuple[str, set[str]]] = [
    (f"/api/statements/{R}/{P}/review", {"mgr", "mgr-west"}),
    (f"/api/statements/{R}/{P}/return", {"mgr", "mgr-west", "fin"}),
    (f"/api/statements/{R}/{P}/approve", {"fin"}),
    (f"/api/statements/{R}/{P}/pay", {"fin"}),
    (f"/api/periods/{NEXT}/close", {"admin"}),
    ("/api/plans", {"admin"}),
]
WHO = ["anon", "rep", "rep-other", "mgr", "mgr-west", "fin", "admin"]


def _customer(env: Env) -> str:
    return next(e.customer_id for e in env.events if isinstance(e, OrderPlaced))


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("path", "allowed"), GETS, ids=[g[0] for g in GETS])
def test_every_role_against_every_read_route(
    env: Env, who: str, path: str, allowed: set[str]
) -> None:
    path = path.replace("{customer}", _customer(env))
    status, body = env.call(None if who == "anon" else who, path)
    if who in allowed:
        assert status == 200, (who, path, body)
    else:
        assert status == (401 if who == "anon" else 403), (who, path, status, body)
        assert body["error"] and body["audit_id"].startswith("req-")


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("path", "allowed"), POSTS, ids=[p[0] for p in POSTS])
def test_every_role_against_every_command_route(
    env: Env, who: str, path: str, allowed: set[str]
) -> None:
    if who in allowed:
        return  # what these may do is the state machine's business: see the walk below
    status, body = env.call(None if who == "anon" else who, path, {"version": 0})
    assert status == (401 if who == "anon" else 403), (who, path, status, body)
    assert "may not call" in body["error"] or who == "anon"


def test_a_rep_sees_only_their_own_statements(env: Env) -> None:
    status, body = env.call("rep", f"/api/statements?period={P}")
    assert status == 200
    assert {s["rep_id"] for s in body["statements"]} <= {R}
    status, body = env.call("mgr", f"/api/statements?period={P}")
    reps = {s["rep_id"] for s in body["statements"]}
    assert reps and all(
        env.worker and r in {"rep-001", "rep-004", "rep-007", "rep-010"} for r in reps
    )


def test_only_an_admin_publishes_a_plan_and_it_is_audited(env: Env) -> None:
    text = (REPO / "plans" / "simple.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^version: .*$", "version: 99", text)
    text = re.sub(r"(?m)^effective_from: .*$", "effective_from: 2030-01-01", text)
    for who in ("fin", "mgr", "rep"):
        status, body = env.call_text(who, "/api/plans", text)
        assert status == 403, (who, body)
    status, body = env.call_text("admin", "/api/plans", "plan_id: [oops")
    assert status == 400 and body["code"] == "invalid"
    status, body = env.call_text("admin", "/api/plans", text)
    assert status == 200, body
    assert body["record"]["action"] == "publish_plan"
    assert body["record"]["actor_id"] == env.users["admin"].user_id
    wait_until(
        lambda: any(p.endswith("@99") for p in env.call("admin", "/api/status")[1]["plans"]),
        30,
        "the plan in the worker's plan book",
    )

    def audited() -> bool:
        records = env.call("admin", "/api/audit")[1]["records"]
        return any(r["action"] == "publish_plan" and r["reason"].endswith("@99") for r in records)

    wait_until(audited, 30, "the publication in the audit log")
    records = env.call("admin", "/api/audit")[1]["records"]
    (mine,) = [r for r in records if r["action"] == "publish_plan" and r["reason"].endswith("@99")]
    assert mine["actor_id"] == env.users["admin"].user_id  # not the topic it went through


def test_a_plan_published_straight_to_kafka_is_audited_with_its_topic(env: Env) -> None:
    # the fixture published simple@1 with a plain producer, as `comstream plans publish` does
    def audited() -> list[dict[str, str]]:
        records = env.call("admin", "/api/audit?limit=100000")[1]["records"]
        return [r for r in records if r["action"] == "publish_plan" and "@99" not in r["reason"]]

    wait_until(lambda: bool(audited()), 30, "the first plan in the audit log")
    (record,) = audited()
    assert record["actor_id"] == f"producer:{env.settings.topics.plans}"
    assert record["actor_role"] == "producer"
    assert record["state_after"] == "published"


def test_the_leaderboard_stream_takes_the_token_in_the_query(env: Env) -> None:
    url = env.settings.web_url + f"/api/leaderboard/stream?period={P}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    with urllib.request.urlopen(f"{url}&token={env.tokens['rep']}", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.readline() == b"retry: 1000\n"


def test_a_deactivated_user_is_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    user, token = new_user("Temp", "finance")
    publish_user(env.settings, user)
    env.tokens["temp"] = token
    wait_until(lambda: env.call("temp", "/api/me")[0] == 200, 30, "the new user")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", env.settings.bootstrap)
    monkeypatch.setenv("COMSTREAM_TOPIC_PREFIX", env.settings.topics.prefix)
    assert cli_main(["users", "deactivate", user.user_id]) == 0
    wait_until(lambda: env.call("temp", "/api/me")[0] == 401, 30, "the token refused")


def _one_more_order(env: Env, rep_id: str) -> list[Event]:
    """A copy of one of ``rep_id``'s paid orders, placed and paid in the closed period."""
    orders = {e.order_id: e for e in env.events if isinstance(e, OrderPlaced)}
    for e in env.events:
        if not isinstance(e, PaymentReceived):
            continue
        order = orders.get(e.order_id)
        if order is None or order.rep_id != rep_id or order.credits:
            continue
        late = order.placed_at + timedelta(days=10)
        new_order = replace(order, event_id="late-o", order_id="late-order", placed_at=late)
        pay = replace(
            e,
            event_id="late-p",
            order_id="late-order",
            payment_id="late-pay",
            received_at=late + timedelta(hours=1),
        )
        return [new_order, pay]
    raise AssertionError(f"no paid order of {rep_id}")


def test_a_period_walks_from_open_to_paid_with_the_whole_audit_trail(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    call = env.call
    assert call(None, "/api/queues")[0] == 401
    assert call("rep-other", f"/api/statements/{R}/{P}")[0] == 403
    # open: nothing to review yet
    status, st = call("mgr", f"/api/statements/{R}/{P}")
    assert status == 200 and st["status"] == "open" and st["version"] == 0
    status, body = call("mgr", f"/api/statements/{R}/{P}/review", {"version": 0})
    assert status == 409 and body["code"] == "invalid_state"

    # the admin closes the period
    status, body = call("admin", f"/api/periods/{P}/close", {})
    assert status == 200, body
    assert body["record"]["action"] == "close_period"
    status, body = call("admin", f"/api/periods/{P}/close", {})
    assert status == 409 and "already closed" in body["error"]
    wait_until(lambda: P in call("admin", "/api/status")[1]["closed_periods"], 30, "closed")
    status, st = call("rep", f"/api/statements/{R}/{P}")
    assert (st["status"], st["version"]) == ("closed", 1)
    total = st["totals"]
    assert total and all(Decimal(v) != 0 for v in total.values())

    # a delta caused in the closed period is booked in the next one, as an adjustment
    publish_events(_one_more_order(env, R), env.settings.bootstrap, env.settings.topics)

    def prior() -> list[Any]:
        return list(call("rep", f"/api/statements/{R}/{NEXT}")[1]["prior_period_adjustments"])

    wait_until(lambda: bool(prior()), 60, "a prior-period adjustment in the next period")
    assert prior()[0]["origin_period"] == P
    assert call("rep", f"/api/statements/{R}/{P}")[1]["totals"] == total

    # review: not by another team's manager, not by a manager of their own statement
    status, body = call("mgr-west", f"/api/statements/{R}/{P}/review", {"version": 1})
    assert status == 403 and body["code"] == "forbidden"
    status, body = call("mgr-self", "/api/statements/rep-010/2026-11/review", {"version": 1})
    assert status == 403 and body["code"] == "segregation"
    # the same command twice: applied once, the same answer
    review = {"version": 1, "command_id": "review-" + R}
    status, first = call("mgr", f"/api/statements/{R}/{P}/review", review)
    assert status == 200, first
    status, again = call("mgr", f"/api/statements/{R}/{P}/review", review)
    assert status == 200 and again == first

    # two approvals at once: one wins, the other is a conflict
    results: list[tuple[int, Any]] = []

    def approve(who: str) -> None:
        results.append(call(who, f"/api/statements/{R}/{P}/approve", {"version": 2}))

    threads = [threading.Thread(target=approve, args=(w,)) for w in ("fin", "fin2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(s for s, _ in results)
    assert codes == [200, 409], results
    loser = next(b for s, b in results if s == 409)
    assert loser["code"] == "conflict" and "reload" in loser["error"]
    winner = next(b for s, b in results if s == 200)["record"]
    assert winner["amounts"] == total

    # payment: must equal the approved total, with a reference
    wrong = {c: str(Decimal(v) + Decimal("0.01")) for c, v in total.items()}
    status, body = call(
        "fin", f"/api/statements/{R}/{P}/pay", {"version": 3, "amounts": wrong, "reference": "X"}
    )
    assert status == 422 and body["code"] == "amount_mismatch"
    status, body = call(
        "fin", f"/api/statements/{R}/{P}/pay", {"version": 3, "amounts": total, "reference": ""}
    )
    assert status == 400 and "reference" in body["error"]
    status, body = call(
        "fin", f"/api/statements/{R}/{P}/pay", {"version": 3, "amounts": total, "reference": NASTY}
    )
    assert status == 200, body
    status, st = call("rep", f"/api/statements/{R}/{P}")
    assert st["status"] == "paid" and st["reference"] == NASTY and st["paid"] == total

    # a statement returned with a script-shaped reason, shown verbatim
    b = "rep-001"
    assert call("mgr", f"/api/statements/{b}/{P}/review", {"version": 1})[0] == 200
    status, body = call("fin", f"/api/statements/{b}/{P}/return", {"version": 2, "reason": NASTY})
    assert status == 200 and body["record"]["reason"] == NASTY
    st = call("rep-other", f"/api/statements/{b}/{P}")[1]
    assert st["status"] == "closed" and st["return_reason"] == NASTY
    # finance that is also a rep cannot approve their own statement
    assert call("mgr", f"/api/statements/rep-007/{P}/review", {"version": 1})[0] == 200
    status, body = call("fin-rep", f"/api/statements/rep-007/{P}/approve", {"version": 2})
    assert status == 403 and body["code"] == "segregation"

    # the audit trail of the walk, in order, with refusals
    history = call("rep", f"/api/statements/{R}/{P}/history")[1]["history"]
    steps = [(h["action"], h["outcome"], h["code"]) for h in history]
    assert steps[:2] == [("review", "refused", "invalid_state"), ("close_period", "applied", "")]
    applied = [
        (h["action"], h["state_before"], h["state_after"])
        for h in history
        if h["outcome"] == "applied"
    ]
    assert applied == [
        ("close_period", "open", "closed"),
        ("review", "closed", "reviewed"),
        ("approve", "reviewed", "approved"),
        ("pay", "approved", "paid"),
    ]
    assert ("approve", "refused", "conflict") in steps
    assert ("pay", "refused", "amount_mismatch") in steps
    assert [h["command_id"] for h in history].count("review-" + R) == 1
    pay = next(h for h in history if h["action"] == "pay" and h["outcome"] == "applied")
    assert pay["reference"] == NASTY and pay["actor_id"] == env.users["fin"].user_id

    # refusals of requests are audited too, with who and what
    records = call("admin", "/api/audit?limit=100000")[1]["records"]
    assert any(r["code"] == "unauthenticated" for r in records)
    assert any(
        r["code"] == "forbidden" and r["actor_id"] == env.users["rep-other"].user_id
        for r in records
    )
    # the rep's name (script-shaped) is kept verbatim
    assert call("rep", "/api/me")[1]["user"]["name"] == NASTY

    # queues and payout history
    queues = call("fin", f"/api/queues?period={P}")[1]
    assert any(r["rep_id"] == "rep-007" for r in queues["approve"])
    assert any(r["rep_id"] == b for r in call("mgr", f"/api/queues?period={P}")[1]["review"])
    payouts = call("fin", "/api/payouts")[1]["payouts"]
    assert [(p["rep_id"], p["reference"]) for p in payouts] == [(R, NASTY)]

    # the CLI: audit, payroll export and confirm (through the API, with a token)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", env.settings.bootstrap)
    monkeypatch.setenv("COMSTREAM_WEB_PORT", str(env.settings.web_port))
    monkeypatch.setenv("COMSTREAM_TOPIC_PREFIX", env.settings.topics.prefix)
    monkeypatch.setenv("COMSTREAM_TOKEN", env.tokens["fin2"])
    assert cli_main(["audit", "--rep", R, "--period", P, "--json"]) == 0
    c = "rep-004"  # already paid; approve rep-010 via another finance user for payroll
    assert c == R
    assert call("mgr", f"/api/statements/rep-010/{P}/review", {"version": 1})[0] == 200
    assert call("fin", f"/api/statements/rep-010/{P}/approve", {"version": 2})[0] == 200
    assert cli_main(["payroll", "export", "--period", P, "--out", str(tmp_path)]) == 0
    exported = json.loads((tmp_path / f"payroll-{P}.json").read_text())["lines"]
    assert {ln["rep_id"] for ln in exported} == {"rep-010"}
    assert (tmp_path / f"payroll-{P}.csv").read_text().startswith("rep_id,name,period")
    bad = [
        {**ln, "amount": str(Decimal(ln["amount"]) + 1), "payout_reference": "PR-1"}
        for ln in exported
    ]
    (tmp_path / "bad.json").write_text(json.dumps({"lines": bad}))
    assert cli_main(["payroll", "confirm", str(tmp_path / "bad.json")]) == 1
    assert call("fin", f"/api/statements/rep-010/{P}")[1]["status"] == "approved"
    good = [{**ln, "payout_reference": "PR-1"} for ln in exported]
    (tmp_path / "good.json").write_text(json.dumps({"lines": good}))
    assert cli_main(["payroll", "confirm", str(tmp_path / "good.json")]) == 0
    st = call("fin", f"/api/statements/rep-010/{P}")[1]
    assert st["status"] == "paid" and st["reference"] == "PR-1"
    # the same file again: already paid, not an error (issue 18); another reference is
    capsys.readouterr()
    assert cli_main(["payroll", "confirm", str(tmp_path / "good.json")]) == 0
    assert "1 already paid, 0 refused" in capsys.readouterr().out
    other = [{**ln, "payout_reference": "PR-2"} for ln in exported]
    (tmp_path / "other.json").write_text(json.dumps({"lines": other}))
    assert cli_main(["payroll", "confirm", str(tmp_path / "other.json")]) == 1
    assert "0 paid, 0 already paid, 1 refused" in capsys.readouterr().out


# ---- issue 17: command ids, the views and the state that accepts commands ----------------


def _agrees(env: Env, record: dict[str, Any]) -> None:
    """After an accepted command, the statement's read view shows what it recorded and
    its history holds the record."""
    rep, period = record["rep_id"], record["period"]
    st = env.call("admin", f"/api/statements/{rep}/{period}")[1]
    assert (st["status"], st["version"]) == (record["state_after"], record["version_after"]), st
    assert record["audit_id"] in {h["audit_id"] for h in st["history"]}
    listed = env.call("admin", f"/api/statements?period={period}")[1]["statements"]
    (row,) = [s for s in listed if s["rep_id"] == rep]
    assert (row["status"], row["version"]) == (st["status"], st["version"])


def _rep_of_team(env: Env, team: str, taken: set[str]) -> str:
    from processors.events import RepChanged

    reps = sorted({e.rep_id for e in env.events if isinstance(e, RepChanged) and e.team_id == team})
    return next(r for r in reps if r not in taken)


def test_a_command_id_used_on_another_statement_is_a_command_of_its_own(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manager reusing another statement's command id, and finance paying with the
    period close's id (which reps see in their history), get their own records; the
    views, the queues and payroll agree with the worker's state."""
    call = env.call
    if P not in call("admin", "/api/status")[1]["closed_periods"]:
        assert call("admin", f"/api/periods/{P}/close", {})[0] == 200
        wait_until(lambda: P in call("admin", "/api/status")[1]["closed_periods"], 30, "closed")
    history = call("rep", f"/api/statements/{R}/{P}/history")[1]["history"]
    close_id = next(h["command_id"] for h in history if h["action"] == "close_period")
    used = next(
        (h["command_id"] for h in history if h["action"] == "review" and h["outcome"] == "applied"),
        close_id,
    )
    west = _rep_of_team(env, "team-west", set())
    status, body = call(
        "mgr-west", f"/api/statements/{west}/{P}/review", {"version": 1, "command_id": used}
    )
    assert status == 200, body
    assert (body["record"]["rep_id"], body["record"]["action"]) == (west, "review")
    _agrees(env, body["record"])
    # finance approves and pays another statement with the close's command id
    east = "rep-001"  # returned to closed by the walk above
    v = call("mgr", f"/api/statements/{east}/{P}")[1]["version"]
    assert call("mgr", f"/api/statements/{east}/{P}/review", {"version": v})[0] == 200
    status, body = call(
        "fin", f"/api/statements/{east}/{P}/approve", {"version": v + 1, "command_id": close_id}
    )
    assert status == 200 and body["record"]["rep_id"] == east, body
    _agrees(env, body["record"])
    total = body["record"]["amounts"]
    pay = {"version": v + 2, "amounts": total, "reference": "PR-17", "command_id": close_id + "-p"}
    status, body = call("fin", f"/api/statements/{east}/{P}/pay", pay)
    assert status == 200 and body["record"]["action"] == "pay", body
    _agrees(env, body["record"])
    # the same id again for something else on the same statement: 409, nothing changes
    status, body = call(
        "fin",
        f"/api/statements/{east}/{P}/return",
        {"version": v + 3, "reason": "x", "command_id": close_id + "-p"},
    )
    assert status == 409 and body["code"] == "reused_id", body
    # the same pay again: the first answer
    status, again = call("fin", f"/api/statements/{east}/{P}/pay", pay)
    assert status == 200 and again["record"]["state_after"] == "paid"
    st = call("fin", f"/api/statements/{east}/{P}")[1]
    assert (st["status"], st["reference"]) == ("paid", "PR-17")
    # payroll never lists a statement the worker holds as paid
    monkeypatch.setenv("COMSTREAM_WEB_PORT", str(env.settings.web_port))
    monkeypatch.setenv("COMSTREAM_TOKEN", env.tokens["fin2"])
    assert cli_main(["payroll", "export", "--period", P, "--out", str(tmp_path)]) == 0
    exported = json.loads((tmp_path / f"payroll-{P}.json").read_text())["lines"]
    assert east not in {ln["rep_id"] for ln in exported}
    assert west not in {
        r["rep_id"] for r in call("mgr-west", f"/api/queues?period={P}")[1]["review"]
    }


# ---- issue 17: malformed bodies are 400s with a clear message -----------------------------


def _post_raw(env: Env, who: str, path: str, data: bytes, content_type: str) -> tuple[int, Any]:
    req = urllib.request.Request(env.settings.web_url + path, data=data, method="POST")
    req.add_header("Content-Type", content_type)
    req.add_header("Authorization", f"Bearer {env.tokens[who]}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


DEEP = b"[" * 30_000 + b"]" * 30_000  # under the size limit: refused for its depth
BAD_BODIES = [
    ("deep-array", DEEP, "application/json"),
    ("deep-object", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    ("text-plain", b'{"version": 1}', "text/plain"),
    ("form", b"version=1", "application/x-www-form-urlencoded"),
    ("not-json", b"{version: 1", "application/json"),
    ("not-utf8", b'{"version": 1, "reason": "\xff"}', "application/json"),
    ("array", b"[1, 2]", "application/json"),
    ("nan", b'{"version": NaN}', "application/json"),
    ("huge-int", b'{"version": ' + b"9" * 5000 + b"}", "application/json"),
]


@pytest.mark.parametrize(("name", "data", "ctype"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_a_malformed_body_is_a_400_with_a_clear_message(
    env: Env, name: str, data: bytes, ctype: str
) -> None:
    status, body = _post_raw(env, "mgr", f"/api/statements/{R}/{P}/review", data, ctype)
    assert status == 400, (name, status, body)
    assert isinstance(body, dict) and body["code"] == "invalid", body
    assert body["error"] and "<class" not in body["error"] and "Traceback" not in body["error"]


def test_a_body_over_the_limit_is_a_413(env: Env) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # the body: refused before it is parsed
    status, body = _post_raw(
        env, "mgr", f"/api/statements/{R}/{P}/review", deep, "application/json"
    )
    assert status == 413 and body["code"] == "invalid", body
    data = json.dumps({"version": 1, "reason": "x" * 300_000}).encode()
    status, body = _post_raw(
        env, "mgr", f"/api/statements/{R}/{P}/return", data, "application/json"
    )
    assert status == 413 and "bytes" in body["error"], body


@pytest.mark.parametrize(
    "fields",
    [
        {"version": 3, "amounts": {"USD": "1e999999999"}, "reference": "R"},
        {"version": 3, "amounts": {"USD": 1e999999999}, "reference": "R"},
        {"version": 3, "amounts": {"USD": "1E-999999999"}, "reference": "R"},
        {"version": 3, "amounts": {"USD": {"$gt": 0}}, "reference": "R"},
        {"version": 3, "amounts": ["USD", "1"], "reference": "R"},
        {"version": 3, "amounts": {"usd dollars": "1"}, "reference": "R"},
        {"version": "3", "amounts": {"USD": "1"}, "reference": "R"},
        {"version": 3.0, "amounts": {"USD": "1"}, "reference": "R"},
        {"version": True, "amounts": {"USD": "1"}, "reference": "R"},
        {"version": 10**30, "amounts": {"USD": "1"}, "reference": "R"},
        {"version": 3, "amounts": {"USD": "1"}, "reference": ["R"]},
        {"version": 3, "amounts": {"USD": "1"}, "reference": "R", "command_id": {"a": 1}},
        {"version": 3, "amounts": {"USD": "1"}, "reference": "R", "command_id": "x" * 1000},
    ],
    ids=lambda f: json.dumps(f)[:60],
)
def test_a_refused_well_formed_command_is_a_400_and_audited_with_its_code(
    env: Env, fields: dict[str, Any]
) -> None:
    data = json.dumps(fields).encode()  # 1e999999999 as a float is written "Infinity"
    if "1e999999999" in str(fields) or fields["amounts"] == {"USD": float("inf")}:
        data = data.replace(b"Infinity", b"1e999999999")
    status, body = _post_raw(env, "fin", f"/api/statements/{R}/{P}/pay", data, "application/json")
    assert status == 400, (status, body)
    assert body["code"] == "invalid" and body["audit_id"], body
    assert "<class" not in body["error"] and "decimal.Overflow" not in body["error"], body

    def audited() -> bool:
        records = env.call("admin", f"/api/audit?limit=100000&period={P}")[1]["records"]
        return any(r["audit_id"] == body["audit_id"] and r["code"] == "invalid" for r in records)

    wait_until(audited, 30, "the refusal in the audit log")


# ---- issue 17: junk identifiers, and closes of periods that have not ended -----------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/statements/no-such-rep/2026-12", 404),
        ("/api/statements/no-such-rep/2026-12/history", 404),
        (f"/api/reps/no-such-rep/statement?period={P}", 404),
        (f"/api/reps/no-such-rep/statement.html?period={P}", 404),
        (f"/api/statements/{R}/2026-13", 400),
        (f"/api/statements/{R}/0000-01", 400),
        (f"/api/statements/{R}/9999-12", 400),
        (f"/api/statements/{R}/2026-Q5/history", 400),
        (f"/api/statements/{R}/2026-1/history", 400),
        ("/api/queues?period=junk", 400),
        ("/api/payouts?period=0000-01", 400),
    ],
)
def test_junk_reps_and_periods_are_not_answered_as_if_they_existed(
    env: Env, path: str, status: int
) -> None:
    got, body = env.call("fin", path)
    assert got == status, (path, got, body)
    assert body["error"]


def test_commands_on_junk_reps_and_periods_are_refused(env: Env) -> None:
    status, body = env.call("mgr", f"/api/statements/no-such-rep/{P}/review", {"version": 1})
    assert status == 404, body
    for period in ("0000-01", "9999-12", "2026-13", "junk"):
        status, body = env.call("admin", f"/api/periods/{period}/close", {})
        assert status in (400, 404), (period, status, body)
        assert status == 400 or period == "junk"


def test_a_period_that_has_not_ended_or_that_no_plan_uses_closes_only_when_forced(
    env: Env,
) -> None:
    call = env.call
    for period, code in (("2099-06", "period_not_ended"), ("2026-Q3", "period_unused")):
        status, body = call("admin", f"/api/periods/{period}/close", {})
        assert status == 409 and body["code"] == code, (period, body)
        assert "force" in body["error"]
        status, body = call("admin", f"/api/periods/{period}/close", {"force": True})
        assert status == 400 and body["code"] == "invalid" and "reason" in body["error"], body
        assert period not in call("admin", "/api/status")[1]["closed_periods"]
    why = "payroll asked for an early close of the quarter; ticket FIN-77"
    status, body = call("admin", "/api/periods/2026-Q3/close", {"force": True, "reason": why})
    assert status == 200, body
    record = body["record"]
    assert record["reason"] == why and "forced" in record["message"]
    wait_until(lambda: "2026-Q3" in call("admin", "/api/status")[1]["closed_periods"], 30, "Q3")
    records = call("admin", "/api/audit?period=2026-Q3")[1]["records"]
    assert [(r["outcome"], r["code"]) for r in records if r["action"] == "close_period"] == [
        ("refused", "period_unused"),
        ("refused", "invalid"),
        ("applied", ""),
    ]
    status, body = call("admin", "/api/periods/2099-06/close", {"force": "yes", "reason": why})
    assert status == 400 and body["code"] == "invalid", body


# ---- issue 17: hostile plan uploads ----------------------------------------------------------


def test_a_plan_alias_bomb_is_refused_at_once_and_the_worker_stays_responsive(env: Env) -> None:
    import time

    from tests.unit.test_planfiles import alias_bomb

    bomb = alias_bomb(8)  # 9**8 nodes: tens of seconds of the event loop before the fix
    answers: list[float] = []

    def health() -> None:
        for _ in range(10):
            t = time.monotonic()
            env.worker.get("/api/health")
            answers.append(time.monotonic() - t)
            time.sleep(0.05)

    probe = threading.Thread(target=health)
    start = time.monotonic()
    probe.start()
    status, body = env.call_text("admin", "/api/plans", bomb)
    took = time.monotonic() - start
    probe.join()
    assert status == 400 and body["code"] == "invalid", body
    assert "anchors and aliases" in body["error"] and body["audit_id"]
    assert took < 2 and max(answers) < 1, (took, answers)


def test_a_plan_over_the_size_limit_or_not_text_is_refused(env: Env) -> None:
    big = "# " + "x" * 300_000 + "\n"
    status, body = env.call_text("admin", "/api/plans", big)
    assert status == 413 and "bytes" in body["error"], body
    status, body = env.call("admin", "/api/plans", None, b"\xff\xfe plan")
    assert status == 400 and "UTF-8" in body["error"], body


# ---- issue 17: open event streams end with their user's access ---------------------------


def _open_stream(env: Env, token: str) -> tuple[threading.Event, list[float]]:
    """Open the leaderboard stream with ``token``; an event set when it ends (EOF) and
    the monotonic time it ended at."""
    import time

    url = env.settings.web_url + f"/api/leaderboard/stream?period={P}&token={token}"
    resp = urllib.request.urlopen(url, timeout=60)
    assert resp.readline() == b"retry: 1000\n"
    ended = threading.Event()
    at: list[float] = []

    def read() -> None:
        try:
            while resp.readline():
                pass
        except OSError:
            pass
        at.append(time.monotonic())
        ended.set()
        resp.close()

    threading.Thread(target=read, daemon=True).start()
    return ended, at


@pytest.mark.parametrize("change", ["deactivate", "new token"])
def test_an_open_stream_ends_within_a_second_of_deactivation_or_token_change(
    env: Env, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from streams.users import token_hash

    user, token = new_user(f"Streamer {change}", "rep", "rep-004", "team-east")
    publish_user(env.settings, user)
    env.tokens["streamer"] = token
    wait_until(lambda: env.call("streamer", "/api/me")[0] == 200, 30, "the new user")
    ended, at = _open_stream(env, token)
    time.sleep(1.5)
    assert not ended.is_set()
    monkeypatch.setenv("KAFKA_BOOTSTRAP", env.settings.bootstrap)
    monkeypatch.setenv("COMSTREAM_TOPIC_PREFIX", env.settings.topics.prefix)
    if change == "deactivate":
        assert cli_main(["users", "deactivate", user.user_id]) == 0
    else:
        publish_user(env.settings, replace(user, token_sha256=token_hash(token + "-rotated")))
    done = time.monotonic()
    assert ended.wait(10), "the stream is still open"
    print(f"stream ended {at[0] - done:.3f} s after the {change}")
    assert at[0] - done < 1.0, at[0] - done
    assert env.call("streamer", "/api/me")[0] == 401


# ---- issue 17: silent money shown as exceptions ---------------------------------------------


def test_an_overpaid_order_is_listed_as_an_exception(env: Env) -> None:
    paid = next(e for e in env.events if isinstance(e, PaymentReceived))
    over = replace(
        paid, event_id="overpay-17", payment_id="overpay-17", amount=Decimal("999999999.00")
    )
    publish_events([over], env.settings.bootstrap, env.settings.topics)

    def listed() -> list[dict[str, Any]]:
        rows = env.call("fin", "/api/exceptions")[1]["overpaid"]
        return [r for r in rows if r["order_id"] == paid.order_id]

    wait_until(lambda: bool(listed()), 60, "the overpaid order among the exceptions")
    (row,) = listed()
    assert Decimal(row["excess"]) == Decimal(row["paid"]) - Decimal(row["total"]) > 999_000_000
    assert env.call("rep", "/api/exceptions")[0] == 403
