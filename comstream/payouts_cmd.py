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
is a rep with any such line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.settings import Settings

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


class ApiError(ComstreamError):
    """The worker refused a request or did not answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


def call(
    base_url: str,
    path: str,
    token: str | None,
    body: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> Any:
    """GET (or POST ``body``) ``base_url + path`` with the bearer token; the JSON answer.
    Raises ApiError with the status and the server's message."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base_url + path, data=data, method="GET" if body is None else "POST"
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read(), parse_float=Decimal)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = str(exc.reason)
        raise ApiError(exc.code, str(message)) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ApiError(0, f"{base_url}{path}: {exc}") from exc


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
    table = Table(title="audit trail", expand=False)
    for col in ("at", "actor", "action", "statement", "before → after", "outcome", "reason"):
        table.add_column(col)
    for r in records:
        outcome = r["outcome"] if not r["code"] else f"{r['outcome']} ({r['code']})"
        note = r["reason"] or r["reference"] or (r["message"] if r["code"] else "")
        cells = (
            r["at"],
            f"{r['actor_id']} ({r['actor_role']})" if r["actor_id"] else "anonymous",
            r["action"],
            f"{r['rep_id'] or '*'}|{r['period']}",
            f"{r['state_before']} → {r['state_after']}",
            outcome,
            note,
        )
        table.add_row(*(Text(c) for c in cells))  # free text verbatim, never markup
    Console(markup=False, highlight=False).print(table)
    return 0


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


def payroll_confirm(settings: Settings, args: argparse.Namespace) -> int:
    """Record the payments of a confirmation file; exit 1 if any line was refused."""
    token = _token(args)
    lines = read_payroll_file(Path(args.file))
    by_statement: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for ln in lines:
        by_statement[(ln["rep_id"], ln["period"])].append(ln)
    refused = 0
    for (rep_id, period), group in sorted(by_statement.items()):
        label = f"{rep_id} {period}"
        try:
            amounts = {ln["currency"]: str(Decimal(ln["amount"])) for ln in group if ln["currency"]}
        except InvalidOperation:
            print(f"REFUSED {label}: an amount is not a number", file=sys.stderr)
            refused += 1
            continue
        references = {ln.get("payout_reference", "").strip() for ln in group}
        if len(references) != 1 or "" in references:
            print(f"REFUSED {label}: one payout reference per rep is required", file=sys.stderr)
            refused += 1
            continue
        state = call(
            settings.web_url,
            f"/api/statements/{quote(rep_id)}/{quote(period)}",
            token,
        )
        approved = {c: Decimal(str(a)) for c, a in (state.get("approved_totals") or {}).items()}
        if state["status"] != "approved":
            print(f"REFUSED {label}: the statement is {state['status']}", file=sys.stderr)
            refused += 1
            continue
        if {c: Decimal(a) for c, a in amounts.items() if Decimal(a)} != {
            c: a for c, a in approved.items() if a
        }:
            print(
                f"REFUSED {label}: the file pays {amounts}, the approved total is "
                f"{ {c: str(a) for c, a in approved.items()} }",
                file=sys.stderr,
            )
            refused += 1
            continue
        version = int(group[0].get("version") or state["version"])
        try:
            call(
                settings.web_url,
                f"/api/statements/{quote(rep_id)}/{quote(period)}/pay",
                token,
                {"version": version, "amounts": amounts, "reference": references.pop()},
            )
        except ApiError as exc:
            print(f"REFUSED {label}: {exc}", file=sys.stderr)
            refused += 1
            continue
        print(f"paid {label}: {amounts}")
    return 1 if refused else 0


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
