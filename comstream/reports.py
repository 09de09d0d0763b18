"""``comstream report performance`` and ``comstream statement``.

Both read either the running worker's HTTP API (``--url``, default the worker of the
settings: chDB lets one process hold a data path, and a running worker holds it) or a
ClickHouse store directly (``--dsn``: a server, or a chDB path no worker holds).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .i18n import lang_of, t
from .leaderboard import get_json


def _performance_report(args: argparse.Namespace, web_url: str) -> dict[str, Any]:
    if args.dsn:
        from sinks.bi import performance, report_json
        from sinks.clickhouse import Store

        store = Store(args.dsn)
        try:
            return report_json(performance(store, args.by, args.period, compare=args.compare))
        finally:
            store.close()
    query = urllib.parse.urlencode(
        {"by": args.by, "period": args.period, "compare": "1" if args.compare else "0"}
    )
    report: dict[str, Any] = get_json(args.url or web_url, f"/api/performance?{query}", 30)
    return report


def _fields(report: dict[str, Any]) -> list[str]:
    return [*report["by"], "currency"]


def _flat(row: dict[str, Any], keys: list[str], compare: bool) -> list[str]:
    cells = [str(row.get(k) if row.get(k) is not None else "") for k in keys]
    cells += [str(row["revenue"]), str(row["orders"]), str(row["commission"])]
    if compare and "previous" in row:
        prev, change = row["previous"], row["change"]
        for name in ("revenue", "orders", "commission"):
            pct = change[name]["pct"]
            cells += [str(prev[name]), str(change[name]["abs"]), "" if pct is None else str(pct)]
    return cells


def _header(keys: list[str], compare: bool) -> list[str]:
    cols = [*keys, "revenue", "orders", "commission"]
    if compare:
        for name in ("revenue", "orders", "commission"):
            cols += [f"prev_{name}", f"change_{name}", f"change_{name}_pct"]
    return cols


def render_performance_csv(report: dict[str, Any]) -> str:
    """CSV: one row per group, then the totals (grouping keys empty, ``currency`` set)."""
    compare = report.get("previous") is not None
    keys = _fields(report)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_header(keys, compare))
    for row in (*report["rows"], *report["totals"]):
        w.writerow(_flat(row, keys, compare))
    return buf.getvalue()


def render_performance_table(report: dict[str, Any], lang: str = "en") -> Table:
    compare = report.get("previous") is not None
    keys = _fields(report)
    prev = report.get("previous")
    title = f"{t('performance_title', lang)} {report['period']['label']}"
    if prev:
        title += f" ({t('previous', lang)}: {prev['label']})"
    table = Table(title=title)
    for k in keys:
        table.add_column(k)
    for name in ("revenue", "orders", "commission"):
        table.add_column(t(name, lang), justify="right")
        if compare:
            table.add_column(f"{t('change', lang)}", justify="right")

    def cells(row: dict[str, Any]) -> list[str]:
        out = [str(row.get(k) or "") for k in keys]
        for name in ("revenue", "orders", "commission"):
            value = row[name]
            out.append(f"{Decimal(str(value)):,.2f}" if name != "orders" else str(value))
            if compare and "change" in row:
                ch = row["change"][name]
                pct = "n/a" if ch["pct"] is None else f"{ch['pct']}%"
                out.append(f"{ch['abs']} ({pct})")
        return out

    for row in report["rows"]:
        table.add_row(*cells(row))
    for row in report["totals"]:
        table.add_row(*cells({**row, **{k: "" for k in report["by"]}}), style="bold")
    return table


def performance_command(args: argparse.Namespace, web_url: str) -> int:
    report = _performance_report(args, web_url)
    if args.format == "json":
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    elif args.format == "csv":
        text = render_performance_csv(report)
    else:
        Console(width=200).print(render_performance_table(report, lang_of(args.lang)))
        return 0
    _write(text, args.out)
    return 0


def _write(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _statement(
    args: argparse.Namespace, web_url: str
) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    if args.dsn:
        from sinks.clickhouse import Store

        store = Store(args.dsn)
        try:
            page = store.statement_page(args.rep, args.period)  # lines and totals, one read
            lines, totals = page.lines, page.totals
            rows = store.query("SELECT name FROM v_reps WHERE rep_id = {r:String}", {"r": args.rep})
            name = str(rows[0][0]) if rows and rows[0][0] else None
            return lines, totals, name
        finally:
            store.close()
    query = urllib.parse.urlencode({"period": args.period, "lang": args.lang})
    rep = urllib.parse.quote(args.rep, safe="")
    body = get_json(args.url or web_url, f"/api/reps/{rep}/statement?{query}", 30)
    return body["lines"], body["totals"], None


def statement_command(args: argparse.Namespace, web_url: str) -> int:
    from .statements import render_csv, render_html, render_table

    lines, totals, name = _statement(args, web_url)
    lang = lang_of(args.lang)
    if args.format == "csv":
        text = render_csv(lines, totals, lang)
    elif args.format == "html":
        text = render_html(lines, totals, lang, name)
    else:
        text = render_table(lines, totals, lang, name)
    _write(text, args.out)
    return 0


def add_parsers(sub: Any, fn: Any) -> None:
    """Add ``report performance`` and ``statement`` to the ``comstream`` subcommands,
    both dispatched to ``fn``; each sets ``report_fn`` (``performance`` or
    ``statement``)."""
    report = sub.add_parser("report", help="BI reports").add_subparsers(
        dest="report_cmd", required=True
    )
    p = report.add_parser("performance", help="performance by rep, team, category... vs before")
    p.add_argument(
        "--by",
        default="rep",
        help="comma-separated: rep, team, customer, product, category, region, and at most "
        "one of day, week, month, quarter (default rep)",
    )
    p.add_argument("--period", required=True, help="2026-11, 2026-Q4, 2026-W48 or 2026-11-26")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    p.add_argument("--out", help="write to this file instead of stdout (csv, json)")
    _source(p)
    p.set_defaults(fn=fn, report_fn="performance")

    p = sub.add_parser("statement", help="a rep's commission statement for a period")
    p.add_argument("--rep", required=True)
    p.add_argument("--period", required=True, help="the booked period, e.g. 2026-11 or 2026-Q4")
    p.add_argument("--format", choices=("table", "csv", "html"), default="table")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    p.add_argument("--out", help="write to this file instead of stdout")
    _source(p)
    p.set_defaults(fn=fn, report_fn="statement")


def _source(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--url", help="the worker's HTTP address (default: from the settings)")
    g.add_argument("--dsn", help="read ClickHouse directly (chdb:///path or http://host:8123)")


def report_command(args: argparse.Namespace, web_url: str) -> int:
    """Run the command :func:`add_parsers` parsed."""
    if args.report_fn == "performance":
        return performance_command(args, web_url)
    return statement_command(args, web_url)
