"""The statement lifecycle (SEMANTICS.md section 7): period close, review, return,
approval and payment, as commands applied to a statement state.

A statement is one rep's deltas booked in one period. Its states::

    open --(period closed)--> closed --review--> reviewed --approve--> approved --pay--> paid
                               ^   |                |
                               |   +---return-------+  (return: back to closed, with a reason)

The period's close is one command (:class:`ClosePeriod`, admin only) for all statements
of the period: a statement of a closed period that no command touched yet is ``closed``
at version 1 (:func:`effective_state`); one of an open period is ``open`` at version 0.

Contract of :func:`apply_command`: ``(state, command, context) -> (state, outputs)``, pure.

- Every command yields exactly one :class:`AuditRecord` (applied or refused) whose
  ``audit_id`` is :func:`audit_id_of` the command: a hash of the statement, the actor,
  the client's ``command_id`` and what the command asks. Two commands that share a
  ``command_id`` on different statements (or from different users) are two commands
  with two records; a close also yields a :class:`PeriodClosed` event.
- The same command delivered again (same statement, actor, ``command_id`` and body)
  changes nothing and yields the same outputs again (the first send may have been
  lost), never new ones. The same ``command_id`` from the same actor on the same
  statement asking something else is refused with ``reused_id``.
- A command carries the statement version it saw (``expected_version``); a different
  current version refuses it with code ``conflict`` (optimistic concurrency: of two
  approvals of the same version one wins, the other is a conflict).
- Roles: rep reads own statements only; manager reviews (and returns) the statements of
  their team; finance approves, returns reviewed statements and records payments; admin
  closes periods. Segregation: nobody reviews, returns, approves or pays their own
  statement, and nobody approves a statement they reviewed.
- A payment must equal the totals frozen at approval, currency by currency, and carry
  a payout reference.

Refusal codes: ``forbidden`` (role or ownership), ``segregation``, ``conflict`` (stale
version), ``invalid_state`` (not allowed from the current state), ``invalid`` (missing or
malformed field), ``amount_mismatch`` (payment differs from the total), ``reused_id``
(a command id already used for another command), ``period_not_ended`` and
``period_unused`` (a close of a period that has not ended everywhere, or of one whose
kind no plan computes by then; a close with ``force`` and a reason goes through, and
its record says so); :data:`HTTP_STATUS_OF_CODE` maps each
to the status the API answers with.

:func:`fold_records` folds a statement's applied audit records into the state they
record: the read views derive from it, and it equals the state :func:`apply_command`
keeps (without its history), so the views and the state that accepts commands cannot
disagree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from .errors import EngineError
from .events import PeriodClosed
from .periods import is_period, last_day, period_kind


class Role(StrEnum):
    REP = "rep"
    MANAGER = "manager"
    FINANCE = "finance"
    ADMIN = "admin"


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    PAID = "paid"


class Action(StrEnum):
    CLOSE_PERIOD = "close_period"
    REVIEW = "review"
    RETURN = "return"
    APPROVE = "approve"
    PAY = "pay"


class Outcome(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"


# the key of the period-level state (the close) in the statements table: no rep id
PERIOD_KEY_REP = ""

MAX_TEXT = 2000  # reasons and references longer than this are refused (``invalid``)

HTTP_STATUS_OF_CODE: dict[str, int] = {
    "forbidden": 403,
    "segregation": 403,
    "conflict": 409,
    "invalid_state": 409,
    "reused_id": 409,
    "period_not_ended": 409,
    "period_unused": 409,
    "invalid": 400,
    "amount_mismatch": 422,
    "unauthenticated": 401,
}
"""The HTTP status the API answers each refusal code with."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who issues a command: the authenticated user, their role, and (for a rep or a
    manager) the rep id they are and the team they belong to or lead."""

    user_id: str
    role: Role
    rep_id: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class StatementCommand:
    """A command on one statement (``rep_id``, ``period``) or, for ``close_period``, on
    a whole period (``rep_id`` is empty).

    ``amounts`` is, for ``approve``, the statement totals per currency the approver saw
    (they are frozen into the state) and, for ``pay``, the amounts paid per currency.
    ``reason`` is required for ``return``; ``reference`` (the payout reference) for
    ``pay``."""

    command_id: str
    action: Action
    rep_id: str
    period: str
    actor: Actor
    issued_at: datetime
    expected_version: int
    reason: str = ""
    reference: str = ""
    amounts: tuple[tuple[str, Decimal], ...] = ()
    force: bool = False  # a close of a period that has not ended or that no plan uses


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the audit trail: a command's outcome, applied or refused.

    ``audit_id`` is unique per command (the command id), so a record sent twice is one
    record. ``at`` is the command's time (deterministic on a re-delivery)."""

    audit_id: str
    command_id: str
    action: str
    outcome: Outcome
    code: str  # "" when applied, else the refusal code (see the module docstring)
    message: str
    rep_id: str
    period: str
    actor_id: str
    actor_role: str
    at: datetime
    state_before: str
    state_after: str
    version_before: int
    version_after: int
    reason: str = ""
    reference: str = ""
    amounts: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class StatementState:
    """The stored state of a statement (or, with an empty ``rep_id``, of a period's
    close). ``history`` holds the audit record of every command seen, in order: the
    lifecycle is a handful of commands, and it answers re-deliveries."""

    rep_id: str
    period: str
    status: Status
    version: int
    reviewed_by: str | None = None
    approved_by: str | None = None
    totals: tuple[tuple[str, Decimal], ...] = ()
    paid_amounts: tuple[tuple[str, Decimal], ...] = ()
    payout_reference: str = ""
    paid_at: datetime | None = None
    return_reason: str = ""
    history: tuple[AuditRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class StatementContext:
    """What the worker knows when it applies a command: whether the period is closed
    (the closed periods of the dimension topic), the statement rep's team and manager
    (from ``crm.reps``; None when unknown) and, for a close, whether some plan computes
    periods of its kind by then (:func:`period_planned`)."""

    period_closed: bool
    rep_team: str | None = None
    rep_manager: str | None = None
    period_planned: bool = True


class Refusal(EngineError):
    """A command refused by :func:`apply_command` (internal: it becomes a record)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def statement_key(rep_id: str, period: str) -> str:
    """The table and message key of a statement (``rep|period``; a period's close:
    ``|period``)."""
    return f"{rep_id}|{period}"


def effective_state(
    state: StatementState | None, rep_id: str, period: str, period_closed: bool
) -> StatementState:
    """The state of a statement that may never have been stored: open (version 0) while
    its period is open, closed (version 1) once it is. A state stored while the period
    was open (it holds only refused commands) is closed too once the period is."""
    if state is not None:
        if state.status == Status.OPEN and period_closed:
            # stored while open (a refused command's history): the close moved it on
            return replace(state, status=Status.CLOSED, version=state.version + 1)
        return state
    if period_closed:
        return StatementState(rep_id, period, Status.CLOSED, 1)
    return StatementState(rep_id, period, Status.OPEN, 0)


MAX_AMOUNT_DIGITS = 15  # digits before the point of an amount in a command
MAX_AMOUNT_PLACES = 12  # digits after it


def normalize_amounts(
    amounts: Mapping[str, object] | Iterable[tuple[str, object]],
) -> tuple[tuple[str, Decimal], ...]:
    """Amounts per currency as a sorted tuple of (currency, Decimal), zero amounts
    dropped, from a mapping or pairs. A currency is a three-letter upper-case code; an
    amount a decimal string, an int or a Decimal, finite, with at most
    :data:`MAX_AMOUNT_DIGITS` digits before the point and :data:`MAX_AMOUNT_PLACES` after
    it (so sums stay exact). Raises ValueError, with a message for the sender, on
    anything else."""
    items = amounts.items() if isinstance(amounts, Mapping) else amounts
    out: dict[str, Decimal] = {}
    for pair in items:
        currency, amount = pair
        if not isinstance(currency, str) or not _is_currency(currency):
            raise ValueError(f"bad currency {str(currency)[:40]!r}: a code such as USD")
        shown = str(amount)[:40]
        if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
            raise ValueError(f"bad amount for {currency}: {shown!r} is not a decimal number")
        try:
            value = Decimal(amount) if isinstance(amount, Decimal) else Decimal(str(amount))
        except ArithmeticError:
            raise ValueError(f"bad amount for {currency}: {shown!r} is not a number") from None
        if not value.is_finite():
            raise ValueError(f"bad amount for {currency}: {shown!r} is not a finite number")
        if value and (
            value.adjusted() >= MAX_AMOUNT_DIGITS
            or -int(value.as_tuple().exponent) > MAX_AMOUNT_PLACES
        ):
            raise ValueError(
                f"bad amount for {currency}: {shown!r} is out of range (at most "
                f"{MAX_AMOUNT_DIGITS} digits before the point and {MAX_AMOUNT_PLACES} after)"
            )
        out[currency] = out.get(currency, Decimal(0)) + value
    return tuple(sorted((c, a) for c, a in out.items() if a != 0))


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def _same_amounts(a: tuple[tuple[str, Decimal], ...], b: tuple[tuple[str, Decimal], ...]) -> bool:
    return normalize_amounts(a) == normalize_amounts(b)


def _fmt(amounts: tuple[tuple[str, Decimal], ...]) -> str:
    return ", ".join(f"{a} {c}" for c, a in normalize_amounts(amounts)) or "nothing"


# ---- periods a command may name --------------------------------------------------------

FIRST_YEAR = 1900
LAST_YEAR = 2999
"""Periods of years outside this range are refused as impossible (``0000-01``, or a
``9999-12`` whose end the calendar cannot hold)."""

LATEST_OFFSET = timedelta(hours=12)
"""A period has ended everywhere once it has ended at UTC-12, the latest time zone."""


def period_problem(period: str) -> str | None:
    """Why ``period`` cannot name a statement period (malformed, or a year outside
    :data:`FIRST_YEAR`-:data:`LAST_YEAR`), or None when it can."""
    if not is_period(period):
        return f"{period[:40]!r} is not a period (YYYY-MM or YYYY-Qn)"
    year = int(period[:4])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return f"period {period} is out of range (years {FIRST_YEAR}-{LAST_YEAR})"
    return None


def period_ends_at(period: str) -> datetime:
    """The instant ``period`` has ended in every time zone: the first day of the next
    period at 00:00 at UTC-12, i.e. 12:00 UTC. ``period`` must be valid."""
    first_next = last_day(period) + timedelta(days=1)
    return datetime.combine(first_next, time(0), tzinfo=UTC) + LATEST_OFFSET


def period_planned(period: str, plans: Iterable[tuple[str, date]]) -> bool:
    """Whether some plan version, given as (period kind, effective from), computes
    periods of ``period``'s kind and is in effect by the period's last day."""
    kind = period_kind(period)
    end = last_day(period)
    return any(k == kind and start <= end for k, start in plans)


# ---- reads ---------------------------------------------------------------------------


def can_read_statement(
    actor: Actor, rep_id: str, rep_team: str | None, rep_manager: str | None
) -> bool:
    """Whether ``actor`` may read ``rep_id``'s statements: a rep their own, a manager
    their own and their team's, finance and admin every one."""
    if actor.role in (Role.FINANCE, Role.ADMIN):
        return True
    if actor.rep_id is not None and actor.rep_id == rep_id:
        return True
    if actor.role == Role.MANAGER:
        return _leads(actor, rep_team, rep_manager)
    return False


def _leads(actor: Actor, rep_team: str | None, rep_manager: str | None) -> bool:
    """A manager leads a rep whose team is the manager's team, or whose manager is the
    manager's rep id."""
    by_team = actor.team is not None and rep_team is not None and actor.team == rep_team
    by_manager = actor.rep_id is not None and rep_manager == actor.rep_id
    return by_team or by_manager


# ---- the state machine -----------------------------------------------------------------


def _check_text(name: str, text: str, required: bool) -> None:
    if required and not text.strip():
        raise Refusal("invalid", f"a {name} is required")
    if len(text) > MAX_TEXT:
        raise Refusal("invalid", f"the {name} is longer than {MAX_TEXT} characters")


def _not_own(cmd: StatementCommand, what: str) -> None:
    if cmd.actor.rep_id is not None and cmd.actor.rep_id == cmd.rep_id:
        raise Refusal("segregation", f"nobody may {what} their own statement")


def _transition(
    state: StatementState, cmd: StatementCommand, ctx: StatementContext
) -> StatementState:
    """The next state, or :class:`Refusal`. Checks in order: role, segregation, version,
    state, fields."""
    actor = cmd.actor
    action = cmd.action
    if action == Action.CLOSE_PERIOD:
        if actor.role != Role.ADMIN:
            raise Refusal("forbidden", "only an admin closes a period")
        if cmd.expected_version != state.version:
            raise Refusal(
                "conflict",
                f"the period close is at version {state.version}, "
                f"the command saw {cmd.expected_version}",
            )
        if state.status != Status.OPEN or ctx.period_closed:
            raise Refusal("invalid_state", f"period {cmd.period} is already closed")
        problems = _close_problems(cmd, ctx)
        if problems and not cmd.force:
            code, message = problems[0]
            raise Refusal(
                code,
                f'{message}; close it anyway with "force": true and a reason, '
                "which the audit trail records",
            )
        if cmd.force and not cmd.reason.strip():
            raise Refusal("invalid", "a forced close needs a reason")
        return replace(state, status=Status.CLOSED, version=state.version + 1)

    if action in (Action.REVIEW, Action.RETURN) and actor.role == Role.MANAGER:
        if not _leads(actor, ctx.rep_team, ctx.rep_manager):
            raise Refusal("forbidden", f"{cmd.rep_id} is not in the manager's team")
    elif action == Action.REVIEW:
        raise Refusal("forbidden", "only the rep's manager reviews a statement")
    elif action == Action.RETURN and actor.role != Role.FINANCE:
        raise Refusal("forbidden", "only the rep's manager or finance returns a statement")
    elif action in (Action.APPROVE, Action.PAY) and actor.role != Role.FINANCE:
        verb = "approves" if action == Action.APPROVE else "records payments"
        raise Refusal("forbidden", f"only finance {verb}")

    verb = {
        Action.REVIEW: "review",
        Action.RETURN: "return",
        Action.APPROVE: "approve",
        Action.PAY: "pay",
    }[action]
    _not_own(cmd, verb)
    if action == Action.APPROVE and state.reviewed_by == actor.user_id:
        raise Refusal("segregation", "nobody may approve a statement they reviewed")

    if cmd.expected_version != state.version:
        raise Refusal(
            "conflict",
            f"the statement is at version {state.version} ({state.status.value}), "
            f"the command saw version {cmd.expected_version}: reload and retry",
        )

    status = state.status
    if action == Action.REVIEW:
        if status != Status.CLOSED:
            raise Refusal("invalid_state", f"only a closed statement is reviewed, not {status}")
        return replace(
            state,
            status=Status.REVIEWED,
            version=state.version + 1,
            reviewed_by=actor.user_id,
            return_reason="",
        )
    if action == Action.RETURN:
        _check_text("reason", cmd.reason, required=True)
        allowed: tuple[Status, ...] = (Status.CLOSED, Status.REVIEWED)
        if actor.role == Role.FINANCE:
            allowed = (Status.REVIEWED,)
        if status not in allowed:
            raise Refusal(
                "invalid_state",
                f"a {actor.role.value} returns a statement only when it is "
                f"{' or '.join(s.value for s in allowed)}, not {status}",
            )
        return replace(
            state,
            status=Status.CLOSED,
            version=state.version + 1,
            reviewed_by=None,
            return_reason=cmd.reason,
        )
    if action == Action.APPROVE:
        if status != Status.REVIEWED:
            raise Refusal("invalid_state", f"only a reviewed statement is approved, not {status}")
        return replace(
            state,
            status=Status.APPROVED,
            version=state.version + 1,
            approved_by=actor.user_id,
            totals=normalize_amounts(cmd.amounts),
        )
    # pay
    if status != Status.APPROVED:
        raise Refusal("invalid_state", f"only an approved statement is paid, not {status}")
    _check_text("payout reference", cmd.reference, required=True)
    if not _same_amounts(cmd.amounts, state.totals):
        raise Refusal(
            "amount_mismatch",
            f"the payment ({_fmt(cmd.amounts)}) does not equal the approved total "
            f"({_fmt(state.totals)})",
        )
    return replace(
        state,
        status=Status.PAID,
        version=state.version + 1,
        paid_amounts=normalize_amounts(cmd.amounts),
        payout_reference=cmd.reference,
        paid_at=cmd.issued_at,
    )


def _close_problems(cmd: StatementCommand, ctx: StatementContext) -> list[tuple[str, str]]:
    """What speaks against closing ``cmd.period`` now: (code, message) pairs."""
    out = []
    ends = period_ends_at(cmd.period)
    if cmd.issued_at < ends:
        out.append(
            (
                "period_not_ended",
                f"period {cmd.period} has not ended (it ends everywhere at "
                f"{ends.isoformat(timespec='minutes')})",
            )
        )
    if not ctx.period_planned:
        out.append(
            (
                "period_unused",
                f"no plan computes {period_kind(cmd.period)} periods such as {cmd.period}",
            )
        )
    return out


def _validate(cmd: StatementCommand) -> None:
    problem = period_problem(cmd.period)
    if problem is not None:
        raise Refusal("invalid", problem)
    if (cmd.action == Action.CLOSE_PERIOD) != (cmd.rep_id == PERIOD_KEY_REP):
        raise Refusal("invalid", "a period close names no rep; every other command names one")
    if "|" in cmd.rep_id:
        raise Refusal("invalid", "a rep id never holds '|'")
    _check_text("reason", cmd.reason, required=False)
    _check_text("payout reference", cmd.reference, required=False)
    try:
        normalize_amounts(cmd.amounts)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise Refusal("invalid", f"bad amounts: {exc}") from None


def _fingerprint(cmd: StatementCommand) -> list[object]:
    """What a command asks, as its sender wrote it. An approval's totals are left out:
    the worker reads them when it builds the command, so a retry may carry others."""
    amounts = [[c, str(a)] for c, a in cmd.amounts] if cmd.action != Action.APPROVE else []
    out: list[object] = [cmd.action.value, cmd.expected_version, cmd.reason, cmd.reference]
    out.append(amounts)
    if cmd.force:
        out.append("force")
    return out


def audit_id_of(cmd: StatementCommand) -> str:
    """The audit id of ``cmd``'s record: ``cmd-`` and a SHA-256 of the statement (rep
    and period), the actor, the client's command id and what the command asks. The same
    command sent again has the same id; the same ``command_id`` on another statement,
    from another user or asking something else has another (the audit log holds each id
    once, so an id shared by two commands would hide one of them)."""
    scope = [cmd.rep_id, cmd.period, cmd.actor.user_id, cmd.command_id, *_fingerprint(cmd)]
    digest = hashlib.sha256(json.dumps(scope, ensure_ascii=False).encode()).hexdigest()
    return "cmd-" + digest[:40]


def _same_command(seen: AuditRecord, cmd: StatementCommand, audit_id: str) -> bool:
    if seen.audit_id == audit_id:
        return True
    # a record written before audit ids were scoped: its id is the command id
    return (
        seen.audit_id == seen.command_id == cmd.command_id
        and seen.actor_id == cmd.actor.user_id
        and seen.action == cmd.action.value
    )


def apply_command(
    state: StatementState | None, cmd: StatementCommand, ctx: StatementContext
) -> tuple[StatementState, list[AuditRecord | PeriodClosed]]:
    """Apply ``cmd`` to the stored ``state`` (None: never stored) of its statement.

    Returns the new state (the same object when nothing changed but the history) and
    the outputs: the command's :class:`AuditRecord` and, for an applied close, the
    :class:`PeriodClosed` event to publish (its event id derives from the period, so a
    re-emission is the same event). A command already in the state's history (the same
    :func:`audit_id_of`) returns the state unchanged and the same outputs again; the
    same ``command_id`` from the same actor asking something else is refused
    (``reused_id``) without changing the state."""
    current = effective_state(state, cmd.rep_id, cmd.period, ctx.period_closed)
    audit_id = audit_id_of(cmd)
    for seen in current.history:
        if _same_command(seen, cmd, audit_id):
            return current, _outputs(seen, cmd)
    try:
        for seen in current.history:
            if seen.command_id == cmd.command_id and seen.actor_id == cmd.actor.user_id:
                raise Refusal(
                    "reused_id",
                    f"command id {cmd.command_id!r} was already used on this statement for "
                    f"another command ({seen.action}, {seen.outcome.value}): "
                    "send a new command id",
                )
        _validate(cmd)
        after = _transition(current, cmd, ctx)
    except Refusal as refusal:
        record = _record(cmd, current, current, Outcome.REFUSED, refusal.code, refusal.message)
        return replace(current, history=(*current.history, record)), [record]
    record = _record(cmd, current, after, Outcome.APPLIED, "", _summary(cmd, after))
    new_state = replace(after, history=(*current.history, record))
    return new_state, _outputs(record, cmd)


def _outputs(record: AuditRecord, cmd: StatementCommand) -> list[AuditRecord | PeriodClosed]:
    out: list[AuditRecord | PeriodClosed] = [record]
    if record.outcome == Outcome.APPLIED and record.action == Action.CLOSE_PERIOD.value:
        out.append(period_closed_event(record.period, record.actor_id, record.at))
    return out


def period_closed_event(period: str, closed_by: str, at: datetime) -> PeriodClosed:
    """The engine's close event for ``period`` (its id derives from the period: the
    periods topic is compacted by period, and a period closes once)."""
    return PeriodClosed(
        event_id=f"period-closed:{period}", occurred_at=at, period=period, closed_by=closed_by
    )


def _summary(cmd: StatementCommand, after: StatementState) -> str:
    match cmd.action:
        case Action.CLOSE_PERIOD:
            if cmd.force:
                return f"period {cmd.period} closed (forced: {cmd.reason})"
            return f"period {cmd.period} closed"
        case Action.REVIEW:
            return "reviewed"
        case Action.RETURN:
            return "returned to closed"
        case Action.APPROVE:
            return f"approved: {_fmt(after.totals)}"
        case _:
            return f"paid {_fmt(after.paid_amounts)}"


def _record(
    cmd: StatementCommand,
    before: StatementState,
    after: StatementState,
    outcome: Outcome,
    code: str,
    message: str,
) -> AuditRecord:
    return AuditRecord(
        audit_id=audit_id_of(cmd),
        command_id=cmd.command_id,
        action=cmd.action.value,
        outcome=outcome,
        code=code,
        message=message,
        rep_id=cmd.rep_id,
        period=cmd.period,
        actor_id=cmd.actor.user_id,
        actor_role=cmd.actor.role.value,
        at=cmd.issued_at,
        state_before=before.status.value,
        state_after=after.status.value,
        version_before=before.version,
        version_after=after.version,
        reason=cmd.reason,
        reference=cmd.reference,
        amounts=cmd.amounts,
    )


def fold_records(
    records: Iterable[AuditRecord], rep_id: str, period: str, period_closed: bool
) -> StatementState:
    """The state of a statement (without its history) folded from its applied audit
    records, in version order whatever order they come in: what the read views show.
    Equal to the state :func:`apply_command` keeps, since every applied transition has
    one record of its own (:func:`audit_id_of`) holding what the transition set."""
    state = effective_state(None, rep_id, period, period_closed)
    applied = sorted(
        (r for r in records if r.outcome == Outcome.APPLIED),
        key=lambda r: (r.version_after, r.at, r.audit_id),
    )
    for r in applied:
        state = replace(state, status=Status(r.state_after), version=r.version_after)
        if r.action == Action.REVIEW.value:
            state = replace(state, reviewed_by=r.actor_id, return_reason="")
        elif r.action == Action.RETURN.value:
            state = replace(state, reviewed_by=None, return_reason=r.reason)
        elif r.action == Action.APPROVE.value:
            state = replace(state, approved_by=r.actor_id, totals=normalize_amounts(r.amounts))
        elif r.action == Action.PAY.value:
            state = replace(
                state,
                paid_amounts=normalize_amounts(r.amounts),
                payout_reference=r.reference,
                paid_at=r.at,
            )
    return state


def plan_record(actor: Actor, plan_id: str, version: int, at: datetime) -> AuditRecord:
    """The audit record of a plan version published by ``actor`` (id ``plan:ID@V``: a
    version is published once)."""
    return AuditRecord(
        audit_id=f"plan:{plan_id}@{version}",
        command_id=f"plan:{plan_id}@{version}",
        action="publish_plan",
        outcome=Outcome.APPLIED,
        code="",
        message=f"plan {plan_id} version {version} published",
        rep_id="",
        period="",
        actor_id=actor.user_id,
        actor_role=actor.role.value,
        at=at,
        state_before="",
        state_after="published",
        version_before=0,
        version_after=version,
        reason=f"{plan_id}@{version}",
    )


def published_plan_record(plan_id: str, version: int, at: datetime, source: str) -> AuditRecord:
    """The audit record of a plan version that reached the plans topic without going
    through ``POST /api/plans`` (``comstream plans publish``, or any producer with broker
    access): the actor is the topic it came from, since Kafka does not say who wrote
    it. Same id as :func:`plan_record`, so a plan published through the API keeps the
    record naming its admin (the first one stored wins). ``at`` is the event's own time,
    so a re-delivered event gives the same record."""
    return AuditRecord(
        audit_id=f"plan:{plan_id}@{version}",
        command_id=f"plan:{plan_id}@{version}",
        action="publish_plan",
        outcome=Outcome.APPLIED,
        code="",
        message=f"plan {plan_id} version {version} published through {source}",
        rep_id="",
        period="",
        actor_id=f"producer:{source}",
        actor_role="producer",
        at=at,
        state_before="",
        state_after="published",
        version_before=0,
        version_after=version,
        reason=f"{plan_id}@{version}",
    )


def refusal_record(
    audit_id: str,
    actor: Actor | None,
    action: str,
    message: str,
    at: datetime,
    rep_id: str = "",
    period: str = "",
    code: str = "forbidden",
) -> AuditRecord:
    """The audit record of a request refused before it became a command (no token, a
    role that may not call the route, a statement the actor may not read)."""
    return AuditRecord(
        audit_id=audit_id,
        command_id=audit_id,
        action=action,
        outcome=Outcome.REFUSED,
        code=code,
        message=message,
        rep_id=rep_id,
        period=period,
        actor_id=actor.user_id if actor is not None else "",
        actor_role=actor.role.value if actor is not None else "",
        at=at,
        state_before="",
        state_after="",
        version_before=0,
        version_after=0,
    )
