"""``payroll confirm`` decides per statement and can run twice; ``audit`` fits 80 columns
(issue 18, item 7). The worker's side of paying is exercised by
tests/integration/test_payouts_api.py."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console

from comstream.payouts_cmd import (
    ALREADY_PAID,
    PAID,
    REFUSED,
    Confirmation,
    audit_table,
    confirmation_table,
    decide,
)

USD = {"USD": Decimal("1234.50")}
APPROVED = {"status": "approved", "version": 3, "approved_totals": {"USD": "1234.50"}}
PAID_STATE = {
    "status": "paid",
    "version": 4,
    "approved_totals": {"USD": "1234.50"},
    "paid": {"USD": "1234.50"},
    "reference": "PR-1",
    "paid_at": "2026-12-02T09:00:00.000+00:00",
}


def test_an_approved_statement_with_the_same_amounts_is_paid() -> None:
    assert decide(USD, "PR-1", APPROVED) == ("pay", "")
    # a zero line of another currency is no payment
    assert decide({**USD, "EUR": Decimal("0.00")}, "PR-1", APPROVED) == ("pay", "")


def test_the_same_file_again_reports_already_paid() -> None:
    result, detail = decide(USD, "PR-1", PAID_STATE)
    assert (result, detail) == (ALREADY_PAID, "on 2026-12-02")


def test_paid_with_another_reference_or_amount_is_refused() -> None:
    result, detail = decide(USD, "PR-2", PAID_STATE)
    assert result == REFUSED and "'PR-1'" in detail and "1,234.50 USD" in detail
    result, _ = decide({"USD": Decimal("1000.00")}, "PR-1", PAID_STATE)
    assert result == REFUSED


def test_a_differing_amount_or_state_is_refused_in_words() -> None:
    result, detail = decide({"USD": Decimal("1235.50")}, "PR-1", APPROVED)
    assert result == REFUSED
    assert detail == "the file pays 1,235.50 USD, the approved total is 1,234.50 USD"
    assert decide(USD, "PR-1", {"status": "reviewed"}) == (
        REFUSED,
        "the statement is reviewed, not approved",
    )


def _text(table: object, width: int = 80) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, markup=False).print(table)
    return out.getvalue()


def test_the_summary_is_a_table_not_python_dicts() -> None:
    rows = [
        Confirmation("rep-001", "2026-11", "Ann", USD, "PR-1", PAID),
        Confirmation("rep-002", "2026-11", "", USD, "PR-1", ALREADY_PAID, "on 2026-12-02"),
        Confirmation("rep-003", "2026-11", "[b]Bo[/b]", {}, "", REFUSED, "no reference"),
    ]
    text = _text(confirmation_table(rows))
    assert "{" not in text and "Decimal(" not in text
    assert "Ann (rep-001)" in text and "1,234.50 USD" in text
    assert "already paid: on" in text and "[b]Bo[/b]" in text  # free text verbatim
    assert "1 paid, 1 already paid, 1 refused" in text


RECORDS = [
    {
        "at": "2026-11-30T14:05:00.123+00:00",
        "actor_id": "u-6789d2129728",
        "actor_role": "finance",
        "action": "pay",
        "rep_id": "rep-004",
        "period": "2026-11",
        "state_before": "approved",
        "state_after": "approved",
        "outcome": "refused",
        "code": "amount_mismatch",
        "reason": "",
        "reference": "",
        "message": "the payout 10.00 USD differs from the approved total 9.00 USD",
    },
    {
        "at": "2026-11-30T14:06:00.000+00:00",
        "actor_id": "u-1234d2129728",
        "actor_role": "manager",
        "action": "review",
        "rep_id": "rep-004",
        "period": "2026-11",
        "state_before": "closed",
        "state_after": "reviewed",
        "outcome": "applied",
        "code": "",
        "reason": "",
        "reference": "",
        "message": "",
    },
]


def test_the_audit_trail_is_readable_at_80_columns() -> None:
    lines = _text(audit_table(RECORDS), 80).splitlines()
    assert all(len(ln) <= 80 for ln in lines)
    text = "\n".join(lines)
    # ids, codes and times whole, not folded mid-word
    for whole in ("u-6789d2129728", "amount_mismatch", "rep-004", "2026-11", "finance"):
        assert whole in text, whole
    assert "differs from" in text
    assert any("2026-11-30" in ln for ln in lines)
