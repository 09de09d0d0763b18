"""Rep statements (提成报表): every delta of a rep's period with its order, rule, base,
rate, earned fraction and cause, the accelerator lines apart, and the totals; as a
terminal table, CSV, or a printable self-contained HTML page, in English or Chinese.

Input: the lines of :meth:`sinks.clickhouse.Store.statement` and the totals of
:meth:`~sinks.clickhouse.Store.statement_totals`, either as the store returns them
(Decimal, datetime, ``trace`` as JSON text) or as the worker's JSON API sends them
(strings, ``trace`` as a list); :func:`normalise` accepts both.

Every line gets an ``explanation`` (:func:`explain`) built from its trace, e.g.
``line L2 sku X: revenue 100.00 x rate 5% x share 50% = 2.50; C = 2.50 x earned 40%
= 1.00; 1.00 - 0.00 before = 1.00 (payment)``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.console import Console
from rich.table import Table

from schemas.jsonl import jsonable

from .i18n import lang_of, t

__all__ = [
    "explain",
    "normalise",
    "render_csv",
    "render_html",
    "render_table",
    "statement_json",
]

_DEC = ("amount", "cumulative", "commission", "earned_fraction", "share", "revenue_base")
_CENT = Decimal("0.01")


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def normalise(line: Mapping[str, Any]) -> dict[str, Any]:
    """A statement line with Decimal amounts, an aware ``occurred_at`` and ``trace`` as a
    list of dicts, whether it came from the store or from JSON."""
    out = dict(line)
    for k in _DEC:
        if k in out and out[k] is not None:
            out[k] = _dec(out[k])
    at = out.get("occurred_at")
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    out["occurred_at"] = at
    trace = out.get("trace")
    if isinstance(trace, str):
        try:
            trace = json.loads(trace) if trace else []
        except ValueError:
            trace = []
    out["trace"] = list(trace or [])
    return out


def _pct(value: Decimal) -> str:
    """A fraction as a percentage with up to two decimals: 0.4 -> 40%, 1/3 -> 33.33%."""
    p = (value * 100).quantize(_CENT)
    text = f"{p:f}".rstrip("0").rstrip(".") if "." in f"{p:f}" else f"{p:f}"
    return f"{text}%"


def _money(value: Any) -> str:
    return f"{_dec(value).quantize(_CENT):f}"


def _num(value: Any) -> str:
    d = _dec(value)
    if d == d.to_integral_value():
        return f"{d.quantize(Decimal(1)):f}"
    return f"{d.normalize():f}"


_DECIMAL_IN_TEXT = re.compile(r"-?\d+\.\d+")


def _tidy(text: str) -> str:
    """Decimals inside an engine-written text (a rate table's band, a cap note) without
    the trailing zeros of their full precision, but with cents kept:
    ``18178.8000000000000000`` -> ``18178.80``, ``612.3450000`` -> ``612.345``."""

    def short(m: re.Match[str]) -> str:
        d = Decimal(m.group()).normalize()
        places = -int(d.as_tuple().exponent)
        return f"{d.quantize(_CENT):f}" if places < 2 else f"{d:f}"

    return _DECIMAL_IN_TEXT.sub(short, text)


def _rate(rate: str, base_kind: str, lang: str) -> str:
    try:
        r = Decimal(rate)
    except (InvalidOperation, ValueError):
        return _tidy(rate)
    if base_kind == "quantity":
        return t("per_unit", lang, rate=_num(r))
    return _pct(r)


def _cause(line: Mapping[str, Any], lang: str) -> str:
    kind = str(line.get("cause_event_type") or "")
    return t(f"cause_{kind}", lang) if kind else ""


def explain(line: Mapping[str, Any], lang: str = "en") -> str:
    """Why a statement line has its amount, in ``lang``, from its trace and figures."""
    lang = lang_of(lang)
    ln = normalise(line)
    amount, cumulative = ln["amount"], ln["cumulative"]
    before = cumulative - amount
    if ln.get("kind") == "accelerator":
        tr = ln["trace"][0] if ln["trace"] else {}
        return t(
            "ex_accelerator",
            lang,
            period=ln.get("origin_period") or ln.get("booked_period") or "",
            rule=tr.get("rule_id") or "",
            rate=tr.get("rate") or "",
            base=_money(ln["commission"]),
            mult=_num(_dec(tr.get("multiplier") or "1").quantize(Decimal("0.0001"))),
            total=_money(tr.get("amount") or "0"),
            cumulative=_money(cumulative),
            before=_money(before),
            amount=f"{amount:+.2f}",
        )
    parts: list[str] = []
    for tr in ln["trace"]:
        label = tr.get("line_id") or ""
        sku = tr.get("sku") or ""
        if not tr.get("rule_id"):
            parts.append(t("ex_no_rule", lang, line=label, sku=sku))
            continue
        base_kind = tr.get("base_kind") or "revenue"
        mult = _dec(tr.get("multiplier") or "1")
        parts.append(
            t(
                "ex_line",
                lang,
                line=label,
                sku=sku,
                base_kind=t(f"base_{base_kind}", lang),
                base=_money(tr.get("base_amount") or "0")
                if base_kind != "quantity"
                else _num(tr.get("base_amount") or "0"),
                rate=_rate(str(tr.get("rate") or ""), base_kind, lang),
                mods=t("ex_mods", lang, mult=_num(mult)) if mult != 1 else "",
                share=_pct(ln["share"]),
                amount=_money(tr.get("amount") or "0"),
            )
            + (f" [{_tidy(str(tr['note']))}]" if tr.get("note") else "")
        )
    parts.append(
        t(
            "ex_order",
            lang,
            commission=_money(ln["commission"]),
            earned=_pct(ln["earned_fraction"]),
            cumulative=_money(cumulative),
        )
    )
    parts.append(
        t(
            "ex_delta",
            lang,
            cumulative=_money(cumulative),
            before=_money(before),
            amount=f"{amount:+.2f}",
            cause=_cause(ln, lang),
        )
    )
    if ln.get("reverses"):
        parts.append(t("ex_reverses", lang, delta=ln["reverses"]))
    return ("；" if lang == "zh" else "; ").join(parts)


def _rules(ln: Mapping[str, Any]) -> str:
    seen: list[str] = []
    for tr in ln["trace"]:
        rid = tr.get("rule_id") or "-"
        if rid not in seen:
            seen.append(rid)
    return ", ".join(seen)


def _base(ln: Mapping[str, Any], lang: str) -> str:
    sums: dict[str, Decimal] = {}
    for tr in ln["trace"]:
        kind = tr.get("base_kind") or "revenue"
        sums[kind] = sums.get(kind, Decimal(0)) + _dec(tr.get("base_amount") or "0")
    return ", ".join(
        f"{t(f'base_{k}', lang)} {_money(v) if k != 'quantity' else _num(v)}"
        for k, v in sums.items()
    )


def _rates(ln: Mapping[str, Any], lang: str) -> str:
    seen: list[str] = []
    for tr in ln["trace"]:
        r = _rate(str(tr.get("rate") or ""), tr.get("base_kind") or "revenue", lang)
        if r not in seen:
            seen.append(r)
    return ", ".join(seen)


COLUMNS = (
    "date",
    "kind",
    "order",
    "customer",
    "rule",
    "base",
    "rate",
    "share",
    "earned",
    "cause",
    "amount",
    "cumulative",
    "explanation",
)


def _cells(line: Mapping[str, Any], lang: str) -> list[str]:
    ln = normalise(line)
    at = ln["occurred_at"]
    return [
        at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if isinstance(at, datetime) else "",
        t(f"kind_{ln.get('kind')}", lang),
        ln.get("order_id") or "",
        ln.get("customer_id") or "",
        _rules(ln),
        _base(ln, lang),
        _rates(ln, lang),
        _pct(ln["share"]),
        _pct(ln["earned_fraction"]) if ln.get("kind") != "accelerator" else "",
        f"{_cause(ln, lang)} {ln.get('cause_event_id') or ''}".strip(),
        _money(ln["amount"]),
        _money(ln["cumulative"]),
        explain(ln, lang),
    ]


def _split(lines: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    main = [ln for ln in lines if ln.get("kind") != "accelerator"]
    acc = [ln for ln in lines if ln.get("kind") == "accelerator"]
    return main, acc


def _total_rows(totals: Mapping[str, Any], lang: str) -> list[list[str]]:
    rows: list[list[str]] = []
    for currency, entry in sorted((totals.get("currencies") or {}).items()):
        by_kind = entry.get("by_kind") or {}
        for kind in ("commission", "adjustment", "accelerator"):
            rows.append([currency, t(f"kind_{kind}", lang), _money(by_kind.get(kind, "0"))])
        rows.append([currency, t("total", lang), _money(entry.get("total", "0"))])
    return rows


def render_csv(
    lines: Sequence[Mapping[str, Any]], totals: Mapping[str, Any], lang: str = "en"
) -> str:
    """CSV: a header, one row per line (commission and adjustments, then accelerators),
    with the currency; then the totals as rows whose kind is the total's kind."""
    lang = lang_of(lang)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([t(c, lang) for c in COLUMNS] + [t("currency", lang)])
    main, acc = _split(lines)
    for ln in (*main, *acc):
        w.writerow([*_cells(ln, lang), ln.get("currency") or ""])
    for currency, label, amount in _total_rows(totals, lang):
        w.writerow(["", label, "", "", "", "", "", "", "", "", amount, "", "", currency])
    return buf.getvalue()


def render_table(
    lines: Sequence[Mapping[str, Any]],
    totals: Mapping[str, Any],
    lang: str = "en",
    rep_name: str | None = None,
    width: int = 200,
) -> str:
    """A terminal rendering (text): the lines, the accelerator lines, then the totals."""
    lang = lang_of(lang)
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    rep = totals.get("rep_id", "")
    console.print(
        f"{t('statement_title', lang)} — {t('rep', lang)} {rep}"
        f"{f' ({rep_name})' if rep_name else ''} — {t('period', lang)} {totals.get('period', '')}"
    )
    main, acc = _split(lines)
    if not lines:
        console.print(t("no_lines", lang))
    for title, group in (("commission_lines", main), ("accelerator_lines", acc)):
        if not group:
            continue
        table = Table(title=t(title, lang), show_lines=False)
        for c in COLUMNS:
            table.add_column(t(c, lang), overflow="fold")
        for ln in group:
            table.add_row(*_cells(ln, lang))
        console.print(table)
    tt = Table(title=t("totals", lang))
    for c in ("currency", "kind", "amount"):
        tt.add_column(t(c, lang), justify="right" if c == "amount" else "left")
    for row in _total_rows(totals, lang):
        tt.add_row(*row)
    console.print(tt)
    return out.getvalue()


PRINT_HANDLER = "window.print()"
"""The printable statement's one inline script: its print button's handler (the web
server's Content-Security-Policy allows exactly this text by its hash)."""

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC",sans-serif;
margin:2rem;color:#111}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.meta{color:#555;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.3rem .4rem;vertical-align:top;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
td.ex{color:#333;font-size:.8rem}
.neg{color:#b00}
button{margin-bottom:1rem}
@media print{button{display:none}body{margin:0}th{background:#eee!important;
-webkit-print-color-adjust:exact;print-color-adjust:exact}tr{page-break-inside:avoid}
@page{size:A4 landscape;margin:12mm}}
"""

INLINE_STYLE = _CSS
"""The printable statement's inline stylesheet (allowed by its hash, like the handler)."""

_NUM_COLS = {"share", "earned", "amount", "cumulative"}


def render_html(
    lines: Sequence[Mapping[str, Any]],
    totals: Mapping[str, Any],
    lang: str = "en",
    rep_name: str | None = None,
) -> str:
    """A self-contained printable HTML page (inline CSS with print rules, no script
    beyond the print button, no external resources)."""
    lang = lang_of(lang)
    e = html.escape
    rep = str(totals.get("rep_id", ""))
    period = str(totals.get("period", ""))
    who = f"{rep} ({rep_name})" if rep_name else rep
    title = f"{t('statement_title', lang)} — {who} — {period}"
    parts = [
        "<!doctype html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f'<button onclick="{PRINT_HANDLER}">{e(t("print", lang))}</button>',
        f"<h1>{e(t('statement_title', lang))}</h1>",
        f'<div class="meta">{e(t("rep", lang))}: {e(who)} · {e(t("period", lang))}: {e(period)}'
        f" · {e(t('generated', lang))}: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</div>",
    ]
    main, acc = _split(lines)
    if not lines:
        parts.append(f"<p>{e(t('no_lines', lang))}</p>")
    for key, group in (("commission_lines", main), ("accelerator_lines", acc)):
        if not group:
            continue
        parts.append(f"<h2>{e(t(key, lang))}</h2><table><thead><tr>")
        parts += [f"<th>{e(t(c, lang))}</th>" for c in COLUMNS]
        parts.append("</tr></thead><tbody>")
        for ln in group:
            parts.append(f'<tr data-delta="{e(str(ln.get("delta_id") or ""))}">')
            for col, cell in zip(COLUMNS, _cells(ln, lang), strict=True):
                cls = "num" if col in _NUM_COLS else "ex" if col == "explanation" else ""
                if col == "amount" and cell.startswith("-"):
                    cls += " neg"
                if col == "customer" and cell:
                    cell_html = f'<a href="/customers/{e(cell)}">{e(cell)}</a>'
                else:
                    cell_html = e(cell)
                parts.append(f'<td class="{cls.strip()}">{cell_html}</td>')
            parts.append("</tr>")
        parts.append("</tbody></table>")
    parts.append(f"<h2>{e(t('totals', lang))}</h2><table><thead><tr>")
    parts += [f"<th>{e(t(c, lang))}</th>" for c in ("currency", "kind", "amount")]
    parts.append("</tr></thead><tbody>")
    for currency, label, amount in _total_rows(totals, lang):
        parts.append(
            f'<tr><td>{e(currency)}</td><td>{e(label)}</td><td class="num">{e(amount)}</td></tr>'
        )
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts)


def statement_json(
    lines: Sequence[Mapping[str, Any]], totals: Mapping[str, Any], lang: str = "en"
) -> dict[str, Any]:
    """``{"rep_id", "period", "lang", "lines": [...], "totals": {...}}``: each line with
    its fields (Decimals as strings, ``trace`` as a list) and its ``explanation``."""
    lang = lang_of(lang)
    out_lines = []
    for line in lines:
        ln = normalise(line)
        ln["explanation"] = explain(ln, lang)
        out_lines.append(jsonable(ln))
    return {
        "rep_id": totals.get("rep_id"),
        "period": totals.get("period"),
        "lang": lang,
        "lines": out_lines,
        "totals": jsonable(totals),
    }
