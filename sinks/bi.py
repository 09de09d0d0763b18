"""BI reads over the ClickHouse model of :mod:`sinks.facts` (docs/bi.md): performance
statistics with the change against the previous period, and the customer view.

Every function takes a :class:`~sinks.clickhouse.Store` and reads the de-duplicating
views (``v_sales``, ``v_orders``, ``v_customers``, ``v_reps``, ``v_commission``), so each
order counts at its latest version and each delta id once. Money is ``Decimal``; the
JSON forms (:func:`report_json`, :func:`schemas.jsonl.jsonable`) write it as strings.

Periods (:func:`parse_period`) are calendar ranges in UTC: a day ``2026-11-26``, an ISO
week ``2026-W48``, a month ``2026-11`` or a quarter ``2026-Q4``. Revenue and orders are
counted by the order's ``placed_at`` (cancelled orders excluded), commission by the
business time of the event that caused each delta (``occurred_at``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from processors.errors import ComstreamError
from processors.money import ZERO, round_cents

from .clickhouse import Store

__all__ = [
    "DIMENSIONS",
    "GRAINS",
    "BIError",
    "NotFound",
    "PerformanceReport",
    "PerformanceRow",
    "Period",
    "customer_view",
    "parse_by",
    "parse_period",
    "performance",
    "report_json",
]

DIMENSIONS = ("rep", "team", "customer", "product", "category", "region")
GRAINS = ("day", "week", "month", "quarter")
_GRAIN_DAYS = {"day": 1, "week": 7, "month": 28, "quarter": 90}
_PCT = Decimal("0.1")


class BIError(ComstreamError):
    """A BI query that cannot be answered as asked (bad period, unknown dimension)."""


class NotFound(BIError):
    """The entity asked for is not in the store."""


# ---- periods ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar range ``[start, end)`` of UTC dates, named ``label``."""

    label: str
    kind: str  # day | week | month | quarter
    start: date
    end: date

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return period_containing(self.start - timedelta(days=1), self.kind)


def _month_start(year: int, month: int) -> date:
    while month > 12:
        year, month = year + 1, month - 12
    return date(year, month, 1)


def period_containing(day: date, kind: str) -> Period:
    """The ``kind`` period (day, week, month, quarter) that ``day`` falls in."""
    if kind == "day":
        return Period(day.isoformat(), kind, day, day + timedelta(days=1))
    if kind == "week":
        iso = day.isocalendar()
        start = day - timedelta(days=iso.weekday - 1)
        return Period(f"{iso.year:04d}-W{iso.week:02d}", kind, start, start + timedelta(days=7))
    if kind == "month":
        start = date(day.year, day.month, 1)
        return Period(
            f"{day.year:04d}-{day.month:02d}", kind, start, _month_start(day.year, day.month + 1)
        )
    if kind == "quarter":
        q = (day.month - 1) // 3 + 1
        start = date(day.year, q * 3 - 2, 1)
        return Period(f"{day.year:04d}-Q{q}", kind, start, _month_start(day.year, q * 3 + 1))
    raise BIError(f"unknown period kind {kind!r}: expected one of {', '.join(GRAINS)}")


_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def parse_period(text: str) -> Period:
    """``2026-11-26`` (day), ``2026-W48`` (ISO week), ``2026-11`` (month) or ``2026-Q4``
    (quarter). Raises :class:`BIError` for anything else."""
    text = text.strip()
    try:
        if m := _DAY.match(text):
            return period_containing(date(int(m[1]), int(m[2]), int(m[3])), "day")
        if m := _WEEK.match(text):
            return period_containing(date.fromisocalendar(int(m[1]), int(m[2]), 1), "week")
        if m := _MONTH.match(text):
            return period_containing(date(int(m[1]), int(m[2]), 1), "month")
        if m := _QUARTER.match(text):
            return period_containing(date(int(m[1]), int(m[2]) * 3 - 2, 1), "quarter")
    except ValueError as exc:
        raise BIError(f"period {text!r}: {exc}") from None
    raise BIError(f"period {text!r}: expected 2026-11-26, 2026-W48, 2026-11 or 2026-Q4")


def parse_by(text: str | Sequence[str]) -> tuple[str, ...]:
    """Grouping keys from ``"rep,category"`` (or a sequence): each one of
    :data:`DIMENSIONS` or :data:`GRAINS`, at most one grain, no repeats."""
    items = text.split(",") if isinstance(text, str) else list(text)
    keys = tuple(k.strip() for k in items if k.strip())
    for k in keys:
        if k not in DIMENSIONS and k not in GRAINS:
            raise BIError(f"cannot group by {k!r}: expected {', '.join(DIMENSIONS + GRAINS)}")
    if len(set(keys)) != len(keys):
        raise BIError("a grouping key is repeated")
    if sum(1 for k in keys if k in GRAINS) > 1:
        raise BIError("group by at most one time grain")
    return keys


# ---- performance -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    revenue: Decimal
    orders: int
    commission: Decimal


@dataclass(frozen=True, slots=True)
class PerformanceRow:
    """One group: ``keys`` (grouping key -> value, None where the figure has no such
    attribute, e.g. the product of an accelerator), its currency, the period's figures
    and, when compared, the previous period's and the changes (``pct`` None when the
    previous figure is 0)."""

    keys: dict[str, str | None]
    currency: str
    current: Figures
    previous: Figures | None = None

    def change(self, name: str) -> Decimal | None:
        if self.previous is None:
            return None
        value: Decimal = Decimal(getattr(self.current, name)) - Decimal(
            getattr(self.previous, name)
        )
        return value

    def change_pct(self, name: str) -> Decimal | None:
        if self.previous is None:
            return None
        before = Decimal(getattr(self.previous, name))
        if before == 0:
            return None
        now = Decimal(getattr(self.current, name))
        return ((now - before) * 100 / abs(before)).quantize(_PCT)


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    by: tuple[str, ...]
    period: Period
    previous: Period | None
    rows: list[PerformanceRow]
    totals: list[PerformanceRow] = field(default_factory=list)  # keys {}, one per currency


@dataclass
class _Acc:
    revenue: Decimal = ZERO
    orders: int = 0
    commission: Decimal = ZERO

    def figures(self) -> Figures:
        return Figures(_cents(self.revenue), self.orders, _cents(self.commission))


def _cents(value: Decimal) -> Decimal:
    """``value`` rounded to cents, without a negative zero (split parts may leave one)."""
    r = round_cents(value)
    return r.copy_abs() if r == 0 else r


def _bucket(day: date, grain: str) -> str:
    return period_containing(day, grain).label


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _prev_bucket(label: str) -> str:
    return parse_period(label).previous().label


Key = tuple[tuple[str | None, ...], str]

# How each dimension is read in the sales rows (``s`` = v_sales, ``r`` = v_reps) and in
# the commission rows (``c`` = v_commission, ``o`` = v_orders, ``r`` = v_reps).
# product/category of a delta come from its trace (:func:`_allocate`), not from SQL.
_SALES_EXPR = {
    "rep": "nullIf(s.rep_id, '')",
    "team": "r.team_id",
    "customer": "s.customer_id",
    "product": "s.sku",
    "category": "s.category",
    "region": "s.customer_region",
}
_COMMISSION_EXPR = {
    "rep": "c.rep_id",
    "team": "r.team_id",
    "customer": "nullIf(c.customer_id, '')",
    "region": "if(c.order_id = '', NULL, o.customer_region)",
}
_SPLIT = ("product", "category")


def _window(start: datetime, end: datetime) -> dict[str, Any]:
    return {"lo": start.replace(tzinfo=None), "hi": end.replace(tzinfo=None)}


def _where(exprs: Mapping[str, str], filters: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    sql = ""
    params: dict[str, Any] = {}
    for i, (k, v) in enumerate(sorted(filters.items())):
        if k in exprs:
            sql += f" AND {exprs[k]} = {{f{i}:String}}"
            params[f"f{i}"] = v
    return sql, params


def _sales_groups(
    store: Store, dims: Sequence[str], filters: Mapping[str, str], start: datetime, end: datetime
) -> list[tuple[Any, ...]]:
    """``(dim values..., currency, day, revenue, orders)`` per (dims, currency, day):
    orders placed in the window, not cancelled. An order is placed on one day, so order
    counts of different days add up exactly."""
    cols = [f"{_SALES_EXPR[d]} AS k{i}" for i, d in enumerate(dims)]
    where, params = _where(_SALES_EXPR, filters)
    join = "LEFT JOIN v_reps AS r ON r.rep_id = s.rep_id" if "team" in {*dims, *filters} else ""
    group = ", ".join([*(f"k{i}" for i in range(len(dims))), "s.currency", "d"])
    return store.query(
        f"SELECT {', '.join([*cols, 's.currency', 's.placed_date AS d'])}, "
        "toDecimalString(sum(s.revenue), 12), uniqExact(s.order_id) "
        f"FROM v_sales AS s {join} WHERE s.order_status != 'cancelled' "
        "AND s.placed_at >= {lo:DateTime64(6)} AND s.placed_at < {hi:DateTime64(6)}"
        f"{where} GROUP BY {group}",
        {**_window(start, end), **params},
    )


def _commission_groups(
    store: Store, dims: Sequence[str], filters: Mapping[str, str], start: datetime, end: datetime
) -> list[tuple[Any, ...]]:
    """``(dim values..., currency, day, amount)`` of the deltas whose cause occurred in
    the window. With product or category among ``dims`` or ``filters`` each delta is
    split over its lines (:func:`_allocate`) in Python; otherwise ClickHouse sums."""
    sql_dims = [d for d in dims if d not in _SPLIT]
    where, params = _where(_COMMISSION_EXPR, filters)
    joins = "LEFT JOIN v_orders AS o ON o.order_id = c.order_id"
    if "team" in {*dims, *filters}:
        joins += " LEFT JOIN v_reps AS r ON r.rep_id = c.rep_id"
    window = "c.occurred_at >= {lo:DateTime64(3)} AND c.occurred_at < {hi:DateTime64(3)}"
    cols = [f"{_COMMISSION_EXPR[d]} AS k{i}" for i, d in enumerate(sql_dims)]
    split_filters = {k: v for k, v in filters.items() if k in _SPLIT}
    if not any(d in _SPLIT for d in dims) and not split_filters:
        group = ", ".join([*(f"k{i}" for i in range(len(sql_dims))), "c.currency", "d"])
        return store.query(
            f"SELECT {', '.join([*cols, 'c.currency', 'toDate(c.occurred_at) AS d'])}, "
            f"toDecimalString(sum(c.amount), 2) FROM v_commission AS c {joins} "
            f"WHERE {window}{where} GROUP BY {group}",
            {**_window(start, end), **params},
        )
    rows = store.query(
        f"SELECT {', '.join([*cols, 'c.currency', 'toDate(c.occurred_at) AS d'])}, "
        f"toDecimalString(c.amount, 2), c.trace FROM v_commission AS c {joins} "
        f"WHERE {window}{where}",
        {**_window(start, end), **params},
    )
    n = len(sql_dims)
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for row in rows:
        base = dict(zip(sql_dims, row[:n], strict=True))
        currency, day, amount, trace = row[n], row[n + 1], Decimal(row[n + 2]), row[n + 3]
        for sku, category, part in _allocate(amount, trace):
            attrs = {**base, "product": sku, "category": category}
            if any(attrs.get(k) != v for k, v in split_filters.items()):
                continue
            sums[(*(attrs[d] for d in dims), currency, day)] += part
    return [(*k, v) for k, v in sums.items()]


def _allocate(amount: Decimal, trace: str) -> list[tuple[str | None, str | None, Decimal]]:
    """``(sku, category, part)`` of a delta's amount over its order lines, in proportion
    to each line's commission in the trace (by base amount when those are all 0); the
    whole amount unallocated (``None, None``) when the delta has no order line trace (an
    accelerator)."""
    try:
        lines = json.loads(trace) if trace else []
    except ValueError:
        lines = []
    lines = [t for t in lines if t.get("sku")]
    if not lines:
        return [(None, None, amount)]
    weights = [abs(Decimal(t.get("amount") or "0")) for t in lines]
    if sum(weights) == 0:
        weights = [abs(Decimal(t.get("base_amount") or "0")) for t in lines]
    total = sum(weights, ZERO)
    if total == 0:
        return [(None, None, amount)]
    return [
        (t.get("sku"), t.get("category"), amount * w / total)
        for t, w in zip(lines, weights, strict=True)
    ]


def performance(
    store: Store,
    by: str | Sequence[str],
    period: str | Period,
    compare: bool = True,
    filters: Mapping[str, str] | None = None,
) -> PerformanceReport:
    """Revenue, orders and commission in ``period`` grouped by ``by`` (see
    :func:`parse_by`; currency is always a key, since amounts of different currencies
    never add up), with the same figures for the previous period of the same kind when
    ``compare``. ``filters`` keeps only figures whose dimension equals the value (e.g.
    ``{"team": "north"}``).

    - revenue: the sum of order line revenue x the rep's share over the orders placed in
      the period and not cancelled (summed over all reps, an order's revenue once);
    - orders: distinct orders among those;
    - commission: the deltas (commission, adjustment, accelerator) whose cause occurred
      in the period; by product or category a delta is split over its order lines in
      proportion to their commission in the trace; an accelerator has no customer,
      product, category or region (None there).
    - team is the rep's team in the reps dimension now; region the customer's region
      frozen with the order.

    With a time grain among the keys, each row is compared with the bucket just before it
    (the day, week, month or quarter before), else with the previous period. ClickHouse
    groups by the keys and the day; only the product/category split of commission runs
    row by row in Python."""
    keys = parse_by(by)
    cur = parse_period(period) if isinstance(period, str) else period
    grain = next((k for k in keys if k in GRAINS), None)
    if grain is not None and _GRAIN_DAYS[grain] > (cur.end - cur.start).days:
        raise BIError(f"a {grain} is longer than the period {cur.label}")
    wanted = dict(filters or {})
    for k in wanted:
        if k not in DIMENSIONS:
            raise BIError(f"cannot filter by {k!r}: expected {', '.join(DIMENSIONS)}")
    prev = cur.previous() if compare else None
    lo = prev.start_at if prev is not None else cur.start_at
    if grain is not None and compare:
        lo = min(lo, parse_period(_bucket(cur.start, grain)).previous().start_at)
    hi = cur.end_at
    dims = [k for k in keys if k in DIMENSIONS]

    current: dict[Key, _Acc] = defaultdict(_Acc)
    everything: dict[Key, _Acc] = defaultdict(_Acc)  # both windows, for the comparisons
    before: dict[Key, _Acc] = defaultdict(_Acc)  # the previous period only
    cur_tot: dict[str, _Acc] = defaultdict(_Acc)
    prev_tot: dict[str, _Acc] = defaultdict(_Acc)

    def key_of(values: Sequence[Any], day: date) -> tuple[str | None, ...]:
        by_dim = dict(zip(dims, values, strict=True))
        return tuple(_bucket(day, k) if k in GRAINS else by_dim[k] for k in keys)

    def targets(
        day: date, currency: str, k: tuple[str | None, ...]
    ) -> tuple[list[_Acc], _Acc | None]:
        """The group accumulators a figure of ``day`` adds to, and its period's total."""
        groups = [everything[(k, currency)]]
        if cur.start <= day < cur.end:
            return [*groups, current[(k, currency)]], cur_tot[currency]
        if prev is not None and prev.start <= day < prev.end:
            return [*groups, before[(k, currency)]], prev_tot[currency]
        return groups, None

    n = len(dims)
    for row in _sales_groups(store, dims, wanted, lo, hi):
        currency, day, revenue, count = row[n], row[n + 1], Decimal(row[n + 2]), int(row[n + 3])
        groups, total = targets(day, currency, key_of(row[:n], day))
        for acc in groups:
            acc.revenue += revenue
            acc.orders += count
        if total is not None:
            total.revenue += revenue
    # an order may fall in several groups (one per rep, category...): the totals count
    # distinct orders apart, again per day
    for currency, day, _revenue, count in _sales_groups(store, [], wanted, lo, hi):
        if cur.start <= day < cur.end:
            cur_tot[currency].orders += int(count)
        elif prev is not None and prev.start <= day < prev.end:
            prev_tot[currency].orders += int(count)

    for row in _commission_groups(store, dims, wanted, lo, hi):
        currency, day, amount = row[n], row[n + 1], Decimal(row[n + 2])
        groups, total = targets(day, currency, key_of(row[:n], day))
        for acc in groups:
            acc.commission += amount
        if total is not None:
            total.commission += amount

    zero = Figures(Decimal("0.00"), 0, Decimal("0.00"))

    def previous_of(k: Key) -> Figures:
        values, currency = k
        if grain is None:
            acc = before.get(k)
        else:
            i = keys.index(grain)
            shifted = list(values)
            shifted[i] = _prev_bucket(str(values[i]))
            acc = everything.get((tuple(shifted), currency))
        return acc.figures() if acc is not None else zero

    rows = [
        PerformanceRow(
            dict(zip(keys, values, strict=True)),
            currency,
            acc.figures(),
            previous_of((values, currency)) if compare else None,
        )
        for (values, currency), acc in current.items()
    ]
    rows.sort(key=lambda r: (r.currency, -r.current.revenue, -r.current.commission, _sort_key(r)))
    totals = [
        PerformanceRow(
            {},
            c,
            cur_tot[c].figures(),
            (prev_tot[c].figures() if c in prev_tot else zero) if compare else None,
        )
        for c in sorted(cur_tot)
    ]
    return PerformanceReport(keys, cur, prev, rows, totals)


def _sort_key(row: PerformanceRow) -> tuple[str, ...]:
    return tuple(v or "" for v in row.keys.values())


def row_json(row: PerformanceRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        **row.keys,
        "currency": row.currency,
        "revenue": str(row.current.revenue),
        "orders": row.current.orders,
        "commission": str(row.current.commission),
    }
    if row.previous is not None:
        out["previous"] = {
            "revenue": str(row.previous.revenue),
            "orders": row.previous.orders,
            "commission": str(row.previous.commission),
        }
        out["change"] = {
            name: {
                "abs": str(row.change(name)),
                "pct": None if (p := row.change_pct(name)) is None else str(p),
            }
            for name in ("revenue", "orders", "commission")
        }
    return out


def report_json(report: PerformanceReport) -> dict[str, Any]:
    """The report as JSON-able data: money as strings, percentages as strings with one
    decimal (None when the previous figure is 0)."""
    p = report.period
    prev = report.previous
    return {
        "by": list(report.by),
        "period": {"label": p.label, "start": p.start.isoformat(), "end": p.end.isoformat()},
        "previous": None
        if prev is None
        else {"label": prev.label, "start": prev.start.isoformat(), "end": prev.end.isoformat()},
        "rows": [row_json(r) for r in report.rows],
        "totals": [row_json(r) for r in report.totals],
    }


# ---- customer view ---------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    return round_cents(Decimal(value))


def _rows(
    store: Store, sql: str, params: dict[str, Any], names: Iterable[str]
) -> list[dict[str, Any]]:
    cols = list(names)
    return [dict(zip(cols, r, strict=True)) for r in store.query(sql, params)]


def customer_view(
    store: Store, customer_id: str, as_of: datetime | None = None, recent: int = 20
) -> dict[str, Any]:
    """Everything a rep needs about one customer, as JSON-able keys (values are Decimal,
    datetime and date; :func:`jsonable` makes strings of them)::

        {"customer": {customer_id, name, tier, region, industry, owner_rep_id,
                      customer_since, changed_at, known},
         "orders": [{order_id, placed_at, currency, total, paid, refunded, outstanding,
                     status, rep_ids}]  (the ``recent`` latest, newest first),
         "favourite_categories": [{category, currency, revenue, orders}],
         "favourite_products": [{sku, category, currency, revenue, quantity}],
         "loyalty": {orders_365d, orders_total, tenure_days, first_order_at, last_order_at},
         "open_payments": [{order_id, currency, total, paid, outstanding}],
         "commission": [{rep_id, currency, amount}]}

    ``paid`` is payments minus refunds; cancelled orders count in ``orders`` but not in
    favourites, loyalty or open payments; ``orders_365d`` counts orders placed in the
    365 days up to ``as_of`` (default now); ``tenure_days`` runs from ``customer_since``,
    or from the first order when the CRM does not say. Raises :class:`NotFound` when
    neither the CRM nor any order knows the customer."""
    now = as_of or datetime.now(UTC)
    p = {"c": customer_id}
    crm = _rows(
        store,
        "SELECT customer_id, name, tier, region, industry, owner_rep_id, customer_since, "
        "changed_at FROM v_customers WHERE customer_id = {c:String}",
        p,
        (
            "customer_id",
            "name",
            "tier",
            "region",
            "industry",
            "owner_rep_id",
            "customer_since",
            "changed_at",
        ),
    )
    orders = _rows(
        store,
        "SELECT order_id, placed_at, currency, total, net_paid, refunded, outstanding, status, "
        "rep_ids FROM v_orders WHERE customer_id = {c:String} "
        "ORDER BY placed_at DESC, order_id LIMIT {n:UInt32}",
        {**p, "n": recent},
        (
            "order_id",
            "placed_at",
            "currency",
            "total",
            "paid",
            "refunded",
            "outstanding",
            "status",
            "rep_ids",
        ),
    )
    if not crm and not orders:
        raise NotFound(f"customer {customer_id} is not known")
    if crm:
        customer = crm[0]
        customer["changed_at"] = _aware(customer["changed_at"])
        customer["known"] = True
    else:
        customer = {
            "customer_id": customer_id,
            "name": None,
            "tier": None,
            "region": None,
            "industry": None,
            "owner_rep_id": None,
            "customer_since": None,
            "changed_at": None,
            "known": False,
        }
    for o in orders:
        o["placed_at"] = _aware(o["placed_at"])
        for m in ("total", "paid", "refunded", "outstanding"):
            o[m] = _money(o[m])
        o["rep_ids"] = list(o["rep_ids"])
    categories = _rows(
        store,
        "SELECT category, currency, sum(revenue) AS r, uniqExact(order_id) FROM v_sales "
        "WHERE customer_id = {c:String} AND order_status != 'cancelled' "
        "GROUP BY category, currency ORDER BY r DESC, category",
        p,
        ("category", "currency", "revenue", "orders"),
    )
    for c in categories:
        c["revenue"] = _money(c["revenue"])
    products = _rows(
        store,
        "SELECT sku, any(category), currency, sum(revenue) AS r, sum(quantity) FROM v_sales "
        "WHERE customer_id = {c:String} AND order_status != 'cancelled' "
        "GROUP BY sku, currency ORDER BY r DESC, sku",
        p,
        ("sku", "category", "currency", "revenue", "quantity"),
    )
    for pr in products:
        pr["revenue"] = _money(pr["revenue"])
        pr["quantity"] = Decimal(pr["quantity"]).normalize()
    stats = store.query(
        "SELECT countIf(placed_at > {lo:DateTime64(6)} AND placed_at <= {hi:DateTime64(6)}), "
        "count(), min(placed_at), max(placed_at) FROM v_orders "
        "WHERE customer_id = {c:String} AND status != 'cancelled'",
        {
            **p,
            "lo": (now - timedelta(days=365)).astimezone(UTC).replace(tzinfo=None),
            "hi": now.astimezone(UTC).replace(tzinfo=None),
        },
    )[0]
    n365, n_all, first, last = int(stats[0]), int(stats[1]), stats[2], stats[3]
    first_at = _aware(first) if n_all else None
    since = customer.get("customer_since")
    start = since if since is not None else (first_at.date() if first_at else None)
    loyalty = {
        "orders_365d": n365,
        "orders_total": n_all,
        "tenure_days": None if start is None else (now.astimezone(UTC).date() - start).days,
        "first_order_at": first_at,
        "last_order_at": _aware(last) if n_all else None,
    }
    open_payments = _rows(
        store,
        "SELECT order_id, currency, total, net_paid, outstanding FROM v_orders "
        "WHERE customer_id = {c:String} AND status = 'open' ORDER BY placed_at, order_id",
        p,
        ("order_id", "currency", "total", "paid", "outstanding"),
    )
    for op in open_payments:
        for m in ("total", "paid", "outstanding"):
            op[m] = _money(op[m])
    commission = _rows(
        store,
        "SELECT rep_id, currency, sum(amount) FROM v_commission WHERE customer_id = {c:String} "
        "GROUP BY rep_id, currency ORDER BY rep_id, currency",
        p,
        ("rep_id", "currency", "amount"),
    )
    for cm in commission:
        cm["amount"] = _money(cm["amount"])
    return {
        "customer": customer,
        "orders": orders,
        "favourite_categories": categories,
        "favourite_products": products,
        "loyalty": loyalty,
        "open_payments": open_payments,
        "commission": commission,
    }
