"""The BI model against the real ClickHouse engine (chDB through Store, no mocks): fact
tables and views, performance with hand-computed figures, the customer view, and
statements rendered from the store. The case is tests/bi_case.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.replay import replay, replay_facts
from comstream.statements import render_html, statement_json
from processors.engine import Engine
from processors.facts import state_facts
from schemas.jsonl import format_event
from sinks.bi import NotFound, customer_view, performance, report_json
from sinks.clickhouse import Store
from tests import bi_case

D = Decimal
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root: Path = tmp_path_factory.mktemp("bi")
    st = Store(f"chdb://{root / 'ch'}")
    st.ensure_schema()
    # facts as the stream sends them: a first version of every order before the later
    # events (o5 uncredited, o4 not cancelled yet), then the final ones, then all again
    early = Engine()
    early.process_all([*bi_case.head(), *bi_case.flow()[:7]])
    st.insert_facts(
        state_facts(
            early.order_states().values(), early.customer_states().values(), early.reps.values()
        )
    )
    result = replay(bi_case.events())
    st.insert_deltas(result.deltas, source="bi-case")
    facts = replay_facts(result)
    st.insert_facts(facts)
    st.insert_facts(facts)  # a crash replay re-sends identical facts
    st.insert_facts(  # and an old version arriving late changes nothing
        state_facts(
            early.order_states().values(), early.customer_states().values(), early.reps.values()
        )
    )
    yield st
    st.close()


def _rows(report: dict, key: str) -> dict:  # type: ignore[type-arg]
    return {r[key]: r for r in report["rows"]}


def test_views_show_each_entity_once_at_its_latest_version(store: Store) -> None:
    orders = dict(store.query("SELECT order_id, status FROM v_orders"))
    assert orders == {"o1": "paid", "o2": "open", "o3": "paid", "o4": "cancelled", "o5": "open"}
    sales = store.query(
        "SELECT order_id, rep_id, toString(share), toString(revenue), order_status "
        "FROM v_sales ORDER BY order_id, line_no, rep_id"
    )
    assert [(o, r, Decimal(s), Decimal(v), st) for o, r, s, v, st in sales] == [
        ("o1", "r1", D(1), D(200), "paid"),
        ("o1", "r1", D(1), D(50), "paid"),
        ("o2", "r1", D("0.5"), D(200), "open"),
        ("o2", "r2", D("0.5"), D(200), "open"),
        ("o3", "r2", D(1), D(300), "paid"),
        ("o4", "r2", D(1), D(100), "cancelled"),
        ("o5", "r1", D(1), D(50), "open"),  # the uncredited row of version 1 is gone
    ]
    customers = dict(store.query("SELECT customer_id, owner_rep_id FROM v_customers"))
    assert customers == {"c1": "r1", "c2": "r2", "c3": "r1"}
    assert dict(store.query("SELECT rep_id, team_id FROM v_reps")) == {
        "r1": "team-a",
        "r2": "team-b",
    }
    margin = store.query("SELECT toString(margin) FROM v_sales WHERE order_id = 'o3'")
    assert Decimal(margin[0][0]) == D(180)


def test_commission_views_sum_each_delta_once(store: Store) -> None:
    by_day = {
        (d, r): Decimal(a)
        for d, r, a in store.query(
            "SELECT day, rep_id, commission FROM v_commission_by_rep_day ORDER BY day, rep_id"
        )
    }
    assert by_day == {
        (date(2026, 10, 12), "r1"): D("12.50"),
        (date(2026, 11, 6), "r1"): D("5.00"),
        (date(2026, 11, 6), "r2"): D("5.00"),
        (date(2026, 11, 8), "r2"): D("15.00"),
    }
    by_period = {
        (p, r): Decimal(a)
        for p, r, a in store.query(
            "SELECT period, rep_id, commission FROM v_commission_by_rep_period"
        )
    }
    assert by_period == {
        ("2026-10", "r1"): D("12.50"),
        ("2026-11", "r1"): D("5.00"),
        ("2026-11", "r2"): D("20.00"),
    }
    assert store.query("SELECT count() FROM v_commission")[0][0] == 4


def test_performance_by_rep_with_change_against_the_previous_month(store: Store) -> None:
    report = report_json(performance(store, "rep", "2026-11"))
    assert report["previous"]["label"] == "2026-10"
    rows = _rows(report, "rep")
    r1, r2 = rows["r1"], rows["r2"]
    # r1: half of o2 (200.00) and o5 (50.00, credited to r1 after it was placed)
    assert (r1["revenue"], r1["orders"], r1["commission"]) == ("250.00", 2, "5.00")
    assert r1["previous"] == {"revenue": "250.00", "orders": 1, "commission": "12.50"}
    assert r1["change"]["revenue"] == {"abs": "0.00", "pct": "0.0"}
    assert r1["change"]["orders"] == {"abs": "1", "pct": "100.0"}
    assert r1["change"]["commission"] == {"abs": "-7.50", "pct": "-60.0"}
    assert (r2["revenue"], r2["orders"], r2["commission"]) == ("500.00", 2, "20.00")
    assert r2["change"]["revenue"] == {"abs": "500.00", "pct": None}
    (total,) = report["totals"]  # o4 is cancelled: not in revenue nor orders
    assert (total["revenue"], total["orders"], total["commission"]) == ("750.00", 3, "25.00")
    assert total["change"]["revenue"] == {"abs": "500.00", "pct": "200.0"}
    assert total["change"]["orders"] == {"abs": "2", "pct": "200.0"}
    assert total["change"]["commission"] == {"abs": "12.50", "pct": "100.0"}


def test_performance_by_category_team_and_region(store: Store) -> None:
    cat = _rows(report_json(performance(store, "category", "2026-11")), "category")
    assert (cat["hw"]["revenue"], cat["hw"]["orders"], cat["hw"]["commission"]) == (
        "400.00",
        1,
        "10.00",
    )
    assert cat["hw"]["previous"]["commission"] == "10.00"  # o1's hw line: 10.00 of 12.50
    assert cat["hw"]["change"]["commission"] == {"abs": "0.00", "pct": "0.0"}
    assert (cat["sw"]["revenue"], cat["sw"]["commission"]) == ("300.00", "15.00")
    assert cat["sw"]["previous"] == {"revenue": "50.00", "orders": 1, "commission": "2.50"}
    assert cat["sw"]["change"]["revenue"] == {"abs": "250.00", "pct": "500.0"}
    team = _rows(report_json(performance(store, "team", "2026-11", compare=False)), "team")
    assert {k: (v["revenue"], v["commission"]) for k, v in team.items()} == {
        "team-a": ("250.00", "5.00"),
        "team-b": ("500.00", "20.00"),
    }
    assert "previous" not in team["team-a"]
    region = _rows(report_json(performance(store, "region,rep", "2026-11")), "region")
    assert region["APAC"]["revenue"] == "300.00"
    filtered = report_json(performance(store, "rep", "2026-11", filters={"team": "team-b"}))
    assert [r["rep"] for r in filtered["rows"]] == ["r2"]


def test_performance_by_day_compares_with_the_day_before(store: Store) -> None:
    report = report_json(performance(store, "day", "2026-W45"))
    days = _rows(report, "day")
    assert (days["2026-11-05"]["revenue"], days["2026-11-05"]["orders"]) == ("400.00", 1)
    six = days["2026-11-06"]
    assert (six["revenue"], six["commission"]) == ("0.00", "10.00")
    assert six["previous"] == {"revenue": "400.00", "orders": 1, "commission": "0.00"}
    assert six["change"]["revenue"] == {"abs": "-400.00", "pct": "-100.0"}
    q = report_json(performance(store, "rep", "2026-Q4"))
    assert q["totals"][0]["revenue"] == "1000.00" and q["totals"][0]["commission"] == "37.50"


def test_customer_view(store: Store) -> None:
    as_of = bi_case.at(11, 20)
    view = customer_view(store, "c1", as_of=as_of)
    assert view["customer"]["name"] == "Acme" and view["customer"]["tier"] == "A"
    assert [o["order_id"] for o in view["orders"]] == ["o2", "o1"]
    assert view["orders"][0]["paid"] == D("200.00") and view["orders"][0]["status"] == "open"
    assert [(c["category"], c["revenue"], c["orders"]) for c in view["favourite_categories"]] == [
        ("hw", D("600.00"), 2),
        ("sw", D("50.00"), 1),
    ]
    assert [(p["sku"], p["revenue"], p["quantity"]) for p in view["favourite_products"]] == [
        ("S1", D("600.00"), D(6)),
        ("S2", D("50.00"), D(1)),
    ]
    loyalty = view["loyalty"]
    assert loyalty["orders_365d"] == 2
    assert loyalty["tenure_days"] == (date(2026, 11, 20) - date(2025, 1, 1)).days
    assert loyalty["first_order_at"] == bi_case.at(10, 10)
    assert view["open_payments"] == [
        {
            "order_id": "o2",
            "currency": "USD",
            "total": D("400.00"),
            "paid": D("200.00"),
            "outstanding": D("200.00"),
        }
    ]
    assert [(c["rep_id"], c["amount"]) for c in view["commission"]] == [
        ("r1", D("17.50")),
        ("r2", D("5.00")),
    ]
    c2 = customer_view(store, "c2", as_of=as_of)
    assert c2["open_payments"] == []  # o4 is cancelled
    assert [c["category"] for c in c2["favourite_categories"]] == ["sw"]
    assert c2["loyalty"]["tenure_days"] == (date(2026, 11, 20) - date(2026, 11, 7)).days
    with pytest.raises(NotFound):
        customer_view(store, "nobody")


def test_statement_rendered_from_the_store(store: Store) -> None:
    lines = store.statement("r2", "2026-11")
    totals = store.statement_totals("r2", "2026-11")
    body = statement_json(lines, totals, "en")
    assert [ln["amount"] for ln in body["lines"]] == ["5.00", "15.00"]
    assert body["lines"][0]["explanation"] == (
        "line L1 sku S1: revenue 400.00 x rate 5% x share 50% = 10.00; "
        "C = 10.00 x earned 50% = 5.00; 5.00 - 0.00 before = +5.00 (payment)"
    )
    assert body["totals"]["currencies"]["USD"]["total"] == "20.00"
    page = render_html(lines, totals, "zh", "Bo")
    assert "第 L1 行 S2" in page and "20.00" in page


def test_every_grafana_dashboard_query_runs_on_the_views(store: Store) -> None:
    dashboard = json.loads((REPO / "deploy" / "grafana" / "comstream.json").read_text())
    macros = {
        "$__fromTime": "toDateTime64('2026-10-01 00:00:00', 3, 'UTC')",
        "$__toTime": "toDateTime64('2026-12-01 00:00:00', 3, 'UTC')",
        "${period}": "2026-11",
        "${team:singlequote}": "'ALL'",
    }

    def run(sql: str) -> list[tuple[object, ...]]:
        for name, value in macros.items():
            sql = sql.replace(name, value)
        return store.query(sql)  # raises SinkError when a view or column is wrong

    panels = {p["title"]: p["targets"][0]["rawSql"] for p in dashboard["panels"]}
    assert len(panels) > 8
    for sql in panels.values():
        run(sql)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            run(variable["query"])
    assert run(panels["Commission in range"]) == [("USD", D("37.50"))]
    assert run(panels["Orders in range"]) == [(4,)]


def test_report_and_statement_commands_read_a_dsn(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(format_event(e) + "\n" for e in bi_case.events()[1:]), encoding="utf-8"
    )
    dsn = f"chdb://{tmp_path / 'ch'}"
    cli = [sys.executable, "-m", "comstream.cli"]
    subprocess.run(
        [*cli, "replay", str(events), "--plan", str(bi_case.SIMPLE), "--clickhouse", dsn],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            *cli,
            "report",
            "performance",
            "--by",
            "rep",
            "--period",
            "2026-11",
            "--format",
            "json",
            "--dsn",
            dsn,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = {r["rep"]: r for r in json.loads(out)["rows"]}
    assert (rows["r2"]["revenue"], rows["r2"]["commission"]) == ("500.00", "20.00")
    assert rows["r1"]["change"]["commission"] == {"abs": "-7.50", "pct": "-60.0"}
    target = tmp_path / "statement.html"
    subprocess.run(
        [
            *cli,
            "statement",
            "--rep",
            "r2",
            "--period",
            "2026-11",
            "--format",
            "html",
            "--lang",
            "zh",
            "--out",
            str(target),
            "--dsn",
            dsn,
        ],
        check=True,
        capture_output=True,
    )
    page = target.read_text(encoding="utf-8")
    assert "提成报表" in page and "Bo" in page and "20.00" in page
    text = subprocess.run(
        [*cli, "statement", "--rep", "r2", "--period", "2026-11", "--format", "csv", "--dsn", dsn],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert text.splitlines()[-1].split(",")[10] == "20.00"
