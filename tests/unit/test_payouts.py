"""The statement lifecycle of SEMANTICS.md section 7 (:mod:`processors.payouts`): the
state machine, roles, segregation of duties, optimistic concurrency, idempotent
commands and payments that must equal the approved total."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import serde
from processors.events import PeriodClosed
from processors.payouts import (
    HTTP_STATUS_OF_CODE,
    Action,
    Actor,
    AuditRecord,
    Outcome,
    Role,
    StatementCommand,
    StatementContext,
    StatementState,
    Status,
    apply_command,
    audit_id_of,
    can_read_statement,
    effective_state,
    fold_records,
    normalize_amounts,
    period_ends_at,
    period_planned,
    period_problem,
)

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
P = "2026-11"
ADMIN = Actor("u-admin", Role.ADMIN)
MANAGER = Actor("u-mgr", Role.MANAGER, rep_id="r-mgr", team="east")
OTHER_MANAGER = Actor("u-mgr2", Role.MANAGER, rep_id="r-mgr2", team="west")
FIN = Actor("u-fin", Role.FINANCE)
FIN2 = Actor("u-fin2", Role.FINANCE)
REP = Actor("u-r1", Role.REP, rep_id="r1", team="east")
CTX = StatementContext(period_closed=True, rep_team="east", rep_manager="r-mgr")
TOTAL = (("USD", Decimal("1234.50")),)
_ids = itertools.count()


def cmd(
    action: Action,
    actor: Actor,
    version: int,
    rep: str = "r1",
    **kw: object,
) -> StatementCommand:
    return StatementCommand(
        command_id=f"c{next(_ids)}",
        action=action,
        rep_id=rep,
        period=P,
        actor=actor,
        issued_at=T0 + timedelta(minutes=next(_ids)),
        expected_version=version,
        **kw,  # type: ignore[arg-type]
    )


def run(
    state: StatementState | None, c: StatementCommand, ctx: StatementContext = CTX
) -> tuple[StatementState, AuditRecord]:
    new, out = apply_command(state, c, ctx)
    record = out[0]
    assert isinstance(record, AuditRecord)
    return new, record


def walk_to(status: Status) -> StatementState:
    """A statement of r1 walked from closed to ``status`` by the right roles."""
    state: StatementState | None = None
    steps = [
        (Status.REVIEWED, cmd(Action.REVIEW, MANAGER, 1)),
        (Status.APPROVED, cmd(Action.APPROVE, FIN, 2, amounts=TOTAL)),
        (Status.PAID, cmd(Action.PAY, FIN2, 3, amounts=TOTAL, reference="PAY-1")),
    ]
    current = effective_state(None, "r1", P, True)
    if status == Status.CLOSED:
        return current
    for target, c in steps:
        state, rec = run(state, c)
        assert rec.outcome == Outcome.APPLIED, rec.message
        if target == status:
            return state
    raise AssertionError(status)


def test_a_statement_walks_from_open_to_paid_with_an_audit_record_per_step() -> None:
    assert effective_state(None, "r1", P, False).status == Status.OPEN
    period_state, out = apply_command(
        None,
        cmd(Action.CLOSE_PERIOD, ADMIN, 0, rep=""),
        StatementContext(period_closed=False),
    )
    assert period_state.status == Status.CLOSED
    assert isinstance(out[1], PeriodClosed) and out[1].period == P
    assert out[1].event_id == f"period-closed:{P}"
    state = walk_to(Status.PAID)
    assert state.status == Status.PAID and state.version == 4
    assert state.reviewed_by == "u-mgr" and state.approved_by == "u-fin"
    assert state.payout_reference == "PAY-1" and state.paid_amounts == TOTAL
    steps = [(r.state_before, r.state_after, r.actor_id) for r in state.history]
    assert steps == [
        ("closed", "reviewed", "u-mgr"),
        ("reviewed", "approved", "u-fin"),
        ("approved", "paid", "u-fin2"),
    ]
    assert all(r.outcome == Outcome.APPLIED and r.code == "" for r in state.history)


def test_return_goes_back_to_closed_with_its_reason_and_needs_one() -> None:
    reviewed = walk_to(Status.REVIEWED)
    _, rec = run(reviewed, cmd(Action.RETURN, FIN, 2, reason="  "))
    assert (rec.outcome, rec.code) == (Outcome.REFUSED, "invalid")
    state, rec = run(reviewed, cmd(Action.RETURN, FIN, 2, reason="order 17 is disputed"))
    assert rec.outcome == Outcome.APPLIED
    assert state.status == Status.CLOSED and state.return_reason == "order 17 is disputed"
    assert state.reviewed_by is None and state.version == 3
    # the manager may return a closed statement; finance only a reviewed one
    _, rec = run(state, cmd(Action.RETURN, FIN, 3, reason="x"))
    assert rec.code == "invalid_state"
    again, rec = run(state, cmd(Action.RETURN, MANAGER, 3, reason="fix the split"))
    assert rec.outcome == Outcome.APPLIED and again.status == Status.CLOSED
    # and it can be reviewed again
    state, rec = run(again, cmd(Action.REVIEW, MANAGER, 4))
    assert rec.outcome == Outcome.APPLIED and state.status == Status.REVIEWED


ROLES = [ADMIN, MANAGER, FIN, REP]
ALLOWED = {
    # (action, status the statement is in) -> roles that may apply it
    (Action.REVIEW, Status.CLOSED): {Role.MANAGER},
    (Action.RETURN, Status.CLOSED): {Role.MANAGER},
    (Action.RETURN, Status.REVIEWED): {Role.MANAGER, Role.FINANCE},
    (Action.APPROVE, Status.REVIEWED): {Role.FINANCE},
    (Action.PAY, Status.APPROVED): {Role.FINANCE},
}


@pytest.mark.parametrize("status", [Status.CLOSED, Status.REVIEWED, Status.APPROVED, Status.PAID])
@pytest.mark.parametrize("action", [Action.REVIEW, Action.RETURN, Action.APPROVE, Action.PAY])
@pytest.mark.parametrize("actor", ROLES, ids=lambda a: a.role.value)
def test_every_role_against_every_statement_command(
    status: Status, action: Action, actor: Actor
) -> None:
    state = walk_to(status)
    # finance-2 approves/pays so that "u-fin" (who approved) stays free for other checks
    who = FIN2 if actor is FIN and status == Status.REVIEWED else actor
    c = cmd(action, who, state.version, reason="why", reference="REF", amounts=TOTAL)
    new, rec = run(state, c)
    if actor.role in ALLOWED.get((action, status), set()):
        assert rec.outcome == Outcome.APPLIED, rec.message
        assert new.version == state.version + 1
    else:
        assert rec.outcome == Outcome.REFUSED
        assert rec.code in ("forbidden", "invalid_state", "segregation"), rec
        assert rec.message
        assert (new.status, new.version) == (state.status, state.version)
        assert rec.state_before == rec.state_after == state.status.value


def test_only_an_admin_closes_a_period_and_only_once() -> None:
    open_ctx = StatementContext(period_closed=False)
    for actor in (MANAGER, FIN, REP):
        _, rec = run(None, cmd(Action.CLOSE_PERIOD, actor, 0, rep=""), open_ctx)
        assert rec.code == "forbidden"
    state, rec = run(None, cmd(Action.CLOSE_PERIOD, ADMIN, 0, rep=""), open_ctx)
    assert rec.outcome == Outcome.APPLIED
    _, rec = run(state, cmd(Action.CLOSE_PERIOD, ADMIN, 1, rep=""), CTX)
    assert rec.code == "invalid_state"


def test_statements_of_an_open_period_cannot_be_reviewed() -> None:
    _, rec = run(None, cmd(Action.REVIEW, MANAGER, 0), StatementContext(False, "east"))
    assert rec.code == "invalid_state" and "open" in rec.message


def test_a_statement_refused_while_open_is_closed_once_its_period_is() -> None:
    state, rec = run(None, cmd(Action.REVIEW, MANAGER, 0), StatementContext(False, "east"))
    assert rec.code == "invalid_state" and state.status == Status.OPEN
    state, rec = run(state, cmd(Action.REVIEW, MANAGER, 1))
    assert rec.outcome == Outcome.APPLIED and state.version == 2
    assert [r.outcome for r in state.history] == [Outcome.REFUSED, Outcome.APPLIED]


def test_a_manager_reviews_only_their_team() -> None:
    _, rec = run(None, cmd(Action.REVIEW, OTHER_MANAGER, 1))
    assert rec.code == "forbidden" and "team" in rec.message
    # the rep's manager id also makes a manager the rep's manager
    by_id = Actor("u-boss", Role.MANAGER, rep_id="r-mgr", team=None)
    _, rec = run(None, cmd(Action.REVIEW, by_id, 1))
    assert rec.outcome == Outcome.APPLIED


def test_segregation_of_duties() -> None:
    own_manager = Actor("u-mgr", Role.MANAGER, rep_id="r-mgr", team="east")
    _, rec = run(None, cmd(Action.REVIEW, own_manager, 1, rep="r-mgr"))
    assert rec.code == "segregation" and "own statement" in rec.message
    # a finance user who is also a rep cannot approve or pay their own statement
    fin_rep = Actor("u-finrep", Role.FINANCE, rep_id="r1")
    reviewed = walk_to(Status.REVIEWED)
    _, rec = run(reviewed, cmd(Action.APPROVE, fin_rep, 2, amounts=TOTAL))
    assert rec.code == "segregation"
    # nobody approves a statement they reviewed (the same user id in two roles)
    reviewer_as_finance = Actor("u-mgr", Role.FINANCE)
    _, rec = run(reviewed, cmd(Action.APPROVE, reviewer_as_finance, 2, amounts=TOTAL))
    assert rec.code == "segregation" and "reviewed" in rec.message
    approved = walk_to(Status.APPROVED)
    _, rec = run(approved, cmd(Action.PAY, fin_rep, 3, amounts=TOTAL, reference="R"))
    assert rec.code == "segregation"


def test_two_approvals_of_the_same_version_one_wins_the_other_conflicts() -> None:
    reviewed = walk_to(Status.REVIEWED)
    a = cmd(Action.APPROVE, FIN, 2, amounts=TOTAL)
    b = cmd(Action.APPROVE, FIN2, 2, amounts=TOTAL)
    state, first = run(reviewed, a)
    state, second = run(state, b)
    assert first.outcome == Outcome.APPLIED
    assert (second.outcome, second.code) == (Outcome.REFUSED, "conflict")
    assert "version 3" in second.message and "saw version 2" in second.message
    assert state.approved_by == "u-fin" and state.version == 3


def test_the_same_command_delivered_twice_applies_once_and_answers_the_same() -> None:
    reviewed = walk_to(Status.REVIEWED)
    c = cmd(Action.APPROVE, FIN, 2, amounts=TOTAL)
    once, out1 = apply_command(reviewed, c, CTX)
    twice, out2 = apply_command(once, c, CTX)
    assert twice is once and out1 == out2
    assert len(twice.history) == len(reviewed.history) + 1
    # a refused command re-delivered is refused the same way, once
    bad = cmd(Action.PAY, FIN, 3, amounts=(("USD", Decimal(1)),), reference="R")
    s1, o1 = apply_command(once, bad, CTX)
    s2, o2 = apply_command(s1, bad, CTX)
    assert o1 == o2 and s2 is s1 and len(s2.history) == len(s1.history)
    # a close delivered twice emits the same PeriodClosed again (its send may be lost)
    close = cmd(Action.CLOSE_PERIOD, ADMIN, 0, rep="")
    p1, c1 = apply_command(None, close, StatementContext(False))
    p2, c2 = apply_command(p1, close, StatementContext(True))
    assert c1 == c2 and len(c2) == 2 and p2 is p1


def test_a_payment_must_equal_the_approved_total_and_carry_a_reference() -> None:
    approved = walk_to(Status.APPROVED)
    for amounts in (
        (("USD", Decimal("1234.49")),),
        (),
        (("USD", Decimal("1234.50")), ("EUR", Decimal("1"))),
        (("EUR", Decimal("1234.50")),),
    ):
        _, rec = run(approved, cmd(Action.PAY, FIN2, 3, amounts=amounts, reference="R"))
        assert rec.code == "amount_mismatch", amounts
        assert "1234.50 USD" in rec.message
    _, rec = run(approved, cmd(Action.PAY, FIN2, 3, amounts=TOTAL, reference=" "))
    assert rec.code == "invalid" and "reference" in rec.message
    # the same total written differently is the same total
    same = (("USD", Decimal("1234.5000")), ("EUR", Decimal("0")))
    state, rec = run(approved, cmd(Action.PAY, FIN2, 3, amounts=same, reference="R"))
    assert rec.outcome == Outcome.APPLIED and state.status == Status.PAID


def test_free_text_is_kept_verbatim() -> None:
    nasty = "'); DROP TABLE audit_log; -- <script>alert(1)</script> 提成"
    reviewed = walk_to(Status.REVIEWED)
    state, rec = run(reviewed, cmd(Action.RETURN, FIN, 2, reason=nasty))
    assert rec.reason == nasty and state.return_reason == nasty
    assert serde.loads(serde.dumps(state)) == state


def test_reads() -> None:
    assert can_read_statement(REP, "r1", "east", None)
    assert not can_read_statement(REP, "r2", "east", None)
    assert can_read_statement(MANAGER, "r2", "east", None)
    assert not can_read_statement(OTHER_MANAGER, "r2", "east", None)
    assert can_read_statement(FIN, "r2", None, None)
    assert can_read_statement(ADMIN, "r2", None, None)


def test_normalize_amounts() -> None:
    assert normalize_amounts({"USD": "1.50", "EUR": 0}) == (("USD", Decimal("1.50")),)
    for bad in ({"USD": "x"}, {"": "1"}, {"USD": "NaN"}):
        with pytest.raises(ValueError):
            normalize_amounts(bad)
    # issue 17: amounts that overflowed the sum, or were not numbers at all, are refused
    # with a message for the sender (not "[<class 'decimal.Overflow'>]")
    for bad, words in (
        ({"USD": "1e999999999"}, "out of range"),
        ({"USD": Decimal("1e999999999"), "EUR": "1"}, "out of range"),
        ({"USD": "1E-999999999"}, "out of range"),
        ({"USD": "Infinity"}, "finite"),
        ({"USD": {"$gt": 0}}, "not a decimal number"),
        ({"USD": True}, "not a decimal number"),
        ({"USD": 1.5}, "not a decimal number"),
        ({"usd": "1"}, "currency"),
        ({"US D": "1"}, "currency"),
    ):
        with pytest.raises(ValueError, match=words) as refused:
            normalize_amounts(bad)  # type: ignore[arg-type]
        assert "<class" not in str(refused.value)
    assert normalize_amounts({"USD": "999999999999999.999999999999"})


actions = st.sampled_from(list(Action))
actors = st.sampled_from([ADMIN, MANAGER, OTHER_MANAGER, FIN, FIN2, REP])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(actions, actors, st.integers(0, 6), st.booleans(), st.sampled_from([0, 1])),
        max_size=25,
    )
)
def test_any_command_sequence_keeps_the_invariants(
    steps: list[tuple[Action, Actor, int, bool, int]],
) -> None:
    """Whatever arrives in whatever order (including re-deliveries): the version counts
    the applied transitions, one record per distinct command, paid is final and equals
    the approved total, and the approver never reviewed it nor owns it."""
    state: StatementState | None = None
    issued: list[StatementCommand] = []
    for action, actor, version, redeliver, _ in steps:
        if redeliver and issued:
            c = issued[-1]
        else:
            c = cmd(action, actor, version, reason="r", reference="ref", amounts=TOTAL)
            if action == Action.CLOSE_PERIOD:
                c = cmd(action, actor, version, rep="")
                continue  # a period close is keyed apart from statements
            issued.append(c)
        before = effective_state(state, "r1", P, True)
        state, out = apply_command(state, c, CTX)
        rec = out[0]
        assert isinstance(rec, AuditRecord)
        if before.status == Status.PAID:
            assert state.status == Status.PAID
        if rec.outcome == Outcome.APPLIED and rec.action == "approve":
            assert rec.actor_id != before.reviewed_by
    if state is None:
        return
    applied = [r for r in state.history if r.outcome == Outcome.APPLIED]
    assert state.version == 1 + len(applied)
    assert len({r.command_id for r in state.history}) == len(state.history)
    assert len(state.history) == len({c.command_id for c in issued})
    if state.status == Status.PAID:
        assert normalize_amounts(state.paid_amounts) == normalize_amounts(state.totals)
    assert serde.loads(serde.dumps(state)) == state


# ---- command ids are scoped to the statement and the actor (issue 17, item 1) ----------


def _with_id(c: StatementCommand, command_id: str) -> StatementCommand:
    return replace(c, command_id=command_id)


def test_the_same_command_id_on_two_statements_gives_two_distinct_records() -> None:
    close = cmd(Action.CLOSE_PERIOD, ADMIN, 0, rep="")
    review_a = _with_id(cmd(Action.REVIEW, MANAGER, 1, rep="r1"), close.command_id)
    review_b = _with_id(cmd(Action.REVIEW, MANAGER, 1, rep="r2"), close.command_id)
    _, a = run(None, review_a)
    _, b = run(None, review_b)
    _, c = run(None, close, StatementContext(False))
    assert a.outcome == b.outcome == c.outcome == Outcome.APPLIED
    # one audit trail row each: the audit log keeps each audit id once
    assert len({a.audit_id, b.audit_id, c.audit_id}) == 3
    assert a.audit_id == audit_id_of(review_a) and b.audit_id == audit_id_of(review_b)
    assert a.command_id == b.command_id == close.command_id


def test_a_command_id_reused_on_a_statement_for_another_command_is_refused() -> None:
    reviewed = walk_to(Status.REVIEWED)
    approve = cmd(Action.APPROVE, FIN, 2, amounts=TOTAL)
    approved, first = run(reviewed, approve)
    assert first.outcome == Outcome.APPLIED
    # the same id from the same user for another action, or another body: 409, no change
    for other in (
        _with_id(cmd(Action.PAY, FIN, 3, amounts=TOTAL, reference="R"), approve.command_id),
        _with_id(cmd(Action.RETURN, FIN, 3, reason="why"), approve.command_id),
        _with_id(cmd(Action.APPROVE, FIN, 3, amounts=TOTAL), approve.command_id),
    ):
        state, rec = run(approved, other)
        assert (rec.outcome, rec.code) == (Outcome.REFUSED, "reused_id"), rec
        assert rec.audit_id != first.audit_id and rec.audit_id == audit_id_of(other)
        assert (state.status, state.version) == (Status.APPROVED, 3)
        assert HTTP_STATUS_OF_CODE["reused_id"] == 409
    # the same command again (approve totals are the worker's, not the sender's): same answer
    again = replace(approve, issued_at=approve.issued_at + timedelta(seconds=5), amounts=())
    state, rec = run(approved, again)
    assert rec == first and state is approved
    # another user's id that happens to be the same is their own command
    pay = _with_id(cmd(Action.PAY, FIN2, 3, amounts=TOTAL, reference="R"), approve.command_id)
    state, rec = run(approved, pay)
    assert rec.outcome == Outcome.APPLIED and state.status == Status.PAID


def test_the_read_view_folded_from_the_records_equals_the_state_that_accepts_commands() -> None:
    state = walk_to(Status.PAID)
    records = [r for r in state.history if r.outcome == Outcome.APPLIED]
    view = fold_records(reversed(records), "r1", P, period_closed=True)
    assert view == replace(state, history=())
    assert fold_records([], "r1", P, period_closed=True) == effective_state(None, "r1", P, True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            actions, actors, st.integers(0, 6), st.sampled_from(["", "a", "b"]), st.booleans()
        ),
        max_size=25,
    )
)
def test_any_sequence_of_commands_with_reused_ids_keeps_views_and_state_equal(
    steps: list[tuple[Action, Actor, int, str, bool]],
) -> None:
    """Client-chosen ids reused at random: every applied transition has one audit record
    of its own, and the state folded from the records is the state the agent keeps."""
    state: StatementState | None = None
    emitted: dict[str, AuditRecord] = {}
    for action, actor, version, cid, fresh in steps:
        if action == Action.CLOSE_PERIOD:
            continue
        c = cmd(action, actor, version, reason="r", reference="ref", amounts=TOTAL)
        if cid and not fresh:
            c = _with_id(c, cid)
        before = effective_state(state, "r1", P, True)
        state, out = apply_command(state, c, CTX)
        rec = out[0]
        assert isinstance(rec, AuditRecord)
        assert emitted.get(rec.audit_id, rec) == rec  # an id never names two records
        emitted[rec.audit_id] = rec
        if rec.outcome == Outcome.REFUSED:
            assert (state.status, state.version) == (before.status, before.version)
    if state is None:
        return
    applied = [r for r in emitted.values() if r.outcome == Outcome.APPLIED]
    assert fold_records(applied, "r1", P, period_closed=True) == replace(state, history=())


# ---- periods: junk, not ended, no plan (issue 17, item 5) -------------------------------


def test_impossible_periods_are_refused() -> None:
    for period in ("0000-01", "9999-12", "2026-13", "2026-Q5", "26-11", "junk"):
        assert period_problem(period), period
        c = replace(cmd(Action.CLOSE_PERIOD, ADMIN, 0, rep=""), period=period)
        _, rec = run(None, c, StatementContext(False))
        assert rec.code == "invalid", (period, rec)
    assert period_problem("2026-11") is None and period_problem("2026-Q4") is None


def test_a_period_closes_once_it_has_ended_everywhere() -> None:
    assert period_ends_at("2026-11") == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert period_ends_at("2026-Q4") == datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    close = replace(cmd(Action.CLOSE_PERIOD, ADMIN, 0, rep=""), period="2026-12")
    early = replace(close, issued_at=datetime(2027, 1, 1, 11, 59, tzinfo=UTC))
    _, rec = run(None, early, StatementContext(False))
    assert rec.code == "period_not_ended" and "force" in rec.message
    assert HTTP_STATUS_OF_CODE["period_not_ended"] == 409
    state, rec = run(
        None, replace(early, issued_at=period_ends_at("2026-12")), StatementContext(False)
    )
    assert rec.outcome == Outcome.APPLIED and state.status == Status.CLOSED


def test_a_close_of_an_unused_or_unended_period_needs_force_and_a_reason() -> None:
    unused = StatementContext(False, period_planned=False)
    close = replace(cmd(Action.CLOSE_PERIOD, ADMIN, 0, rep=""), period="2026-Q3")
    _, rec = run(None, close, unused)
    assert rec.code == "period_unused" and "quarter" in rec.message
    _, rec = run(None, replace(close, force=True, command_id="f1"), unused)
    assert rec.code == "invalid" and "reason" in rec.message
    forced = replace(close, force=True, reason="audit asked", command_id="f2")
    state, out = apply_command(None, forced, unused)
    rec = out[0]
    assert isinstance(rec, AuditRecord) and rec.outcome == Outcome.APPLIED
    assert rec.reason == "audit asked" and "forced" in rec.message
    assert isinstance(out[1], PeriodClosed) and state.status == Status.CLOSED
    assert serde.loads(serde.dumps(forced)) == forced
    # a command written before `force` existed still reads
    old = serde.dumps(replace(close, command_id="old"))
    assert serde.loads(old.replace(b",false]", b"]")) == replace(close, command_id="old")


def test_period_planned() -> None:
    monthly = [("month", date(2026, 1, 1))]
    assert period_planned("2026-11", monthly)
    assert not period_planned("2026-Q4", monthly)
    assert not period_planned("2025-12", monthly)
    assert period_planned("2026-Q4", [*monthly, ("quarter", date(2026, 12, 31))])
