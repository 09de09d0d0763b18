"""Statement explanations and renderers (comstream.statements), the message catalogue,
and BI period parsing."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from comstream.i18n import MESSAGES, t
from comstream.statements import (
    explain,
    render_csv,
    render_html,
    render_table,
    statement_json,
)
from sinks.bi import BIError, parse_by, parse_period

D = Decimal

TRACE = json.dumps(
    [
        {
            "line_id": "L2",
            "sku": "X",
            "category": "hw",
            "rule_id": "flat",
            "base_kind": "revenue",
            "base_amount": "100.00",
            "rate": "0.05",
            "modifiers": [],
            "multiplier": "1",
            "amount": "2.50",
            "note": "",
        }
    ]
)

LINE = {
    "delta_id": "d1",
    "kind": "commission",
    "order_id": "o1",
    "customer_id": "c1",
    "plan_id": "simple",
    "plan_version": 1,
    "currency": "USD",
    "amount": D("1.00"),
    "cumulative": D("1.00"),
    "commission": D("2.50"),
    "earned_fraction": D("0.4"),
    "share": D("0.5"),
    "revenue_base": D("20"),
    "cause_event_id": "pay-1",
    "cause_event_type": "PaymentReceived",
    "occurred_at": datetime(2026, 11, 3, 10, 0, tzinfo=UTC),
    "booked_period": "2026-11",
    "origin_period": "2026-11",
    "reverses": None,
    "trace": TRACE,
}
ACCEL = {
    **LINE,
    "delta_id": "d2",
    "kind": "accelerator",
    "order_id": None,
    "customer_id": None,
    "amount": D("3.00"),
    "cumulative": D("3.00"),
    "commission": D("30.00"),
    "earned_fraction": D("1.2"),
    "share": D(1),
    "cause_event_type": "PaymentReceived",
    "trace": json.dumps(
        [
            {
                "line_id": "period:2026-11",
                "sku": "",
                "category": "",
                "rule_id": "tiers.retroactive",
                "base_kind": "commission",
                "base_amount": "30.00",
                "rate": "quota 1000",
                "modifiers": [],
                "multiplier": "1.1",
                "amount": "33.00",
                "note": "",
            }
        ]
    ),
}
TOTALS = {
    "rep_id": "r1",
    "period": "2026-11",
    "deltas": 2,
    "currencies": {
        "USD": {
            "by_kind": {"commission": D("1.00"), "adjustment": D("0.00"), "accelerator": D("3.00")},
            "total": D("4.00"),
            "deltas": 2,
        }
    },
}


def test_explanation_walks_from_the_line_to_the_delta() -> None:
    text = explain(LINE, "en")
    assert text == (
        "line L2 sku X: revenue 100.00 x rate 5% x share 50% = 2.50; "
        "C = 2.50 x earned 40% = 1.00; 1.00 - 0.00 before = +1.00 (payment)"
    )
    zh = explain(LINE, "zh")
    assert "提成比例 5%" in zh and "已赚比例 40%" in zh and "收款" in zh


def test_explanation_of_an_accelerator_and_of_a_clawback() -> None:
    text = explain(ACCEL, "en")
    assert "tiers.retroactive" in text and "30.00 x 1.1 = 33.00" in text
    clawback = {**LINE, "amount": D("-1.00"), "cumulative": D("0.00"), "reverses": "d0"}
    assert "0.00 - 1.00 before = -1.00" in explain(clawback, "en")
    assert "reverses d0" in explain(clawback, "en")


def test_json_lines_and_store_lines_explain_alike() -> None:
    body = statement_json([LINE, ACCEL], TOTALS, "en")
    assert body["rep_id"] == "r1" and body["totals"]["currencies"]["USD"]["total"] == "4.00"
    again = statement_json(body["lines"], body["totals"], "en")
    assert [ln["explanation"] for ln in again["lines"]] == [
        ln["explanation"] for ln in body["lines"]
    ]
    assert body["lines"][0]["amount"] == "1.00"
    assert isinstance(body["lines"][0]["trace"], list)


def test_csv_has_every_line_then_the_totals() -> None:
    rows = list(csv.reader(io.StringIO(render_csv([ACCEL, LINE], TOTALS, "en"))))
    assert rows[0][:3] == ["Date", "Kind", "Order"]
    assert [r[1] for r in rows[1:3]] == ["commission", "accelerator"]  # accelerators last
    assert rows[-1][1] == "Total" and rows[-1][10] == "4.00"
    zh = list(csv.reader(io.StringIO(render_csv([LINE], TOTALS, "zh"))))
    assert zh[0][0] == "日期" and zh[-1][1] == "合计"


def test_html_is_a_self_contained_printable_page() -> None:
    page = render_html([LINE, ACCEL], TOTALS, "zh", rep_name="安")
    assert page.startswith("<!doctype html>")
    assert '<html lang="zh-CN">' in page and "@media print" in page
    assert "提成报表" in page and "加速器" in page and "安" in page
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert 'href="/customers/c1"' in page
    en = render_html([], TOTALS, "en")
    assert "No commission booked in this period." in en


def test_terminal_table_shows_lines_and_totals() -> None:
    text = render_table([LINE, ACCEL], TOTALS, "en", rep_name="Ann")
    assert "Commission statement" in text and "Ann" in text
    assert "Accelerators" in text and "4.00" in text


def test_catalogue_has_every_english_key_in_chinese_and_falls_back() -> None:
    assert set(MESSAGES["en"]) == set(MESSAGES["zh"])
    assert t("total", "fr") == "Total"
    assert t("no-such-key", "zh") == "no-such-key"


def test_periods_and_grouping_keys() -> None:
    nov = parse_period("2026-11")
    assert (nov.start, nov.end, nov.previous().label) == (
        date(2026, 11, 1),
        date(2026, 12, 1),
        "2026-10",
    )
    q = parse_period("2026-Q1")
    assert (q.start, q.end, q.previous().label) == (date(2026, 1, 1), date(2026, 4, 1), "2025-Q4")
    w = parse_period("2026-W48")
    assert (w.start, w.end, w.previous().label) == (
        date(2026, 11, 23),
        date(2026, 11, 30),
        "2026-W47",
    )
    d = parse_period("2026-03-01")
    assert d.previous().label == "2026-02-28"
    assert parse_period("2026-12").end == date(2027, 1, 1)
    for bad in ("2026-13", "2026-Q5", "November", "2026-W60"):
        with pytest.raises(BIError):
            parse_period(bad)
    assert parse_by("rep, category,week") == ("rep", "category", "week")
    for bad in ("rep,rep", "day,week", "planet"):
        with pytest.raises(BIError):
            parse_by(bad)


def test_engine_texts_in_explanations_lose_full_precision_zeros_not_cents() -> None:
    from comstream.statements import _rate, _tidy

    text = "whole table over order total 30000.00, this line's part 18178.8000000000/24779.2200"
    assert _rate(text, "revenue", "en") == (
        "whole table over order total 30000.00, this line's part 18178.80/24779.22"
    )
    assert (
        _tidy("capped at 500.00 (uncapped 612.3450000000)") == "capped at 500.00 (uncapped 612.345)"
    )
