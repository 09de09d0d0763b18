"""The BI model in ClickHouse: fact and dimension tables, the per-day rollup, and the
views a BI tool reads (docs/bi.md describes every column).

Tables (``ReplacingMergeTree(version)``: the row of the highest version per key wins, and
a fact re-sent after a crash is identical to the first copy, so copies collapse):

- ``sales_facts``: one row per order line x credited rep (key order_id, line_no, rep_id);
- ``orders``: one row per order (key order_id);
- ``customers``: the CRM record of each customer (key customer_id);
- ``reps``: the CRM record of each rep (key rep_id);
- ``rep_day_totals``: per (day of the cause event, rep, currency) sums of the deltas
  ledger, fed by a materialized view like ``rep_period_totals``.

Views (each entity once, latest version; each delta id once): ``v_sales``, ``v_orders``,
``v_customers``, ``v_reps``, ``v_commission``, ``v_commission_by_rep_day``,
``v_commission_by_rep_period``.

This module only builds DDL text and rows; :class:`sinks.clickhouse.Store` runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from processors.facts import CustomerFact, Fact, OrderFact, RepFact, sales_rows

_DEDUP = "non_replicated_deduplication_window = 10000"
_P12 = Decimal("0.000000000001")
D = "Decimal(38, 12)"
NS = "Nullable(String)"

BI_DDL: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS sales_facts (
        order_id String,
        line_no UInt32,
        line_id String,
        rep_id String,
        share {D},
        rep_team_id {NS},
        rep_region {NS},
        customer_id String,
        customer_known Bool,
        customer_tier {NS},
        customer_region {NS},
        customer_industry {NS},
        tenure_days Nullable(Int32),
        orders_365d UInt32,
        sku String,
        category LowCardinality(String),
        quantity {D},
        unit_price {D},
        discount {D},
        revenue {D},
        margin Nullable({D}),
        currency LowCardinality(String),
        placed_at DateTime64(6, 'UTC'),
        placed_date Date,
        period LowCardinality(String),
        order_status LowCardinality(String),
        order_total Decimal(18, 2),
        paid_fraction {D},
        version UInt64
    )
    ENGINE = ReplacingMergeTree(version)
    ORDER BY (order_id, line_no, rep_id)
    """,
    f"""
    CREATE TABLE IF NOT EXISTS orders (
        order_id String,
        customer_id String,
        currency LowCardinality(String),
        placed_at DateTime64(6, 'UTC'),
        placed_date Date,
        period LowCardinality(String),
        total Decimal(18, 2),
        paid {D},
        refunded {D},
        net_paid {D},
        outstanding {D},
        paid_fraction {D},
        status LowCardinality(String),
        cancelled_at Nullable(DateTime64(6, 'UTC')),
        credit_source LowCardinality(String),
        rep_ids Array(String),
        shares Array({D}),
        customer_tier {NS},
        customer_region {NS},
        customer_industry {NS},
        lines UInt32,
        version UInt64
    )
    ENGINE = ReplacingMergeTree(version)
    ORDER BY order_id
    """,
    f"""
    CREATE TABLE IF NOT EXISTS customers (
        customer_id String,
        name String,
        tier {NS},
        region {NS},
        industry {NS},
        owner_rep_id {NS},
        customer_since Nullable(Date),
        changed_at DateTime64(6, 'UTC'),
        version UInt64
    )
    ENGINE = ReplacingMergeTree(version)
    ORDER BY customer_id
    """,
    f"""
    CREATE TABLE IF NOT EXISTS reps (
        rep_id String,
        name String,
        team_id {NS},
        manager_id {NS},
        region {NS},
        active Bool,
        changed_at DateTime64(6, 'UTC'),
        version UInt64
    )
    ENGINE = ReplacingMergeTree(version)
    ORDER BY rep_id
    """,
    f"""
    CREATE TABLE IF NOT EXISTS rep_day_totals (
        day Date,
        rep_id String,
        currency LowCardinality(String),
        amount Decimal(38, 2),
        revenue_base Decimal(38, 12),
        deltas UInt64
    )
    ENGINE = SummingMergeTree
    ORDER BY (day, rep_id, currency)
    SETTINGS {_DEDUP}
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS rep_day_totals_mv TO rep_day_totals AS
    SELECT toDate(occurred_at) AS day, rep_id, currency,
           sum(amount) AS amount, sum(revenue_base) AS revenue_base, count() AS deltas
    FROM commission_deltas
    GROUP BY day, rep_id, currency
    """,
    """
    CREATE VIEW IF NOT EXISTS v_sales AS
    SELECT * FROM sales_facts FINAL
    WHERE (order_id, version) IN (SELECT order_id, max(version) FROM sales_facts GROUP BY order_id)
    """,
    "CREATE VIEW IF NOT EXISTS v_orders AS SELECT * FROM orders FINAL",
    "CREATE VIEW IF NOT EXISTS v_customers AS SELECT * FROM customers FINAL",
    "CREATE VIEW IF NOT EXISTS v_reps AS SELECT * FROM reps FINAL",
    """
    CREATE VIEW IF NOT EXISTS v_commission AS
    SELECT delta_id, kind, rep_id, order_id, customer_id, plan_id, plan_version, currency,
           amount, cumulative, commission, earned_fraction, share, revenue_base,
           cause_event_id, cause_event_type, occurred_at, toDate(occurred_at) AS day,
           booked_period, origin_period, reverses, trace
    FROM commission_deltas FINAL
    """,
    """
    CREATE VIEW IF NOT EXISTS v_commission_by_rep_day AS
    SELECT day, rep_id, currency, sum(amount) AS commission,
           sum(revenue_base) AS revenue_base, sum(deltas) AS deltas
    FROM rep_day_totals GROUP BY day, rep_id, currency
    """,
    """
    CREATE VIEW IF NOT EXISTS v_commission_by_rep_period AS
    SELECT booked_period AS period, rep_id, currency, sum(amount) AS commission,
           sum(revenue_base) AS revenue_base, sum(deltas) AS deltas
    FROM rep_period_totals GROUP BY booked_period, rep_id, currency
    """,
)

REP_DAY_REBUILD = """
    INSERT INTO rep_day_totals
    SELECT toDate(occurred_at), rep_id, currency, sum(amount), sum(revenue_base), count()
    FROM commission_deltas FINAL
    GROUP BY toDate(occurred_at), rep_id, currency
"""

SALES_COLUMNS: tuple[str, ...] = (
    "order_id",
    "line_no",
    "line_id",
    "rep_id",
    "share",
    "rep_team_id",
    "rep_region",
    "customer_id",
    "customer_known",
    "customer_tier",
    "customer_region",
    "customer_industry",
    "tenure_days",
    "orders_365d",
    "sku",
    "category",
    "quantity",
    "unit_price",
    "discount",
    "revenue",
    "margin",
    "currency",
    "placed_at",
    "placed_date",
    "period",
    "order_status",
    "order_total",
    "paid_fraction",
    "version",
)
ORDER_COLUMNS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "currency",
    "placed_at",
    "placed_date",
    "period",
    "total",
    "paid",
    "refunded",
    "net_paid",
    "outstanding",
    "paid_fraction",
    "status",
    "cancelled_at",
    "credit_source",
    "rep_ids",
    "shares",
    "customer_tier",
    "customer_region",
    "customer_industry",
    "lines",
    "version",
)
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "name",
    "tier",
    "region",
    "industry",
    "owner_rep_id",
    "customer_since",
    "changed_at",
    "version",
)
REP_COLUMNS: tuple[str, ...] = (
    "rep_id",
    "name",
    "team_id",
    "manager_id",
    "region",
    "active",
    "changed_at",
    "version",
)


def _d(value: Decimal) -> Decimal:
    return value.quantize(_P12)


def utc_month(at: datetime) -> str:
    """The calendar month (``YYYY-MM``) of ``at`` in UTC: the ``period`` of the BI facts."""
    u = at.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}"


def sales_table_rows(fact: OrderFact) -> list[list[Any]]:
    placed = fact.placed_at.astimezone(UTC)
    period = utc_month(placed)
    status = fact.status
    fraction = _d(fact.paid_fraction)
    lines = {ln.line_no: ln for ln in fact.lines}
    out: list[list[Any]] = []
    for r in sales_rows(fact):
        ln = lines[r.line_no]
        out.append(
            [
                r.order_id,
                r.line_no,
                r.line_id,
                r.rep_id,
                _d(r.share),
                r.rep_team_id,
                r.rep_region,
                fact.customer_id,
                fact.customer_known,
                fact.customer_tier,
                fact.customer_region,
                fact.customer_industry,
                fact.tenure_days,
                fact.orders_365d,
                r.sku,
                r.category,
                _d(r.quantity),
                _d(ln.unit_price),
                _d(ln.discount),
                _d(r.revenue),
                None if r.margin is None else _d(r.margin),
                fact.currency,
                placed,
                placed.date(),
                period,
                status,
                fact.total,
                fraction,
                fact.version,
            ]
        )
    return out


def order_table_row(fact: OrderFact) -> list[Any]:
    placed = fact.placed_at.astimezone(UTC)
    return [
        fact.order_id,
        fact.customer_id,
        fact.currency,
        placed,
        placed.date(),
        utc_month(placed),
        fact.total,
        _d(fact.paid),
        _d(fact.refunded),
        _d(fact.net_paid),
        _d(fact.outstanding),
        _d(fact.paid_fraction),
        fact.status,
        None if fact.cancelled_at is None else fact.cancelled_at.astimezone(UTC),
        fact.credit_source,
        [c.rep_id for c in fact.credits],
        [_d(c.share) for c in fact.credits],
        fact.customer_tier,
        fact.customer_region,
        fact.customer_industry,
        len(fact.lines),
        fact.version,
    ]


def customer_table_row(fact: CustomerFact) -> list[Any]:
    return [
        fact.customer_id,
        fact.name,
        fact.tier,
        fact.region,
        fact.industry,
        fact.owner_rep_id,
        fact.customer_since,
        fact.changed_at.astimezone(UTC),
        fact.version,
    ]


def rep_table_row(fact: RepFact) -> list[Any]:
    return [
        fact.rep_id,
        fact.name,
        fact.team_id,
        fact.manager_id,
        fact.region,
        fact.active,
        fact.changed_at.astimezone(UTC),
        fact.version,
    ]


def latest(facts: Iterable[Fact]) -> list[Fact]:
    """The highest version of each entity among ``facts`` (a batch often holds several
    versions of one order); ties keep the later one."""
    best: dict[tuple[str, str], Fact] = {}
    for f in facts:
        if isinstance(f, OrderFact):
            key = ("o", f.order_id)
        elif isinstance(f, CustomerFact):
            key = ("c", f.customer_id)
        else:
            key = ("r", f.rep_id)
        old = best.get(key)
        if old is None or f.version >= old.version:
            best[key] = f
    return list(best.values())


def fact_tables(facts: Sequence[Fact]) -> dict[str, tuple[tuple[str, ...], list[list[Any]]]]:
    """``table -> (columns, rows)`` for the latest version of each entity in ``facts``."""
    sales: list[list[Any]] = []
    orders: list[list[Any]] = []
    customers: list[list[Any]] = []
    reps: list[list[Any]] = []
    for f in latest(facts):
        if isinstance(f, OrderFact):
            sales.extend(sales_table_rows(f))
            orders.append(order_table_row(f))
        elif isinstance(f, CustomerFact):
            customers.append(customer_table_row(f))
        else:
            reps.append(rep_table_row(f))
    out: dict[str, tuple[tuple[str, ...], list[list[Any]]]] = {}
    for table, cols, rows in (
        ("sales_facts", SALES_COLUMNS, sales),
        ("orders", ORDER_COLUMNS, orders),
        ("customers", CUSTOMER_COLUMNS, customers),
        ("reps", REP_COLUMNS, reps),
    ):
        if rows:
            out[table] = (cols, rows)
    return out
