"""Renderers of ``comstream report performance`` (comstream.reports)."""

from __future__ import annotations

import csv
import io

from rich.console import Console

from comstream.reports import render_performance_csv, render_performance_table

REPORT = {
    "by": ["rep"],
    "period": {"label": "2026-11", "start": "2026-11-01", "end": "2026-12-01"},
    "previous": {"label": "2026-10", "start": "2026-10-01", "end": "2026-11-01"},
    "rows": [
        {
            "rep": "r1",
            "currency": "USD",
            "revenue": "250.00",
            "orders": 2,
            "commission": "5.00",
            "previous": {"revenue": "250.00", "orders": 1, "commission": "12.50"},
            "change": {
                "revenue": {"abs": "0.00", "pct": "0.0"},
                "orders": {"abs": "1", "pct": "100.0"},
                "commission": {"abs": "-7.50", "pct": "-60.0"},
            },
        }
    ],
    "totals": [
        {
            "currency": "USD",
            "revenue": "250.00",
            "orders": 2,
            "commission": "5.00",
            "previous": {"revenue": "0.00", "orders": 0, "commission": "0.00"},
            "change": {
                "revenue": {"abs": "250.00", "pct": None},
                "orders": {"abs": "2", "pct": None},
                "commission": {"abs": "5.00", "pct": None},
            },
        }
    ],
}


def test_csv_has_keys_figures_and_changes() -> None:
    rows = list(csv.reader(io.StringIO(render_performance_csv(REPORT))))
    assert rows[0][:6] == ["rep", "currency", "revenue", "orders", "commission", "prev_revenue"]
    assert rows[1][:5] == ["r1", "USD", "250.00", "2", "5.00"]
    assert rows[1][-3:] == ["12.50", "-7.50", "-60.0"]
    assert rows[2][:3] == ["", "USD", "250.00"] and rows[2][-1] == ""  # no % from 0


def test_csv_without_comparison() -> None:
    plain = {**REPORT, "previous": None}
    plain["rows"] = [
        {k: v for k, v in r.items() if k not in ("previous", "change")} for r in REPORT["rows"]
    ]
    rows = list(csv.reader(io.StringIO(render_performance_csv(plain))))
    assert rows[0] == ["rep", "currency", "revenue", "orders", "commission"]


def test_table_shows_change_and_percent() -> None:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render_performance_table(REPORT, "zh"))
    text = out.getvalue()
    assert "业绩统计 2026-11" in text and "-7.50 (-60.0%)" in text and "n/a" in text
