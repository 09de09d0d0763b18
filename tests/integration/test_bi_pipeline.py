"""BI facts end to end: the real worker derives sales facts from its stage states, sends
them through ``commission.facts`` into ClickHouse, and its API answers performance,
customer and statement queries with the same figures as the batch replay."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from comstream.replay import replay, replay_facts
from processors.facts import OrderFact, sales_rows
from processors.money import round_cents
from tests.integration.test_pipeline import generated, stream_into_worker
from tests.integration.workers import deployment, launch, wait_until

pytestmark = pytest.mark.integration


def test_sales_facts_and_customer_view_reach_clickhouse(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=150, seed=5)
    result = replay(events)
    expected = result.totals()
    orders = [f for f in replay_facts(result) if isinstance(f, OrderFact)]
    revenue = round_cents(
        sum(
            (r.revenue for f in orders if not f.cancelled for r in sales_rows(f)),
            Decimal(0),
        )
    )
    per_customer = Counter(f.customer_id for f in orders)
    customer, n_orders = per_customer.most_common(1)[0]

    worker = stream_into_worker(settings, events, kafka_bootstrap)
    try:
        wait_until(lambda: worker.totals() == expected, 180, "stream totals == replay")

        def customer_orders() -> int:
            try:
                return len(worker.get(f"/api/customers/{customer}")["orders"])
            except Exception:
                return -1

        wait_until(lambda: customer_orders() == n_orders, 60, "customer's orders in ClickHouse")

        def report_revenue() -> Decimal:
            report = worker.get("/api/performance?by=rep&period=2026-11")
            return sum((Decimal(t["revenue"]) for t in report["totals"]), Decimal(0))

        wait_until(lambda: report_revenue() == revenue, 60, "sales facts revenue == replay")

        report = worker.get("/api/performance?by=rep&period=2026-11")
        commission = sum((Decimal(t["commission"]) for t in report["totals"]), Decimal(0))
        assert commission == sum(v for (_, p, _), v in expected.items() if p == "2026-11")
        assert report["previous"]["label"] == "2026-10"

        view = worker.get(f"/api/customers/{customer}")
        assert view["customer"]["customer_id"] == customer
        assert view["favourite_categories"] and view["favourite_products"]
        assert set(view["loyalty"]) >= {"orders_365d", "tenure_days", "first_order_at"}
        mine = [f for f in orders if f.customer_id == customer]
        assert {o["order_id"] for o in view["orders"]} == {f.order_id for f in mine}
        assert {o["order_id"] for o in view["open_payments"]} == {
            f.order_id for f in mine if f.status == "open"
        }

        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{settings.web_url}/api/customers/no-such-customer")
        assert err.value.code == 404

        rep = max((k for k in expected if k[1] == "2026-11"), key=lambda k: expected[k])[0]
        st = worker.get(f"/api/reps/{rep}/statement?period=2026-11&lang=en")
        assert st["lines"] and all(line["explanation"] for line in st["lines"])
        total = Decimal(st["totals"]["currencies"]["USD"]["total"])
        assert total == expected[(rep, "2026-11", "USD")]
        # pages of the same statement: in order, each line once, the whole count and the
        # whole earnings curve on every page
        n = st["line_count"]
        assert n == len(st["lines"]) >= 3 and st["offset"] == 0 and st["limit"] is None
        assert sum(Decimal(d["amount"]) for d in st["days"]) == total
        size = n // 3 + 1
        paged = []
        for offset in range(0, n, size):
            part = worker.get(
                f"/api/reps/{rep}/statement?period=2026-11&offset={offset}&limit={size}"
            )
            assert (part["offset"], part["limit"], part["line_count"]) == (offset, size, n)
            assert part["days"] == st["days"]
            paged += part["lines"]
        assert [line["delta_id"] for line in paged] == [line["delta_id"] for line in st["lines"]]
        assert worker.get(f"/api/reps/{rep}/statement?period=2026-11&offset={n}")["lines"] == []
        for bad in ("limit=0", "limit=x", "offset=-1", "limit=5001"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(
                    f"{settings.web_url}/api/reps/{rep}/statement?period=2026-11&{bad}"
                )
            assert err.value.code == 400
        page = urllib.request.urlopen(
            f"{settings.web_url}/api/reps/{rep}/statement.html?period=2026-11&lang=zh"
        ).read()
        assert "提成报表".encode() in page
    finally:
        worker.stop()


def test_facts_after_a_sigkill_equal_the_replay(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Facts re-sent after a crash are identical and collapse: after SIGKILL and restart,
    revenue and orders per customer, and every customer's open orders, equal the replay."""
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=200, seed=8)
    result = replay(events)
    expected = result.totals()
    orders = [f for f in replay_facts(result) if isinstance(f, OrderFact)]
    revenue: dict[str, Decimal] = {}
    counted: dict[str, set[str]] = {}
    for f in orders:
        if f.cancelled:
            continue
        revenue[f.customer_id] = revenue.get(f.customer_id, Decimal(0)) + sum(
            (r.revenue for r in sales_rows(f)), Decimal(0)
        )
        counted.setdefault(f.customer_id, set()).add(f.order_id)
    want = {c: (round_cents(v), len(counted[c])) for c, v in revenue.items()}
    open_orders: dict[str, set[str]] = {}
    for f in orders:
        if f.status == "open":
            open_orders.setdefault(f.customer_id, set()).add(f.order_id)

    worker = stream_into_worker(settings, events, kafka_bootstrap)
    try:
        wait_until(lambda: bool(worker.get("/api/status")["deltas_stored"]), 60, "first deltas")
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        worker = launch(settings)
        wait_until(lambda: worker.totals() == expected, 180, "totals after SIGKILL == replay")

        def by_customer() -> dict[str, tuple[Decimal, int]]:
            report = worker.get("/api/performance?by=customer&period=2026-11&compare=0")
            return {
                r["customer"]: (Decimal(r["revenue"]), r["orders"])
                for r in report["rows"]
                if r["orders"]
            }

        wait_until(lambda: by_customer() == want, 60, "revenue per customer == replay")
        for customer in want:
            view = worker.get(f"/api/customers/{customer}")
            got = {o["order_id"] for o in view["open_payments"]}
            assert got == open_orders.get(customer, set()), customer
    finally:
        worker.stop()
