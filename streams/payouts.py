"""The statement lifecycle in the worker (docs/payouts.md): the command agent, the
authentication and authorization of every ``/api`` route, and the payout routes.

Wiring only; the lifecycle itself is :mod:`processors.payouts`.

- ``commission.statement-commands`` (key ``rep|period``; a period's close ``|period``)
  carries :class:`~processors.payouts.StatementCommand`; the agent applies each to the
  state in the ``statements`` table and sends the audit record to ``commission.audit``
  (and, for a close, the engine's ``PeriodClosed`` to ``commission.periods``).
- The sink worker's :class:`~streams.audit_sink.AuditSink` writes the audit topic into
  ClickHouse; a POST route sends the command and answers with its outcome once the
  record is stored: 200 applied, 403 forbidden/segregation, 409 conflict/invalid state,
  400 invalid, 422 amount mismatch, 202 when the outcome did not arrive in time.
- Every ``/api`` route has a policy in :data:`ROUTE_POLICY`; a middleware checks the
  bearer token (``Authorization: Bearer``, or ``?token=`` on a GET, for EventSource),
  the role and the ownership, and logs and audits every refusal.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import faust
from aiohttp import web as aioweb
from faust.web import Request, Response, View

from processors import serde
from processors.errors import ComstreamError, SerdeError
from processors.events import PeriodClosed, PlanPublished
from processors.payouts import (
    HTTP_STATUS_OF_CODE,
    PERIOD_KEY_REP,
    Action,
    AuditRecord,
    Outcome,
    Role,
    StatementCommand,
    StatementContext,
    StatementState,
    apply_command,
    audit_id_of,
    can_read_statement,
    normalize_amounts,
    period_planned,
    period_problem,
    plan_record,
    refusal_record,
    statement_key,
)
from schemas.codec import encode
from sinks.audit import AuditStore

from .app import no_store
from .audit_sink import wait_outcome
from .bodies import MAX_COMMAND_BYTES, MAX_PLAN_BYTES, BadBody, json_object, read_limited
from .users import User, auth_enabled
from .web_ui import ACCESS_KEY, _asset

if TYPE_CHECKING:
    from .app import WorkerState

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}

ALL = frozenset(Role)
STAFF = frozenset({Role.MANAGER, Role.FINANCE, Role.ADMIN})
BOOKS = frozenset({Role.FINANCE, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may call a route: ``None`` roles = public; ``owner``: the route names a
    ``rep_id`` whose statements the caller must be allowed to read."""

    roles: frozenset[Role] | None
    owner: bool = False


ROUTE_POLICY: dict[str, Policy] = {
    "/api/health": Policy(None),
    "/api/openapi.json": Policy(None),
    "/api/me": Policy(ALL),
    "/api/leaderboard": Policy(ALL),
    "/api/leaderboard/stream": Policy(ALL),
    "/api/filters": Policy(ALL),
    "/api/status": Policy(STAFF),
    "/api/totals": Policy(BOOKS),
    "/api/performance": Policy(STAFF),
    "/api/customers/{customer_id}": Policy(STAFF),
    "/api/orders/commission": Policy(BOOKS),
    "/api/exceptions": Policy(BOOKS),
    "/api/reps/{rep_id}/statement": Policy(ALL, owner=True),
    "/api/reps/{rep_id}/statement.html": Policy(ALL, owner=True),
    "/api/statements": Policy(ALL),
    "/api/statements/{rep_id}/{period}": Policy(ALL, owner=True),
    "/api/statements/{rep_id}/{period}/history": Policy(ALL, owner=True),
    "/api/statements/{rep_id}/{period}/review": Policy(frozenset({Role.MANAGER})),
    "/api/statements/{rep_id}/{period}/return": Policy(frozenset({Role.MANAGER, Role.FINANCE})),
    "/api/statements/{rep_id}/{period}/approve": Policy(frozenset({Role.FINANCE})),
    "/api/statements/{rep_id}/{period}/pay": Policy(frozenset({Role.FINANCE})),
    "/api/periods/{period}/close": Policy(frozenset({Role.ADMIN})),
    "/api/plans": Policy(frozenset({Role.ADMIN})),
    "/api/queues": Policy(STAFF),
    "/api/payouts": Policy(BOOKS),
    "/api/audit": Policy(BOOKS),
}
"""Every ``/api`` route's policy (a test checks that each registered route has one)."""

HTTP_STATUS = HTTP_STATUS_OF_CODE
OUTCOME_TIMEOUT = 20.0
MAX_VERSION = 1_000_000
BODY_FIELDS: dict[Action, frozenset[str]] = {
    Action.REVIEW: frozenset({"version", "command_id"}),
    Action.RETURN: frozenset({"version", "command_id", "reason"}),
    Action.APPROVE: frozenset({"version", "command_id"}),
    Action.PAY: frozenset({"version", "command_id", "amounts", "reference"}),
    Action.CLOSE_PERIOD: frozenset({"version", "command_id", "force", "reason"}),
}
"""The fields each command's body may hold; any other is refused (400)."""
_COMMAND_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
USER_KEY = "comstream.user"


def _now() -> datetime:
    return datetime.now(UTC)


def _rec_json(r: AuditRecord) -> dict[str, Any]:
    return {
        "audit_id": r.audit_id,
        "command_id": r.command_id,
        "action": r.action,
        "outcome": r.outcome.value,
        "code": r.code,
        "message": r.message,
        "rep_id": r.rep_id,
        "period": r.period,
        "actor_id": r.actor_id,
        "actor_role": r.actor_role,
        "at": r.at.isoformat(timespec="milliseconds"),
        "state_before": r.state_before,
        "state_after": r.state_after,
        "version_before": r.version_before,
        "version_after": r.version_after,
        "reason": r.reason,
        "reference": r.reference,
        "amounts": {c: str(a) for c, a in r.amounts},
    }


def _money(value: Any) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


class Payouts:
    """The topics and table of the lifecycle, and what the routes share."""

    def __init__(self, app: faust.App, ws: WorkerState) -> None:
        s = ws.settings
        t = s.topics
        n = s.partitions
        self.ws = ws
        self.commands = app.topic(t.statement_commands, partitions=n, **RAW)
        self.audit_topic = app.topic(t.audit, partitions=n, **RAW)
        self.periods = app.topic(t.periods, partitions=1, **RAW)
        self.plans = app.topic(t.plans, partitions=1, **RAW)
        self.table = app.Table(
            "statements", partitions=n, default=None, key_type=bytes, value_type=bytes
        )

    def context(self, rep_id: str, period: str) -> StatementContext:
        dims = self.ws.dims
        rep = dims.reps.get(rep_id)
        planned = True
        if rep_id == PERIOD_KEY_REP and period_problem(period) is None:
            kinds = [(p.period, p.effective_from) for p in dims.plans.versions]
            planned = period_planned(period, kinds)
        return StatementContext(
            period_closed=period in dims.closed_periods,
            rep_team=rep.team_id if rep is not None else None,
            rep_manager=rep.manager_id if rep is not None else None,
            period_planned=planned,
        )

    def rep_known(self, rep_id: str) -> bool:
        """Whether ``rep_id`` names a rep: one of ``crm.reps``, or one with deltas in the
        ledger (blocking: may query ClickHouse)."""
        if rep_id in self.ws.dims.reps:
            return True
        store = self.ws.store
        if store is None:
            return False
        rows = store.query(
            "SELECT 1 FROM rep_period_totals WHERE rep_id = {r:String} LIMIT 1", {"r": rep_id}
        )
        return bool(rows)

    async def check_names(
        self, request: aioweb.Request, user: User | None, what: str
    ) -> aioweb.StreamResponse | None:
        """The refusal of a route whose path names a malformed or impossible period
        (400) or an unknown rep (404), or None."""
        period = request.match_info.get("period")
        rep_id = request.match_info.get("rep_id")
        if period is not None:
            problem = period_problem(period)
            if problem is not None:
                return cast(
                    aioweb.StreamResponse,
                    await self.refuse(user, what, problem, 400, rep_id or "", "", "invalid"),
                )
        if rep_id is not None:
            loop = asyncio.get_running_loop()
            if not await loop.run_in_executor(None, self.rep_known, rep_id):
                return cast(
                    aioweb.StreamResponse,
                    await self.refuse(
                        user, what, f"no rep {rep_id[:80]!r}", 404, "", period or "", "not_found"
                    ),
                )
        return None

    async def apply(self, key: bytes, cmd: StatementCommand) -> None:
        """Apply one command (the agent's body): state, audit record, close event."""
        raw = self.table.get(key)
        state: StatementState | None = None if raw is None else serde.loads(raw)
        new_state, outputs = apply_command(state, cmd, self.context(cmd.rep_id, cmd.period))
        if new_state is not state:
            self.table[key] = serde.dumps(new_state)
        for out in outputs:
            if isinstance(out, PeriodClosed):
                self.ws.dims.apply_event(out)  # this worker's statements see it at once
                await self.periods.send(key=out.period.encode(), value=encode(out))
                continue
            if out.outcome == Outcome.REFUSED:
                log.warning(
                    "refused %s of %s|%s by %s (%s): %s %s",
                    out.action,
                    out.rep_id,
                    out.period,
                    out.actor_id,
                    out.actor_role,
                    out.code,
                    out.message,
                )
            await self.audit_topic.send(key=key, value=serde.dumps(out))

    async def refuse(
        self,
        user: User | None,
        what: str,
        message: str,
        status: int,
        rep_id: str = "",
        period: str = "",
        code: str | None = None,
    ) -> Any:
        """Log and audit a request refused before it became a command; the response
        (``status``, ``{"error", "code", "audit_id"}``). ``code`` defaults to
        ``unauthenticated`` for a 401 and ``forbidden`` otherwise."""
        actor = user.actor if user is not None else None
        who = f"{user.user_id} ({user.role})" if user is not None else "anonymous"
        log.warning("refused %s for %s: %s", what, who, message)
        if code is None:
            code = "unauthenticated" if status == 401 else "forbidden"
        record = refusal_record(
            "req-" + uuid.uuid4().hex, actor, what, message, _now(), rep_id, period, code
        )
        try:
            await asyncio.wait_for(
                self.audit_topic.send(key=b"request", value=serde.dumps(record)), timeout=5
            )
        except Exception:  # the refusal stands; the log line above keeps it
            log.exception("could not audit a refusal")
        return aioweb.json_response(
            {"error": message, "code": code, "audit_id": record.audit_id}, status=status
        )


def register_payouts(app: faust.App, ws: WorkerState) -> Payouts:
    """The command agent, the auth middleware and the payout routes."""
    payouts = Payouts(app, ws)

    @app.agent(payouts.commands, concurrency=1)
    async def statement_commands(stream: faust.StreamT[bytes]) -> Any:
        async for event in stream.events():
            try:
                cmd = serde.loads(event.message.value or b"")
            except SerdeError as exc:
                cmd = exc
            if not isinstance(cmd, StatementCommand):
                log.error("not a statement command at offset %s", event.message.offset)
            else:
                await payouts.apply(event.key or b"", cmd)
            yield None

    _register_middleware(app, ws, payouts)
    _register_routes(app, ws, payouts)
    return payouts


# ---- authentication and authorization --------------------------------------------------


def _bearer(request: aioweb.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    if request.method == "GET":
        return request.query.get("token") or None
    return None


def _register_middleware(app: faust.App, ws: WorkerState, payouts: Payouts) -> None:
    Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]

    @aioweb.middleware
    async def authorize(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else request.path
        policy = ROUTE_POLICY.get(pattern)
        what = f"{request.method} {request.path}"
        token = _bearer(request)
        user = ws.users.by_token(token) if token else None
        if user is not None:
            request[USER_KEY] = user
            held = token or ""
            # a long response (the event stream) asks again while it runs
            request[ACCESS_KEY] = lambda: ws.users.by_token(held) is not None
        if policy is None:
            if request.match_info.http_exception is not None:
                return await handler(request)  # 404/405 as usual
            return cast(aioweb.StreamResponse, await payouts.refuse(user, what, "no policy", 403))
        if policy.roles is None:
            return await handler(request)
        if not auth_enabled(ws.settings, ws.users):
            return await payouts.check_names(request, user, what) or await handler(request)
        if user is None:
            message = "a valid bearer token is required" if token else "authentication required"
            return cast(aioweb.StreamResponse, await payouts.refuse(None, what, message, 401))
        role = Role(user.role)
        rep_id = request.match_info.get("rep_id", "")
        period = request.match_info.get("period", "")
        if role not in policy.roles:
            allowed = ", ".join(sorted(r.value for r in policy.roles))
            message = f"a {role.value} may not call {request.method} {pattern} (allowed: {allowed})"
            return cast(
                aioweb.StreamResponse,
                await payouts.refuse(user, what, message, 403, rep_id, period),
            )
        if policy.owner:
            rep = ws.dims.reps.get(rep_id)
            team = rep.team_id if rep is not None else None
            manager = rep.manager_id if rep is not None else None
            if not can_read_statement(user.actor, rep_id, team, manager):
                message = f"{user.user_id} ({role.value}) may not read the statements of {rep_id}"
                return cast(
                    aioweb.StreamResponse,
                    await payouts.refuse(user, what, message, 403, rep_id, period),
                )
        return await payouts.check_names(request, user, what) or await handler(request)

    web: Any = app.web  # faust.web.drivers.aiohttp.Web
    web.web_app.middlewares.append(authorize)


def _user(request: Any) -> User | None:
    return cast(User | None, request.get(USER_KEY))


# ---- routes ----------------------------------------------------------------------------


def _register_routes(app: faust.App, ws: WorkerState, payouts: Payouts) -> None:
    async def run(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def audit_store() -> AuditStore | None:
        return AuditStore(ws.store) if ws.store is not None else None

    def readable(user: User | None, rep_id: str) -> bool:
        if user is None:
            return not auth_enabled(ws.settings, ws.users)
        rep = ws.dims.reps.get(rep_id)
        return can_read_statement(
            user.actor,
            rep_id,
            rep.team_id if rep is not None else None,
            rep.manager_id if rep is not None else None,
        )

    def statement_rows(period: str) -> list[dict[str, Any]]:
        """Every statement of ``period`` with its state and totals."""
        audit = audit_store()
        assert audit is not None and ws.store is not None
        states = audit.statement_states(period)
        totals: dict[str, dict[str, str]] = {}
        for rep_id, currency, amount in ws.store.query(
            "SELECT rep_id, currency, sum(amount) FROM rep_period_totals "
            "WHERE booked_period = {p:String} GROUP BY rep_id, currency",
            {"p": period},
        ):
            totals.setdefault(str(rep_id), {})[str(currency)] = _money(amount)
        closed = period in ws.dims.closed_periods
        reps = sorted(set(totals) | {r for r, _ in states})
        out = []
        for rep_id in reps:
            st = states.get((rep_id, period))
            base = {
                "rep_id": rep_id,
                "period": period,
                "name": ws.dims.reps[rep_id].name if rep_id in ws.dims.reps else None,
                "team_id": ws.dims.reps[rep_id].team_id if rep_id in ws.dims.reps else None,
                "status": "closed" if closed else "open",
                "version": 1 if closed else 0,
                "reviewed_by": None,
                "approved_by": None,
                "approved_totals": {},
                "paid": {},
                "reference": "",
                "return_reason": "",
                "totals": totals.get(rep_id, {}),
            }
            if st is not None:
                base.update({k: v for k, v in st.items() if k != "totals"})
                base["approved_totals"] = st["totals"]
            out.append(base)
        return out

    def periods_of_interest(query: Any) -> list[str]:
        """The ``period`` of the query, or every closed one; ValueError if malformed."""
        period = query.get("period")
        if period:
            problem = period_problem(period)
            if problem is not None:
                raise ValueError(problem)
            return [period]
        return sorted(ws.dims.closed_periods)

    def shell() -> Any:
        body = _asset("index.html") or b""
        return aioweb.Response(
            text=body.decode("utf-8"),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @app.page("/queues")
    class QueuesPage(View):
        async def get(self, request: Request) -> Any:
            return shell()

    @app.page("/payouts")
    class PayoutsPage(View):
        async def get(self, request: Request) -> Any:
            return shell()

    @app.page("/api/me")
    class Me(View):
        async def get(self, request: Request) -> Response:
            user = _user(request)
            return self.json(
                {
                    "auth": auth_enabled(ws.settings, ws.users),
                    "user": user.public() if user is not None else None,
                }
            )

    @app.page("/api/statements")
    class Statements(View):
        async def get(self, request: Request) -> Response:
            if ws.store is None:
                return no_store(self)
            user = _user(request)
            status = request.query.get("status")
            rows: list[dict[str, Any]] = []
            try:
                periods = periods_of_interest(request.query)
            except ValueError as exc:
                return self.json({"error": str(exc), "code": "invalid"}, status=400)
            for period in periods:
                rows.extend(await run(statement_rows, period))
            rows = [
                r
                for r in rows
                if readable(user, r["rep_id"]) and (status is None or r["status"] == status)
            ]
            return self.json({"statements": rows})

    @app.page("/api/queues")
    class Queues(View):
        async def get(self, request: Request) -> Response:
            if ws.store is None:
                return no_store(self)
            user = _user(request)
            rows: list[dict[str, Any]] = []
            try:
                periods = periods_of_interest(request.query)
            except ValueError as exc:
                return self.json({"error": str(exc), "code": "invalid"}, status=400)
            for period in periods:
                rows.extend(await run(statement_rows, period))
            mine = [r for r in rows if readable(user, r["rep_id"])]
            not_own = [r for r in mine if user is None or r["rep_id"] != user.rep_id]
            return self.json(
                {
                    "review": [r for r in not_own if r["status"] == "closed"],
                    "approve": [
                        r
                        for r in not_own
                        if r["status"] == "reviewed"
                        and (user is None or r["reviewed_by"] != user.user_id)
                    ],
                    "pay": [r for r in not_own if r["status"] == "approved"],
                }
            )

    @app.page("/api/payouts")
    class PayoutHistory(View):
        async def get(self, request: Request) -> Response:
            if ws.store is None:
                return no_store(self)
            period = request.query.get("period") or None
            problem = period_problem(period) if period is not None else None
            if problem is not None:
                return self.json({"error": problem, "code": "invalid"}, status=400)
            audit = audit_store()
            assert audit is not None
            states = await run(audit.statement_states, period)
            rows = sorted(
                (s for s in states.values() if s["status"] == "paid"),
                key=lambda s: (s.get("paid_at", ""), s["rep_id"]),
                reverse=True,
            )
            return self.json({"payouts": rows})

    @app.page("/api/audit")
    class Audit(View):
        async def get(self, request: Request) -> Response:
            if ws.store is None:
                return no_store(self)
            audit = audit_store()
            assert audit is not None
            q = request.query
            try:
                limit = max(1, min(100_000, int(q.get("limit", "1000"))))
            except ValueError:
                return self.json({"error": "limit must be an integer"}, status=400)
            records = await run(
                lambda: audit.records(q.get("rep") or None, q.get("period") or None, limit)
            )
            return self.json({"records": records})

    def statement_view(rep_id: str, period: str) -> dict[str, Any]:
        audit = audit_store()
        assert audit is not None and ws.store is not None
        rows = [r for r in statement_rows(period) if r["rep_id"] == rep_id]
        closed = period in ws.dims.closed_periods
        state = (
            rows[0]
            if rows
            else {
                "rep_id": rep_id,
                "period": period,
                "status": "closed" if closed else "open",
                "version": 1 if closed else 0,
                "totals": {},
            }
        )
        page = ws.store.statement_page(rep_id, period)  # lines and totals, one read
        state["totals"] = {c: _money(e["total"]) for c, e in page.totals["currencies"].items()}
        prior: dict[str, dict[str, Decimal]] = {}
        for line in page.lines:
            if line["origin_period"] != line["booked_period"]:
                per = prior.setdefault(line["origin_period"], {})
                per[line["currency"]] = per.get(line["currency"], Decimal(0)) + line["amount"]
        state["prior_period_adjustments"] = [
            {"origin_period": p, "amounts": {c: _money(a) for c, a in sorted(v.items())}}
            for p, v in sorted(prior.items())
        ]
        state["history"] = audit.statement_history(rep_id, period)
        return state

    @app.page("/api/statements/{rep_id}/{period}")
    class StatementState_(View):
        async def get(self, request: Request, rep_id: str, period: str) -> Response:
            if ws.store is None:
                return no_store(self)
            return self.json(await run(statement_view, rep_id, period))

    @app.page("/api/statements/{rep_id}/{period}/history")
    class StatementHistory(View):
        async def get(self, request: Request, rep_id: str, period: str) -> Response:
            audit = audit_store()
            if audit is None:
                return no_store(self)
            return self.json({"history": await run(audit.statement_history, rep_id, period)})

    async def send_command(
        view: View,
        request: Any,
        action: Action,
        rep_id: str,
        period: str,
        build: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Response:
        """Build the command from the body, send it, answer with its outcome."""
        user = _user(request)
        if user is None:
            return cast(
                Response,
                await payouts.refuse(
                    None,
                    f"{request.method} {request.path}",
                    "commands need a user: create one with `comstream users add`",
                    401,
                    rep_id,
                    period,
                ),
            )
        sink = ws.audit_sink
        if ws.store is None or sink is None:
            return no_store(view)
        what = f"{request.method} {request.path}"
        try:
            data = await read_limited(request, MAX_COMMAND_BYTES)
            body = json_object(data, request.headers.get("Content-Type", ""))
        except BadBody as bad:
            return cast(
                Response,
                await payouts.refuse(
                    user, what, bad.message, bad.status, rep_id, period, "invalid"
                ),
            )
        try:
            unknown = sorted(set(body) - BODY_FIELDS[action])
            if unknown:
                raise ValueError(
                    f"unknown field {', '.join(repr(k[:40]) for k in unknown[:5])}: "
                    f"{action.value} takes {', '.join(sorted(BODY_FIELDS[action]))}"
                )
            extra = build(body) if build is not None else {}
            version = body.get("version")
            if action == Action.CLOSE_PERIOD and version is None:
                version = 1 if period in ws.dims.closed_periods else 0
            if not isinstance(version, int) or isinstance(version, bool):
                raise ValueError("version (the statement version you saw) must be an integer")
            if not 0 <= version <= MAX_VERSION:
                raise ValueError(f"version must be between 0 and {MAX_VERSION}")
            reason = body.get("reason", "")
            if not isinstance(reason, str):
                raise ValueError("reason must be a string")
            command_id = body.get("command_id") or uuid.uuid4().hex
            if not isinstance(command_id, str) or not _COMMAND_ID.fullmatch(command_id):
                raise ValueError(
                    "command_id must be a string of 1 to 200 letters, digits and . _ : - "
                )
        except (ValueError, TypeError, ArithmeticError) as exc:
            # a well-formed body whose fields are refused: audited like a refused command
            return cast(
                Response,
                await payouts.refuse(user, what, str(exc), 400, rep_id, period, "invalid"),
            )
        cmd = StatementCommand(
            command_id=command_id,
            action=action,
            rep_id=rep_id,
            period=period,
            actor=user.actor,
            issued_at=_now(),
            expected_version=version,
            reason=reason,
            **extra,
        )
        key = statement_key(rep_id, period).encode()
        await payouts.commands.send(key=key, value=serde.dumps(cmd))
        audit_id = audit_id_of(cmd)
        record = await run(wait_outcome, sink, audit_id, OUTCOME_TIMEOUT)
        if record is None:
            return view.json(
                {
                    "command_id": command_id,
                    "audit_id": audit_id,
                    "pending": True,
                    "error": "no outcome yet",
                },
                status=202,
            )
        body_out = {"record": _rec_json(record)}
        if record.outcome == Outcome.APPLIED:
            return view.json(body_out)
        body_out["error"] = record.message
        body_out["code"] = record.code
        return view.json(body_out, status=HTTP_STATUS.get(record.code, 400))

    def pay_fields(body: dict[str, Any]) -> dict[str, Any]:
        amounts = body.get("amounts")
        if not isinstance(amounts, dict):
            raise ValueError('amounts must be an object {"USD": "123.45"}')
        reference = body.get("reference", "")
        if not isinstance(reference, str):
            raise ValueError("reference must be a string")
        return {"amounts": normalize_amounts(amounts), "reference": reference}

    def close_fields(body: dict[str, Any]) -> dict[str, Any]:
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise ValueError("force must be true or false")
        return {"force": force}

    @app.page("/api/statements/{rep_id}/{period}/review")
    class Review(View):
        async def post(self, request: Request, rep_id: str, period: str) -> Response:
            return await send_command(self, request, Action.REVIEW, rep_id, period)

    @app.page("/api/statements/{rep_id}/{period}/return")
    class Return(View):
        async def post(self, request: Request, rep_id: str, period: str) -> Response:
            return await send_command(self, request, Action.RETURN, rep_id, period)

    @app.page("/api/statements/{rep_id}/{period}/approve")
    class Approve(View):
        async def post(self, request: Request, rep_id: str, period: str) -> Response:
            store = ws.store
            if store is None:
                return no_store(self)
            totals = await run(store.statement_totals, rep_id, period)
            amounts = tuple(
                sorted((c, Decimal(e["total"])) for c, e in totals["currencies"].items())
            )
            return await send_command(
                self, request, Action.APPROVE, rep_id, period, lambda _: {"amounts": amounts}
            )

    @app.page("/api/statements/{rep_id}/{period}/pay")
    class Pay(View):
        async def post(self, request: Request, rep_id: str, period: str) -> Response:
            return await send_command(self, request, Action.PAY, rep_id, period, pay_fields)

    @app.page("/api/plans")
    class PublishPlan(View):
        """POST a plan document (the YAML or JSON text of a plan file): validated like
        ``comstream plans validate``, refused when it conflicts with a published version,
        else published to ``commission.plans`` with an audit record naming the admin."""

        async def post(self, request: Request, **_: Any) -> Response:
            from comstream.planfiles import parse_plan_text, plan_to_definition

            user = _user(request)
            raw: Any = request
            if user is None:
                return cast(
                    Response,
                    await payouts.refuse(
                        None, "POST /api/plans", "publishing a plan needs an admin user", 401
                    ),
                )
            what = "POST /api/plans"
            try:
                data = await read_limited(raw, MAX_PLAN_BYTES)
                text = data.decode("utf-8-sig")
            except BadBody as bad:
                return cast(
                    Response,
                    await payouts.refuse(user, what, bad.message, bad.status, code="invalid"),
                )
            except UnicodeDecodeError as exc:
                message = f"the plan is not UTF-8 text (byte {exc.start})"
                return cast(
                    Response, await payouts.refuse(user, what, message, 400, code="invalid")
                )

            def parse() -> dict[str, Any]:
                from processors.plans import parse_plan

                doc = parse_plan_text(text, "request")
                parse_plan(doc)
                return doc

            try:
                # off the event loop: a plan is small and refused quickly when hostile
                # (no anchors or aliases, bounded nesting), but still CPU work
                doc = await run(parse)
            except ComstreamError as exc:  # PlanFileError among them
                return cast(
                    Response, await payouts.refuse(user, what, str(exc), 400, code="invalid")
                )
            now = _now()
            event = PlanPublished(
                event_id=f"plan-{doc['plan_id']}-{doc['version']}",
                occurred_at=now,
                plan_id=str(doc["plan_id"]),
                version=int(doc["version"]),
                effective_from=datetime.fromisoformat(str(doc["effective_from"])).date(),
                definition=plan_to_definition(doc),
            )
            letter = ws.dims.check_plan(event)
            if letter is not None:
                return self.json({"error": letter.detail, "code": "conflict"}, status=409)
            await payouts.plans.send(
                key=f"{event.plan_id}@{event.version}".encode(), value=encode(event)
            )
            record = plan_record(user.actor, event.plan_id, event.version, now)
            await payouts.audit_topic.send(key=b"plans", value=serde.dumps(record))
            log.warning("plan %s@%s published by %s", event.plan_id, event.version, user.user_id)
            return self.json({"record": _rec_json(record)})

    @app.page("/api/periods/{period}/close")
    class ClosePeriod(View):
        async def post(self, request: Request, period: str) -> Response:
            return await send_command(
                self, request, Action.CLOSE_PERIOD, PERIOD_KEY_REP, period, close_fields
            )
