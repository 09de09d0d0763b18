"""``comstream users``, ``comstream audit`` and ``comstream payroll``.

``users add`` writes a user to the users topic and prints its bearer token once. The
other commands talk to the sink worker's API with a token (``--token`` or
``$COMSTREAM_TOKEN``), so they are authorized like any other caller.

Payroll files (docs/payouts.md): ``payroll export --period P`` writes
``payroll-P.csv`` and ``payroll-P.json``, one line per rep and currency of every
approved statement: ``rep_id, name, period, currency, amount, version, approved_by,
payout_reference`` (empty: the payroll system fills it in). ``payroll confirm FILE``
reads such a file back (CSV or JSON) with ``payout_reference`` filled and records each
rep's payment; a line whose amount differs from the approved total is refused, and so
is a rep with any such line. A statement already paid with the same reference and
amounts is reported as "already paid", so the same file can be confirmed again; a
table says what happened to each rep.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.settings import Settings

from .api import ApiError, call
from .errors import ComstreamError

PAYROLL_FIELDS = (
    "rep_id",
    "name",
    "period",
    "currency",
    "amount",
    "version",
    "approved_by",
    "payout_reference",
)


def _token(args: argparse.Namespace) -> str | None:
    return getattr(args, "token", None) or os.environ.get("COMSTREAM_TOKEN") or None


# ---- users -------------------------------------------------------------------------------


def users_add(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka import ensure_topics
    from streams.users import new_user, publish_user

    user, token = new_user(args.name, args.role, args.rep_id, args.team)
    ensure_topics(settings)
    publish_user(settings, user)
    print(f"user {user.user_id} ({user.role}) {user.name}")
    print(f"token (shown once, keep it): {token}")
    print(f"web UI: {settings.web_url}/#token={token}")
    return 0


def users_list(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka import read_whole
    from streams.users import Users

    users = Users()
    for msg in read_whole(settings.bootstrap, settings.topics.users):
        users.apply_bytes(msg.value)
    for u in users.all():
        print(json.dumps(u.public(), ensure_ascii=False))
    return 0


def users_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    """Mark a user inactive: their token stops working on every worker."""
    from dataclasses import replace

    from streams.kafka import read_whole
    from streams.users import Users, publish_user

    users = Users()
    for msg in read_whole(settings.bootstrap, settings.topics.users):
        users.apply_bytes(msg.value)
    user = users.get(args.user_id)
    if user is None:
        raise ComstreamError(f"no user {args.user_id!r}")
    publish_user(settings, replace(user, active=False))
    print(f"user {user.user_id} deactivated")
    return 0


# ---- audit -------------------------------------------------------------------------------


def audit_command(settings: Settings, args: argparse.Namespace) -> int:
    query = []
    if args.rep:
        query.append("rep=" + quote(args.rep))
    if args.period:
        query.append("period=" + quote(args.period))
    query.append(f"limit={args.limit}")
    records = call(settings.web_url, "/api/audit?" + "&".join(query), _token(args))["records"]
    if args.json:
        for r in records:
            print(json.dumps(r, ensure_ascii=False, default=str))
        return 0
    Console(markup=False, highlight=False).print(audit_table(records))
    return 0


def _when(at: str) -> str:
    """An audit instant to the minute in this machine's timezone: ``2026-11-30 14:05``."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def audit_table(records: list[dict[str, Any]]) -> Table:
    """The audit trail for a terminal of 80 columns or more: each record on two or three
    short lines (when, who and role, statement and period, action and states, outcome and
    code) with the reason, reference or refusal message wrapped in the last column.
    ``--json`` keeps every field verbatim."""
    zone = datetime.now().astimezone().strftime("%Z") or "local"
    table = Table(title="audit trail", expand=False, show_lines=True)
    table.add_column(f"when ({zone})", no_wrap=True, min_width=10, max_width=10)
    table.add_column("who", overflow="fold", max_width=16)
    table.add_column("statement", overflow="fold", max_width=12)
    table.add_column("action", overflow="fold", max_width=19)
    table.add_column("note", overflow="fold", min_width=12, ratio=1)
    for r in records:
        who = r.get("actor_name") or r.get("actor_id") or "anonymous"
        role = r.get("actor_role") or ""
        refused = r.get("outcome") != "applied"
        outcome = str(r.get("outcome") or "")
        if r.get("code"):
            outcome += f" {r['code']}"
        before, after = r.get("state_before") or "", r.get("state_after") or ""
        states = before if before == after else f"{before} → {after}"
        action = f"{r['action']}\n{states}" if states else str(r["action"])
        note = r.get("reason") or r.get("reference") or (r.get("message") if refused else "")
        cells = (
            _when(str(r["at"])).replace(" ", "\n", 1),
            f"{who}\n{role}" if role else who,
            f"{r.get('rep_id') or '*'}\n{r.get('period') or ''}",
            f"{action}\n{outcome}",
            note or "",
        )
        table.add_row(*(Text(c) for c in cells))  # free text verbatim, never markup
    return table


# ---- payroll -----------------------------------------------------------------------------


def payroll_lines(statements: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One line per rep and currency of the approved statements."""
    lines = []
    for s in sorted(statements, key=lambda s: (s["period"], s["rep_id"])):
        if s["status"] != "approved":
            continue
        totals = s.get("approved_totals") or {}
        for currency, amount in sorted(totals.items()) or [("", "0.00")]:
            lines.append(
                {
                    "rep_id": s["rep_id"],
                    "name": s.get("name") or "",
                    "period": s["period"],
                    "currency": currency,
                    "amount": str(Decimal(str(amount)).quantize(Decimal("0.01"))),
                    "version": str(s["version"]),
                    "approved_by": s.get("approved_by") or "",
                    "payout_reference": "",
                }
            )
    return lines


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FREE_TEXT = ("name", "approved_by")


def csv_safe(line: dict[str, str]) -> dict[str, str]:
    """``line`` for the CSV file: a free-text cell a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``+cmd``, ``@SUM``) gets a leading apostrophe, which
    spreadsheets show as text. Ids and amounts are left exact (an amount may be
    negative); the JSON file keeps every value verbatim."""
    out = dict(line)
    for key in _FREE_TEXT:
        value = out.get(key) or ""
        if value.startswith(_FORMULA_START):
            out[key] = "'" + value
    return out


def payroll_export(settings: Settings, args: argparse.Namespace) -> int:
    path = f"/api/statements?period={quote(args.period)}&status=approved"
    statements = call(settings.web_url, path, _token(args))["statements"]
    lines = payroll_lines(statements)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"payroll-{args.period}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PAYROLL_FIELDS)
        writer.writeheader()
        writer.writerows(csv_safe(ln) for ln in lines)
    json_path = out / f"payroll-{args.period}.json"
    json_path.write_text(
        json.dumps({"period": args.period, "lines": lines}, ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )
    reps = len({ln["rep_id"] for ln in lines})
    print(f"{reps} approved statements, {len(lines)} lines: {csv_path} {json_path}")
    return 0


def read_payroll_file(path: Path) -> list[dict[str, str]]:
    """The lines of a payroll file (CSV with a header, or the JSON of the export)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        doc = json.loads(text)
        rows = doc["lines"] if isinstance(doc, dict) else doc
        return [{k: str(v) for k, v in row.items()} for row in rows]
    return list(csv.DictReader(text.splitlines()))


PAID, ALREADY_PAID, REFUSED = "paid", "already paid", "refused"


@dataclass
class Confirmation:
    """What ``payroll confirm`` did with one rep's lines of a period."""

    rep_id: str
    period: str
    name: str
    amounts: dict[str, Decimal]
    reference: str
    result: str  # PAID, ALREADY_PAID or REFUSED
    detail: str = ""


def _nonzero(amounts: dict[str, Any]) -> dict[str, Decimal]:
    return {c: Decimal(str(a)) for c, a in amounts.items() if c and Decimal(str(a))}


def money_text(amounts: dict[str, Any]) -> str:
    """``1,234.50 USD, 10.00 EUR``; ``nothing`` when every amount is zero."""
    shown = [f"{a:,.2f} {c}" for c, a in sorted(_nonzero(amounts).items())]
    return ", ".join(shown) or "nothing"


def decide(amounts: dict[str, Decimal], reference: str, state: dict[str, Any]) -> tuple[str, str]:
    """(result, detail) for paying ``amounts`` with ``reference`` to a statement in
    ``state`` (the API's statement view): ``("pay", "")`` when it is approved for
    exactly these amounts; :data:`ALREADY_PAID` when it was paid with this reference and
    these amounts (running the same file again changes nothing); :data:`REFUSED` with
    the reason otherwise."""
    status = str(state.get("status") or "")
    if status == "paid":
        paid = _nonzero(state.get("paid") or {})
        paid_ref = str(state.get("reference") or "")
        if paid_ref == reference and paid == _nonzero(amounts):
            when = str(state.get("paid_at") or "")[:10]
            return ALREADY_PAID, f"on {when}" if when else ""
        return REFUSED, f"already paid {money_text(paid)} with reference {paid_ref!r}"
    if status != "approved":
        return REFUSED, f"the statement is {status or 'unknown'}, not approved"
    approved = _nonzero(state.get("approved_totals") or {})
    if _nonzero(amounts) != approved:
        return REFUSED, (
            f"the file pays {money_text(amounts)}, the approved total is {money_text(approved)}"
        )
    return "pay", ""


def confirmation_table(rows: list[Confirmation]) -> Table:
    """The summary of ``payroll confirm``: one row per rep and period."""
    counts = {r: sum(1 for c in rows if c.result == r) for r in (PAID, ALREADY_PAID, REFUSED)}
    table = Table(
        title="payroll confirmation",
        caption=f"{counts[PAID]} paid, {counts[ALREADY_PAID]} already paid, "
        f"{counts[REFUSED]} refused",
        expand=False,
    )
    table.add_column("rep", overflow="fold")
    table.add_column("period", no_wrap=True)
    table.add_column("amount", justify="right", overflow="fold")
    table.add_column("reference", overflow="fold")
    table.add_column("result", overflow="fold", min_width=12)
    for c in rows:
        who = f"{c.name} ({c.rep_id})" if c.name else c.rep_id
        result = c.result + (f": {c.detail}" if c.detail else "")
        style = "red" if c.result == REFUSED else "green" if c.result == PAID else ""
        cells = (who, c.period, money_text(c.amounts), c.reference, result)
        table.add_row(*(Text(x) for x in cells), style=style)  # verbatim, never markup
    return table


def confirm_statement(
    settings: Settings, token: str | None, rep_id: str, period: str, group: list[dict[str, str]]
) -> Confirmation:
    """Record one rep's payment of ``period`` from their lines of a confirmation file."""
    name = next((ln.get("name") or "" for ln in group if ln.get("name")), "")
    references = {(ln.get("payout_reference") or "").strip() for ln in group}
    reference = next(iter(references)) if len(references) == 1 else ""
    row = Confirmation(rep_id, period, name, {}, reference, REFUSED)
    try:
        row.amounts = {ln["currency"]: Decimal(ln["amount"]) for ln in group if ln["currency"]}
    except (InvalidOperation, KeyError):
        row.detail = "an amount is not a number"
        return row
    if not reference:
        row.detail = "one payout reference per rep is required"
        return row
    where = f"/api/statements/{quote(rep_id, safe='')}/{quote(period, safe='')}"
    try:
        state = call(settings.web_url, where, token)
        row.result, row.detail = decide(row.amounts, reference, state)
        if row.result != "pay":
            return row
        version = int(group[0].get("version") or state["version"])
        body = {
            "version": version,
            "amounts": {c: str(a) for c, a in row.amounts.items()},
            "reference": reference,
        }
        call(settings.web_url, where + "/pay", token, body)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise  # the same for every line: say it once
        row.result, row.detail = REFUSED, str(exc)
        return row
    row.result, row.detail = PAID, ""
    return row


def payroll_confirm(settings: Settings, args: argparse.Namespace) -> int:
    """Record the payments of a confirmation file and print what happened to each rep's
    lines; exit 1 if any was refused. Lines already paid with the same reference and
    amounts are reported as such, so running the same file again is safe."""
    token = _token(args)
    lines = read_payroll_file(Path(args.file))
    by_statement: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for ln in lines:
        by_statement[(ln["rep_id"], ln["period"])].append(ln)
    rows = [
        confirm_statement(settings, token, rep_id, period, group)
        for (rep_id, period), group in sorted(by_statement.items())
    ]
    Console(markup=False, highlight=False).print(confirmation_table(rows))
    return 1 if any(r.result == REFUSED for r in rows) else 0


def add_parsers(sub: Any, settings_of: Any) -> None:
    """``users``, ``audit`` and ``payroll`` under the main parser."""

    def bind(fn: Any) -> Any:
        return lambda args: fn(settings_of(args), args)

    users = sub.add_parser("users", help="API users").add_subparsers(
        dest="users_cmd", required=True
    )
    p = users.add_parser("add", help="create a user and print its token once")
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, choices=("rep", "manager", "finance", "admin"))
    p.add_argument("--rep-id", help="the rep this user is (rep; a manager's own rep id)")
    p.add_argument("--team", help="the team a manager leads (or a rep belongs to)")
    p.set_defaults(fn=bind(users_add))
    p = users.add_parser("list", help="list users (without tokens)")
    p.set_defaults(fn=bind(users_list))
    p = users.add_parser("deactivate", help="stop a user's token from working")
    p.add_argument("user_id")
    p.set_defaults(fn=bind(users_deactivate))

    p = sub.add_parser("audit", help="query the audit trail")
    p.add_argument("--rep")
    p.add_argument("--period")
    p.add_argument("--limit", type=int, default=10_000)
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.add_argument("--token", help="bearer token (default: $COMSTREAM_TOKEN)")
    p.set_defaults(fn=bind(audit_command))

    payroll = sub.add_parser("payroll", help="payroll files").add_subparsers(
        dest="payroll_cmd", required=True
    )
    p = payroll.add_parser("export", help="write the approved statements as CSV and JSON")
    p.add_argument("--period", required=True)
    p.add_argument("--out", default=".", help="directory (default: .)")
    p.add_argument("--token", help="bearer token (default: $COMSTREAM_TOKEN)")
    p.set_defaults(fn=bind(payroll_export))
    p = payroll.add_parser("confirm", help="record payments from a confirmation file")
    p.add_argument("file")
    p.add_argument("--token", help="bearer token (default: $COMSTREAM_TOKEN)")
    p.set_defaults(fn=bind(payroll_confirm))
