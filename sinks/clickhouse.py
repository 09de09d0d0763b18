"""ClickHouse: the deltas ledger, per-rep rollups, and the queries that read them.

One :class:`Store` per process and data path. The DSN picks the engine:
``chdb:///abs/path`` runs the real ClickHouse engine in-process (chDB; one data path per
process), ``http://host:8123`` talks to a server. Both go through clickhouse-connect.

Exactly-once effect (docs/exactly-once.md):
- every ledger row carries its source ``(topic, partition, offset)``; on start the sink
  resumes after the highest offset the ledger holds, so a batch that was inserted but
  whose Kafka commit was lost is not read again;
- a batch is inserted with ``insert_deduplication_token = topic-partition-first-last``
  (and ``non_replicated_deduplication_window`` on every table), so a retried insert of the
  same batch is a no-op, also in the materialized view;
- a delta id that the ledger already holds (a stage re-emitted it after a crash) is
  filtered out before the insert, and the ledger is a ReplacingMergeTree on delta_id, so
  no delta id can count twice in any total;
- the rollup behind the leaderboard is checked against the ledger on start and rebuilt
  when a crash left it behind.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

import clickhouse_connect

from processors.errors import ComstreamError
from processors.events import CommissionDelta, DeltaKind
from processors.facts import Fact

from .facts import BI_DDL, REP_DAY_REBUILD, fact_tables


class SinkError(ComstreamError):
    """ClickHouse refused or could not be reached."""


_DEDUP = "non_replicated_deduplication_window = 10000"
# The ledger is read a rep-period at a time (a statement: every column of a few hundred
# to a few thousand neighbouring rows). Granules of 1,024 rows cut the engine's part of a
# 3,250-line statement on chDB from 20 to 14 ms (one merged part of 1M rows). Compact
# parts (all columns in one file) read faster still (11 ms) but their merges of a large
# ledger slowed every query while they ran (bench/RESULTS.md), so the parts stay wide.
# Settings of a table are fixed when it is created: a ledger made by an older version
# keeps its own (it still works, its statements are slower).
_LEDGER_PARTS = "index_granularity = 1024"

DDL: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS commission_deltas (
        delta_id String,
        kind LowCardinality(String),
        rep_id String,
        order_id String,
        customer_id String,
        plan_id LowCardinality(String),
        plan_version UInt32,
        currency LowCardinality(String),
        amount Decimal(18, 2),
        cumulative Decimal(18, 2),
        commission Decimal(38, 12),
        earned_fraction Decimal(38, 12),
        share Decimal(38, 12),
        revenue_base Decimal(38, 12),
        cause_event_id String,
        cause_event_type LowCardinality(String),
        occurred_at DateTime64(3, 'UTC'),
        booked_period LowCardinality(String),
        origin_period LowCardinality(String),
        reverses String,
        trace String,
        src_topic LowCardinality(String),
        src_partition UInt32,
        src_offset UInt64,
        inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    )
    ENGINE = ReplacingMergeTree
    ORDER BY (rep_id, booked_period, delta_id)
    SETTINGS {_DEDUP}, {_LEDGER_PARTS}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS rep_period_totals (
        booked_period LowCardinality(String),
        rep_id String,
        currency LowCardinality(String),
        amount Decimal(38, 2),
        revenue_base Decimal(38, 12),
        deltas UInt64
    )
    ENGINE = SummingMergeTree
    ORDER BY (booked_period, rep_id, currency)
    SETTINGS {_DEDUP}
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS rep_period_totals_mv TO rep_period_totals AS
    SELECT booked_period, rep_id, currency,
           sum(amount) AS amount, sum(revenue_base) AS revenue_base, count() AS deltas
    FROM commission_deltas
    GROUP BY booked_period, rep_id, currency
    """,
)

_COLUMNS = (
    "delta_id",
    "kind",
    "rep_id",
    "order_id",
    "customer_id",
    "plan_id",
    "plan_version",
    "currency",
    "amount",
    "cumulative",
    "commission",
    "earned_fraction",
    "share",
    "revenue_base",
    "cause_event_id",
    "cause_event_type",
    "occurred_at",
    "booked_period",
    "origin_period",
    "reverses",
    "trace",
    "src_topic",
    "src_partition",
    "src_offset",
)
_INSERT_SETTINGS = {"deduplicate_blocks_in_dependent_materialized_views": 1}


@dataclass(frozen=True, slots=True)
class SourcedDelta:
    """A delta with the Kafka position it was read from."""

    topic: str
    partition: int
    offset: int
    delta: CommissionDelta


@dataclass(frozen=True, slots=True)
class LeaderRow:
    rank: int
    rep_id: str
    currency: str
    commission: Decimal
    revenue_base: Decimal
    deltas: int


def _q(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places))


def _trace(delta: CommissionDelta) -> str:
    return json.dumps(
        [
            {
                "line_id": t.line_id,
                "sku": t.sku,
                "category": t.category,
                "rule_id": t.rule_id,
                "base_kind": t.base_kind,
                "base_amount": str(t.base_amount),
                "rate": t.rate,
                "modifiers": list(t.modifiers),
                "multiplier": str(t.multiplier),
                "amount": str(t.amount),
                "note": t.note,
            }
            for t in delta.lines
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _row(item: SourcedDelta) -> list[Any]:
    d = item.delta
    p12 = "0.000000000001"
    return [
        d.delta_id,
        d.kind.value,
        d.rep_id,
        d.order_id or "",
        d.customer_id or "",
        d.plan_id,
        d.plan_version,
        d.currency,
        d.amount,
        d.cumulative,
        _q(d.commission, p12),
        _q(d.earned_fraction, p12),
        _q(d.share, p12),
        _q(d.revenue_base, p12),
        d.cause_event_id,
        d.cause_event_type,
        d.occurred_at,
        d.booked_period,
        d.origin_period,
        d.reverses or "",
        _trace(d),
        item.topic,
        item.partition,
        item.offset,
    ]


class Store:
    """The ClickHouse side of comstream. Thread-safe: calls are serialised on one lock,
    since a chDB engine is shared by the whole process."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        try:
            self._client = clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:
            raise SinkError(f"cannot open ClickHouse at {dsn}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def _command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self._lock:
            try:
                return self._client.command(sql, parameters=parameters)
            except Exception as exc:
                raise SinkError(f"ClickHouse command failed: {exc}") from exc

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a read query, as tuples."""
        with self._lock:
            try:
                rows = self._client.query(sql, parameters=parameters).result_rows
                return [tuple(row) for row in rows]
            except Exception as exc:
                raise SinkError(f"ClickHouse query failed: {exc}") from exc

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL). Raises SinkError."""
        self._command(sql, parameters)

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Insert ``rows`` into ``table`` as one block. Raises SinkError if ClickHouse did
        not acknowledge."""
        with self._lock:
            try:
                self._client.insert(
                    table, rows, column_names=list(columns), settings=settings or {}
                )
            except Exception as exc:
                raise SinkError(f"insert into {table} failed: {exc}") from exc

    def ensure_schema(self) -> None:
        """Create the tables and views if they do not exist (idempotent), then make sure
        the rollup agrees with the ledger (a crash between the two writes of one insert
        could leave it behind); rebuild it if not."""
        for ddl in (*DDL, *BI_DDL):
            self._command(ddl)
        self.repair_rollups()

    def repair_rollups(self) -> bool:
        """Rebuild ``rep_period_totals`` and ``rep_day_totals`` from the ledger where they
        disagree with it. Returns whether a rebuild was needed."""
        ledger = self.query("SELECT count(), sum(amount) FROM commission_deltas FINAL")[0]
        repaired = False
        for table, rebuild in (
            (
                "rep_period_totals",
                """
                INSERT INTO rep_period_totals
                SELECT booked_period, rep_id, currency, sum(amount), sum(revenue_base), count()
                FROM commission_deltas FINAL
                GROUP BY booked_period, rep_id, currency
                """,
            ),
            ("rep_day_totals", REP_DAY_REBUILD),
        ):
            rollup = self.query(f"SELECT sum(deltas), sum(amount) FROM {table}")[0]
            if int(ledger[0]) == int(rollup[0] or 0) and Decimal(ledger[1] or 0) == Decimal(
                rollup[1] or 0
            ):
                continue
            if not repaired:
                self._command("OPTIMIZE TABLE commission_deltas FINAL")
            repaired = True
            self._command(f"TRUNCATE TABLE {table}")
            self._command(rebuild)
        return repaired

    def insert_facts(self, facts: Sequence[Fact]) -> int:
        """Insert BI facts (:mod:`processors.facts`): the latest version of each entity in
        ``facts`` into ``sales_facts``/``orders``/``customers``/``reps``. Idempotent: the
        tables keep the highest version per key (docs/bi.md). Returns the rows inserted.
        Raises SinkError if ClickHouse did not acknowledge."""
        total = 0
        for table, (columns, rows) in fact_tables(facts).items():
            with self._lock:
                try:
                    self._client.insert(table, rows, column_names=columns)
                except Exception as exc:
                    raise SinkError(f"insert into {table} failed: {exc}") from exc
            total += len(rows)
        return total

    def resume_offsets(self, topic: str) -> dict[int, int]:
        """For each partition of ``topic`` that the ledger holds rows from, the offset to
        resume reading at (one past the highest stored)."""
        rows = self.query(
            "SELECT src_partition, max(src_offset) FROM commission_deltas "
            "WHERE src_topic = {t:String} GROUP BY src_partition",
            {"t": topic},
        )
        return {int(p): int(o) + 1 for p, o in rows}

    def known_delta_ids(self, deltas: Sequence[CommissionDelta]) -> set[str]:
        """The ids among ``deltas`` that the ledger already holds."""
        if not deltas:
            return set()
        reps = sorted({d.rep_id for d in deltas})
        ids = sorted({d.delta_id for d in deltas})
        rows = self.query(
            "SELECT delta_id FROM commission_deltas "
            "WHERE rep_id IN {reps:Array(String)} AND delta_id IN {ids:Array(String)}",
            {"reps": reps, "ids": ids},
        )
        return {r[0] for r in rows}

    def insert_batch(self, batch: Sequence[SourcedDelta]) -> int:
        """Insert one batch read from one topic (offsets increasing within each
        partition) as one insert. Deltas whose id is already stored, or repeated within
        the batch, are skipped. Returns how many rows were inserted. Raises SinkError if
        ClickHouse did not acknowledge; the caller must then not commit the batch's
        offsets, and may retry the same batch: its deduplication token is made of the
        offset range of each partition, so an insert that did happen is not repeated.

        One insert per batch rather than per partition: an insert costs about 20 ms
        whatever its size (three tables: the ledger and its two rollups), which bounded
        the worker at a steady rate (bench/RESULTS.md)."""
        if not batch:
            return 0
        topic = batch[0].topic
        if any(b.topic != topic for b in batch):
            raise SinkError("a batch must come from one topic")
        ranges: dict[int, tuple[int, int]] = {}
        for b in batch:
            lo, hi = ranges.get(b.partition, (b.offset, b.offset))
            if b.offset < hi:
                raise SinkError(f"offsets of partition {b.partition} must increase in a batch")
            ranges[b.partition] = (lo, b.offset)
        known = self.known_delta_ids([b.delta for b in batch])
        rows: list[list[Any]] = []
        for item in batch:
            if item.delta.delta_id in known:
                continue
            known.add(item.delta.delta_id)
            rows.append(_row(item))
        if not rows:
            return 0
        # one partition keeps the token format of earlier versions: "topic-p-first-last"
        token = topic + "".join(f"-{p}-{lo}-{hi}" for p, (lo, hi) in sorted(ranges.items()))
        with self._lock:
            try:
                self._client.insert(
                    "commission_deltas",
                    rows,
                    column_names=_COLUMNS,
                    settings={**_INSERT_SETTINGS, "insert_deduplication_token": token},
                )
            except Exception as exc:
                raise SinkError(f"insert of {token} failed: {exc}") from exc
        return len(rows)

    def insert_deltas(self, deltas: Iterable[CommissionDelta], source: str) -> int:
        """Insert deltas that did not come from Kafka (``comstream replay --clickhouse``),
        numbered in order under the pseudo topic ``source``, partition 0."""
        start = self.resume_offsets(source).get(0, 0)
        items = [SourcedDelta(source, 0, start + i, d) for i, d in enumerate(deltas)]
        total = 0
        for i in range(0, len(items), 10_000):
            total += self.insert_batch(items[i : i + 10_000])
        return total

    # ---- reads -------------------------------------------------------------------

    def leaderboard(self, period: str, limit: int = 20) -> list[LeaderRow]:
        """Reps by commission booked in ``period``, from the rollup (fast)."""
        rows = self.query(
            "SELECT rep_id, currency, sum(amount) AS a, sum(revenue_base), sum(deltas) "
            "FROM rep_period_totals WHERE booked_period = {p:String} "
            "GROUP BY rep_id, currency ORDER BY a DESC, rep_id LIMIT {n:UInt32}",
            {"p": period, "n": limit},
        )
        return [
            LeaderRow(i + 1, r[0], r[1], Decimal(r[2]), Decimal(r[3]), int(r[4]))
            for i, r in enumerate(rows)
        ]

    def period_sums_before(
        self, period: str, before: datetime, rep_ids: Sequence[str] | None = None
    ) -> dict[tuple[str, str], Decimal]:
        """Per (rep, currency): the commission booked in ``period`` by deltas whose
        ``occurred_at`` is before ``before`` (an aware instant), each delta id once.
        With ``rep_ids``, only those reps. The leaderboard's "change since yesterday" is a
        rep's period total minus this sum at the start of today."""
        if before.tzinfo is None:
            raise ValueError("before must be timezone-aware")
        where = "PREWHERE booked_period = {p:String}"
        params: dict[str, Any] = {"p": period, "t": before.astimezone(UTC)}
        if rep_ids is not None:
            if not rep_ids:
                return {}
            where += " AND rep_id IN {reps:Array(String)}"
            params["reps"] = sorted(set(rep_ids))
        rows = self.query(
            "SELECT rep_id, currency, sum(amount) FROM ("
            "SELECT delta_id, rep_id, currency, amount FROM commission_deltas "
            f"{where} WHERE occurred_at < {{t:DateTime64(3, 'UTC')}} "
            "LIMIT 1 BY delta_id) GROUP BY rep_id, currency",
            params,
        )
        return {(r[0], r[1]): Decimal(r[2]) for r in rows}

    def periods(self) -> list[str]:
        """Booked periods present, newest first."""
        rows = self.query(
            "SELECT DISTINCT booked_period FROM rep_period_totals ORDER BY booked_period DESC"
        )
        return [r[0] for r in rows]

    def exact_totals(self) -> dict[tuple[str, str, str], Decimal]:
        """Every (rep, booked period, currency) total from the ledger, each delta id
        counted once (``FINAL`` collapses repeated ids) — the figure compared with replay."""
        rows = self.query(
            "SELECT rep_id, booked_period, currency, sum(amount) FROM commission_deltas FINAL "
            "GROUP BY rep_id, booked_period, currency"
        )
        return {(r[0], r[1], r[2]): Decimal(r[3]) for r in rows}

    def delta_count(self) -> tuple[int, int]:
        """(rows in the ledger, distinct delta ids)."""
        row = self.query("SELECT count(), uniqExact(delta_id) FROM commission_deltas")[0]
        return int(row[0]), int(row[1])

    def query_columns(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[Sequence[Any]]:
        """Columns of a read query (one sequence per selected column; empty when no row),
        DateTime columns as aware datetimes. Cheaper than :meth:`query` for many rows."""
        with self._lock:
            try:
                result = self._client.query(
                    sql, parameters=parameters, column_oriented=True, tz_mode="aware"
                )
                return list(result.result_columns)
            except Exception as exc:
                raise SinkError(f"ClickHouse query failed: {exc}") from exc

    def statement(self, rep_id: str, period: str) -> list[dict[str, Any]]:
        """Every delta of ``rep_id`` booked in ``period``, each delta id once, ordered by
        ``occurred_at`` then ``delta_id``: the lines of a rep's statement. Keys are
        :data:`STATEMENT_COLUMNS`; money and fractions are ``Decimal`` (with the column's
        scale: ``Decimal("20.60")``), ``occurred_at`` is an aware UTC datetime,
        ``order_id``/``customer_id``/``reverses`` are ``None`` when absent, and ``trace``
        is the JSON text of the line traces as stored."""
        return statement_rows(self.query_columns(STATEMENT_SQL, {"r": rep_id, "p": period}))

    def statement_page(
        self, rep_id: str, period: str, offset: int = 0, limit: int | None = None
    ) -> StatementPage:
        """Lines ``offset`` to ``offset + limit`` of :meth:`statement` (all from ``offset``
        when ``limit`` is None), with the number of lines in the whole statement, its
        amounts per UTC day and its :meth:`statement_totals`: what a page of the rep's
        statement shows, from one query. Only the lines of the page become dicts."""
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("offset and limit must not be negative")
        columns = self.query_columns(STATEMENT_SQL, {"r": rep_id, "p": period})
        order = statement_order(columns)
        end = None if limit is None else offset + limit
        days, kinds = statement_sums(columns, order)
        return StatementPage(
            lines=statement_rows(columns, order[offset:end]),
            line_count=len(order),
            offset=offset,
            days=days,
            totals=statement_totals_dict(
                rep_id, period, ((c, k, a, n) for (c, k), (a, n) in kinds.items())
            ),
        )

    def statement_totals(self, rep_id: str, period: str) -> dict[str, Any]:
        """The sums of :meth:`statement` (each delta id once), per currency, since amounts
        are in the order's currency::

            {"rep_id": ..., "period": ..., "deltas": 42,
             "currencies": {"USD": {"by_kind": {"commission": Decimal, "adjustment": ...,
                                                "accelerator": ...},
                                    "total": Decimal, "deltas": 42}}}

        Every kind is present in ``by_kind`` (zero when the rep had none)."""
        rows = self.query(STATEMENT_TOTALS_SQL, {"r": rep_id, "p": period})
        return statement_totals_dict(
            rep_id, period, ((c, k, Decimal(a), int(n)) for c, k, a, n in rows)
        )


# ---- rep statements ------------------------------------------------------------------

STATEMENT_COLUMNS: tuple[str, ...] = (
    "delta_id",
    "kind",
    "order_id",
    "customer_id",
    "plan_id",
    "plan_version",
    "currency",
    "amount",
    "cumulative",
    "commission",
    "earned_fraction",
    "share",
    "revenue_base",
    "cause_event_id",
    "cause_event_type",
    "occurred_at",
    "booked_period",
    "origin_period",
    "reverses",
    "trace",
)

# Decimal columns are selected as text with their full scale (``toDecimalString``) and
# read with ``Decimal(str)``: several times faster in Python than the driver's decoding
# of Decimal128, which dominated the time of a statement with a few thousand lines.
_STATEMENT_DECIMALS = {
    "amount": 2,
    "cumulative": 2,
    "commission": 12,
    "earned_fraction": 12,
    "share": 12,
    "revenue_base": 12,
}
_STATEMENT_OPTIONAL = ("order_id", "customer_id", "reverses")
STATEMENT_SELECT = ", ".join(
    f"toDecimalString({c}, {_STATEMENT_DECIMALS[c]}) AS {c}" if c in _STATEMENT_DECIMALS else c
    for c in STATEMENT_COLUMNS
)

# The key condition as an explicit PREWHERE (~5-10% faster than the WHERE the engine
# moves to PREWHERE itself). The filter is on sort-key columns, which every copy of a
# delta id shares, so filtering before de-duplicating is exact.
_STATEMENT_WHERE = "PREWHERE rep_id = {r:String} AND booked_period = {p:String}"
# No ORDER BY and no LIMIT 1 BY in the statement query: :func:`statement_rows` sorts by
# (occurred_at, delta_id) and keeps each delta id once in Python. Rows of one id are the
# same delta re-emitted, identical but for their Kafka position (not selected), so any
# copy will do. Measured on a busy rep's month (~3,250 lines with their JSON traces,
# chDB, 2 cores): the engine spent 13 ms sorting the wide rows (ORDER BY + LIMIT 1 BY
# doubled the query, 13 -> 27 ms), Python's sort of 3,250 keys takes ~1 ms. Earlier
# comparisons of FINAL, LIMIT 1 BY and PREWHERE: bench/query_bench.py.
STATEMENT_SQL = f"SELECT {STATEMENT_SELECT} FROM commission_deltas {_STATEMENT_WHERE}"
STATEMENT_TOTALS_SQL = (
    "SELECT currency, kind, sum(amount), count() FROM ("
    f"SELECT delta_id, currency, kind, amount FROM commission_deltas {_STATEMENT_WHERE} "
    "LIMIT 1 BY delta_id) GROUP BY currency, kind"
)


def statement_order(columns: Sequence[Sequence[Any]]) -> list[int]:
    """Row numbers of the result columns of a statement query (:data:`STATEMENT_SELECT`,
    rows in any order, a delta id any number of times) in statement order: by
    ``occurred_at`` then ``delta_id``, each delta id once. Rows of one id are the same
    delta re-emitted, identical but for their Kafka position (not selected), so any copy
    will do; they share ``occurred_at``, so they are neighbours after the sort."""
    if not columns or not columns[0]:
        return []
    if len(columns) != len(STATEMENT_COLUMNS):
        raise SinkError(f"expected {len(STATEMENT_COLUMNS)} statement columns, not {len(columns)}")
    ids = columns[_ID]
    keep: list[int] = []
    last = None
    for _, delta_id, i in sorted(zip(columns[_AT], ids, range(len(ids)))):  # noqa: B905
        if delta_id != last:
            keep.append(i)
            last = delta_id
    return keep


def statement_rows(
    columns: Sequence[Sequence[Any]], rows: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Statement lines from the result columns of a statement query: the rows numbered
    ``rows`` (default: :func:`statement_order`, the whole statement), in that order.
    See :meth:`Store.statement` for the values."""
    keep = statement_order(columns) if rows is None else rows
    if not keep:
        return []
    if len(keep) == 1:
        cols: list[Sequence[Any]] = [(c[keep[0]],) for c in columns]
    else:
        pick = itemgetter(*keep)
        cols = [pick(c) for c in columns]
    for i, name in enumerate(STATEMENT_COLUMNS):
        if name in _STATEMENT_DECIMALS:
            text = cols[i]
            distinct = set(text)
            if len(distinct) * 2 < len(text):  # shares, fractions: a few values, shared
                parsed = {v: Decimal(v) for v in distinct}
                cols[i] = [parsed[v] for v in text]
            else:
                cols[i] = [Decimal(v) for v in text]
        elif name in _STATEMENT_OPTIONAL:
            cols[i] = [v or None for v in cols[i]]
        elif name == "occurred_at":
            cols[i] = [v if v.tzinfo else v.replace(tzinfo=UTC) for v in cols[i]]
    # Plain zips: the column count is checked above and every column has one value per
    # row; strict=True cost a third of the dict building for a 3,000-line statement.
    return [dict(zip(STATEMENT_COLUMNS, values)) for values in zip(*cols)]  # noqa: B905


def statement_sums(
    columns: Sequence[Sequence[Any]], rows: Sequence[int]
) -> tuple[list[tuple[date, str, Decimal]], dict[tuple[str, str], tuple[Decimal, int]]]:
    """Over the rows numbered ``rows`` of a statement query's result columns:
    ``(UTC day of occurred_at, currency, sum of amount)`` by day then currency (the
    earnings curve), and ``(currency, kind) -> (sum of amount, deltas)``; without
    building the lines."""
    days: dict[tuple[date, str], Decimal] = {}
    kinds: dict[tuple[str, str], tuple[Decimal, int]] = {}
    if not rows:  # an empty result has no columns at all
        return [], kinds
    at, currency, kind, amount = columns[_AT], columns[_CURRENCY], columns[_KIND], columns[_AMOUNT]
    for i in rows:
        t = at[i]
        value = Decimal(amount[i])
        key = ((t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).date(), currency[i])
        days[key] = days.get(key, _ZERO) + value
        total, n = kinds.get((currency[i], kind[i]), (_ZERO, 0))
        kinds[(currency[i], kind[i])] = (total + value, n + 1)
    return [(d, c, v) for (d, c), v in sorted(days.items())], kinds


def statement_totals_dict(
    rep_id: str, period: str, sums: Iterable[tuple[str, str, Decimal, int]]
) -> dict[str, Any]:
    """The shape of :meth:`Store.statement_totals` from ``(currency, kind, sum, deltas)``."""
    currencies: dict[str, dict[str, Any]] = {}
    for currency, kind, value, count in sorted(sums):
        entry = currencies.setdefault(
            currency,
            {
                "by_kind": {k.value: _ZERO for k in DeltaKind},
                "total": _ZERO,
                "deltas": 0,
            },
        )
        entry["by_kind"][kind] = entry["by_kind"].get(kind, _ZERO) + value
        entry["total"] += value
        entry["deltas"] += count
    return {
        "rep_id": rep_id,
        "period": period,
        "deltas": sum(int(e["deltas"]) for e in currencies.values()),
        "currencies": currencies,
    }


@dataclass(frozen=True, slots=True)
class StatementPage:
    """A page of a rep's statement (:meth:`Store.statement_page`)."""

    lines: list[dict[str, Any]]
    line_count: int  # lines in the whole statement
    offset: int  # statement position of ``lines[0]``
    days: list[tuple[date, str, Decimal]]  # the whole statement's amounts per UTC day
    totals: dict[str, Any]  # the whole statement's totals, as Store.statement_totals


_ID = STATEMENT_COLUMNS.index("delta_id")
_AT = STATEMENT_COLUMNS.index("occurred_at")
_CURRENCY = STATEMENT_COLUMNS.index("currency")
_AMOUNT = STATEMENT_COLUMNS.index("amount")
_KIND = STATEMENT_COLUMNS.index("kind")
_ZERO = Decimal("0.00")
