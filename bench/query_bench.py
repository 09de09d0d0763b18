"""Read-latency benchmark of the ClickHouse side: leaderboard and rep statements.

    python -m bench.query_bench [--rows 10000000] [--reps 1000] [--queries 300] [--keep]

Creates a fresh chDB store under ``var/bench/`` with ``Store(dsn).ensure_schema()``, fills
the ledger with ClickHouse-side generated deltas (``INSERT INTO commission_deltas SELECT
... FROM numbers(N)``, through the materialized view, so the rollup is filled the way
production fills it), then times, over ``--queries`` calls each:

(a) ``Store.leaderboard(period, 20)`` - from the SummingMergeTree rollup;
(b) ``Store.statement(rep, period)`` (rows read unsorted, sorted and de-duplicated in
    Python) - and, for comparison, the statement query sorted and de-duplicated by the
    engine (FINAL, LIMIT 1 BY), ``Store.statement_page`` (the first 200 lines with
    the totals and the earnings per day, from one query: what the rep page loads),
    and ``Store.statement_totals`` against the same sums with FINAL;
(c) an exact leaderboard computed from the ledger with FINAL (and without FINAL, which
    is not exact, to show what FINAL costs).

Ways of answering the same calls are timed round-robin, in a rotating order, so that
drift on the machine falls on all of them. Everything is measured twice: as loaded (after
background merges have settled) and after ``OPTIMIZE TABLE ... FINAL`` (what production
merges eventually reach). Results are checked first (rollup = ledger; every statement
variant = ``Store.statement``; totals = the sum of the lines) and, at the end, a rep's
period is re-inserted to check that every id still counts once. The machine is shared:
the CPU used by other processes during each phase is printed with the results. The data
directory is deleted at the end unless ``--keep``.

Data shape (seeded, deterministic): ``--reps`` reps of which a tenth are "busy" and take
~37% of the deltas (a busy rep has ~5x the deltas of a quiet one); 12 monthly periods of
2026; 90% commission deltas (8% of them clawbacks), 7% adjustments, 3% accelerators;
amounts log-normal with cents; 5% of reps in EUR, 5% in GBP; a JSON trace of one or two
order lines (~250-500 bytes).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import chdb
import clickhouse_connect

from sinks.clickhouse import STATEMENT_COLUMNS, STATEMENT_SELECT, Store, statement_rows

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
PERIODS = tuple(f"2026-{m:02d}" for m in range(1, 13))
LOAD_CHUNK = 1_000_000
WARMUP = 5
PAGE = 200  # lines on a page of the rep's statement in the web UI
BIG_STATEMENT = 1500  # lines; splits busy reps' statements from quiet ones'

TARGETS_MS = {"leaderboard": 20.0, "statement": 50.0}

# One generated delta per number n. __START__/__COUNT__/__REPS__/__HOT__ are substituted
# before the statement is sent (the JSON template's braces make server-side parameters
# awkward). Every random draw is a hash of (n, k), so a run is reproducible.
_LOAD_SQL = """
INSERT INTO commission_deltas (
    delta_id, kind, rep_id, order_id, customer_id, plan_id, plan_version, currency,
    amount, cumulative, commission, earned_fraction, share, revenue_base,
    cause_event_id, cause_event_type, occurred_at, booked_period, origin_period,
    reverses, trace, src_topic, src_partition, src_offset)
SELECT
    lower(hex(MD5(concat('delta-', toString(n))))) AS delta_id,
    multiIf(k < 90, 'commission', k < 97, 'adjustment', 'accelerator') AS kind_,
    concat('rep-', leftPad(toString(r + 1), greatest(3, length(toString(r + 1))), '0')),
    if(kind_ = 'accelerator', '', concat('ord-', toString(cityHash64(n, 5) % 2000000))),
    if(kind_ = 'accelerator', '', concat('cust-', toString(cityHash64(n, 6) % 40000))),
    ['standard', 'enterprise', 'smb', 'rich'][r % 4 + 1],
    toUInt32(1 + cityHash64(n, 7) % 3),
    multiIf(r % 20 = 0, 'EUR', r % 20 = 1, 'GBP', 'USD'),
    CAST(cents AS Decimal(18, 2)) / 100 AS amount_,
    CAST(abs(cents) + cityHash64(n, 9) % 500000 AS Decimal(18, 2)) / 100,
    toDecimal128(abs(cents) / 100 / ef, 12),
    toDecimal128(ef, 12),
    toDecimal128(share_, 12),
    toDecimal128(abs(cents) / 100 / rate, 12) * if(cents < 0, -1, 1),
    concat('evt-', lower(hex(cityHash64(n, 8)))),
    multiIf(kind_ = 'adjustment', 'PlanPublished',
            kind_ = 'accelerator', 'PeriodClosed',
            cents < 0, if(u3 < 0.5, 'OrderCancelled', 'RefundIssued'),
            u3 < 0.4, 'OrderPlaced', 'PaymentReceived'),
    addMilliseconds(addMonths(toDateTime64('2026-01-01 00:00:00', 3, 'UTC'), m),
                    cityHash64(n, 10) % (28 * 86400000)),
    concat('2026-', leftPad(toString(m + 1), 2, '0')),
    concat('2026-', leftPad(toString(m + 1 - back), 2, '0')),
    if(kind_ = 'commission' AND cents < 0,
       lower(hex(MD5(concat('delta-', toString(cityHash64(n, 11) % greatest(n, 1)))))), ''),
    if(kind_ = 'accelerator',
       concat('[{"line_id":"tier-', toString(m + 1), '","sku":"","category":"","rule_id":"',
              ['tier-gold', 'tier-silver', 'cap-quarter'][cityHash64(n, 12) % 3 + 1],
              '","base_kind":"revenue","base_amount":"',
              toString(toDecimal64(abs(cents) / 100 / rate, 2)),
              '","rate":"0.02 above quota","modifiers":[],"multiplier":"1","amount":"',
              toString(toDecimal64(abs(cents) / 100, 2)),
              '","note":"accelerator for the period above quota"}]'),
       concat('[', arrayStringConcat(arrayMap(i -> concat(
           '{"line_id":"', toString(cityHash64(n, 5) % 2000000), '-L', toString(i + 1),
           '","sku":"', ['HW-', 'SW-', 'SV-', 'SP-'][cityHash64(n, 20 + i) % 4 + 1],
           toString(1000 + cityHash64(n, 30 + i) % 9000),
           '","category":"',
           ['hardware', 'software', 'services', 'support'][cityHash64(n, 20 + i) % 4 + 1],
           '","rule_id":"',
           ['hw-standard', 'sw-new-logo', 'setup-fee', 'support-renewal', 'hw-deep-discount']
               [cityHash64(n, 40 + i) % 5 + 1],
           '","base_kind":"', ['revenue', 'margin'][cityHash64(n, 50 + i) % 2 + 1],
           '","base_amount":"', toString(toDecimal64(abs(cents) / 100 / rate / lines, 2)),
           '","rate":"', toString(rate),
           '","modifiers":', if(share_ < 1, '["split-credit"]', '[]'),
           ',"multiplier":"1","amount":"',
           toString(toDecimal128(abs(cents) / 100 / lines * if(cents < 0, -1, 1), 6)),
           '","note":""}'), range(lines)), ','), ']')),
    'commission-deltas',
    toUInt32(r % 6),
    toUInt64(n)
FROM (
    SELECT
        number AS n,
        cityHash64(number, 1) % 100 < 30 AS busy,
        toUInt32(if(busy, cityHash64(number, 2) % __HOT__,
                          cityHash64(number, 2) % __REPS__)) AS r,
        toUInt32(cityHash64(number, 3) % 12) AS m,
        cityHash64(number, 4) % 100 AS k,
        (cityHash64(number, 13) % 1000000 + 1) / 1000001 AS u1,
        (cityHash64(number, 14) % 1000000) / 1000000 AS u2,
        (cityHash64(number, 15) % 1000000) / 1000000 AS u3,
        sqrt(-2 * log(u1)) * cos(2 * pi() * u2) AS z,
        cityHash64(number, 16) % 100 < 8 AS clawback,
        toInt64(round(100 * multiIf(
            k < 90, if(clawback, -1, 1) * exp(3.2 + z),
            k < 97, if(u3 < 0.5, -1, 1) * exp(1.5 + z),
            exp(5 + 0.7 * z)))) AS cents_raw,
        if(cents_raw = 0, 1, cents_raw) AS cents,
        [0.25, 0.5, 0.75, 1.0][cityHash64(number, 17) % 4 + 1] AS ef,
        if(cityHash64(number, 18) % 10 < 8, 1.0, 0.5) AS share_,
        [0.03, 0.05, 0.08, 0.1][cityHash64(number, 19) % 4 + 1] AS rate,
        toUInt32(1 + cityHash64(number, 21) % 2) AS lines,
        toUInt32(least(m, multiIf(
            k < 90 AND (clawback OR cityHash64(number, 22) % 100 < 10),
                1 + cityHash64(number, 23) % 3,
            k >= 90 AND k < 97, 1 + cityHash64(number, 23) % 2,
            0))) AS back
    FROM numbers(__START__, __COUNT__)
)
"""

_W = "rep_id = {r:String} AND booked_period = {p:String}"
_SEL = STATEMENT_SELECT
_ORDER = "ORDER BY occurred_at, delta_id"

# Other statement queries, each way of counting a delta id once in SQL, sorted by the
# engine (Store.statement itself sorts and de-duplicates in Python). Timed with the same
# conversion as Store.statement (statement_rows, which re-sorts an already sorted list),
# so only the SQL differs.
STATEMENT_VARIANTS: dict[str, str] = {
    "FINAL + PREWHERE, sorted in SQL": (
        f"SELECT {_SEL} FROM commission_deltas FINAL PREWHERE {_W} {_ORDER}"
    ),
    "LIMIT 1 BY delta_id + PREWHERE, sorted in SQL (Store.statement before)": (
        f"SELECT {_SEL} FROM commission_deltas PREWHERE {_W} {_ORDER} LIMIT 1 BY delta_id"
    ),
}

# The first version of Store.statement: Decimal columns decoded by clickhouse-connect,
# rows as tuples, then one dict per row. Only checked against Store.statement.
NAIVE_STATEMENT_SQL = (
    f"SELECT {', '.join(STATEMENT_COLUMNS)} FROM commission_deltas WHERE {_W} {_ORDER} "
    "LIMIT 1 BY delta_id"
)


def _naive_statement_row(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(STATEMENT_COLUMNS, row, strict=True))
    out["occurred_at"] = out["occurred_at"].replace(tzinfo=UTC)
    for key in ("order_id", "customer_id", "reverses"):
        out[key] = out[key] or None
    return out


EXACT_LEADERBOARD_SQL = (
    "SELECT rep_id, currency, sum(amount) AS a, sum(revenue_base), count() "
    "FROM commission_deltas FINAL WHERE booked_period = {p:String} "
    "GROUP BY rep_id, currency ORDER BY a DESC, rep_id LIMIT 20"
)
TOTALS_FINAL_SQL = (
    "SELECT currency, kind, sum(amount), count() FROM commission_deltas FINAL "
    f"WHERE {_W} GROUP BY currency, kind"
)
LEDGER_LEADERBOARD_SQL = EXACT_LEADERBOARD_SQL.replace(" FINAL", "")


@dataclass(frozen=True, slots=True)
class Result:
    phase: str
    name: str
    times_ms: tuple[float, ...]
    rows_per_call: tuple[int, ...]
    target_ms: float | None

    @property
    def rows(self) -> int:
        """Rows returned over all timed calls."""
        return sum(self.rows_per_call)

    def split(self, label: str, keep: Callable[[int], bool]) -> Result:
        """The calls that returned a number of rows ``keep`` accepts."""
        pairs = [(t, n) for t, n in zip(self.times_ms, self.rows_per_call, strict=True) if keep(n)]
        return Result(
            self.phase,
            f"{self.name}, {label}",
            tuple(t for t, _ in pairs),
            tuple(n for _, n in pairs),
            self.target_ms,
        )

    def pct(self, p: float) -> float:
        """Nearest-rank percentile."""
        ordered = sorted(self.times_ms)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def row(self) -> str:
        p99 = self.pct(99)
        verdict = "" if self.target_ms is None else ("yes" if p99 < self.target_ms else "**NO**")
        target = "" if self.target_ms is None else f"< {self.target_ms:.0f}"
        n = len(self.times_ms)
        return (
            f"| {self.phase} | {self.name} | {n} | {self.rows / n:,.0f} | "
            f"{self.pct(50):.1f} | {self.pct(95):.1f} | {p99:.1f} | {max(self.times_ms):.1f} | "
            f"{target} | {verdict} |"
        )


def _time_interleaved(
    phase: str,
    calls: dict[str, Callable[[tuple[str, ...]], Sequence[Any]]],
    args: Sequence[tuple[str, ...]],
    target_ms: float | None = None,
) -> list[Result]:
    """Time several ways of answering the same calls, round-robin with a rotating order,
    so that drift on the machine (merges, caches, neighbours) falls on all of them."""
    names = list(calls)
    for a in args[:WARMUP]:
        for name in names:
            calls[name](a)
    times: dict[str, list[float]] = {n: [] for n in names}
    rows: dict[str, list[int]] = {n: [] for n in names}
    for i, a in enumerate(args):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            t0 = time.perf_counter()
            out = calls[name](a)
            times[name].append((time.perf_counter() - t0) * 1000)
            rows[name].append(len(out))
    results = [Result(phase, n, tuple(times[n]), tuple(rows[n]), target_ms) for n in names]
    for r in results:
        print(f"  {r.name}: p50 {r.pct(50):.1f} ms, p99 {r.pct(99):.1f} ms", flush=True)
    return results


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _machine() -> list[str]:
    mem_kib = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [
        f"nproc {len(os.sched_getaffinity(0))} ({cpu})",
        f"memory {mem_kib / 1024 / 1024:.1f} GiB",
        f"chdb {chdb.__version__}, clickhouse-connect {clickhouse_connect.__version__}, "
        f"Python {platform.python_version()}",
    ]


class Bench:
    def __init__(self, path: Path, rows: int, reps: int, queries: int, seed: int) -> None:
        self.path = path
        self.rows = rows
        self.reps = reps
        self.queries = queries
        self.rng = random.Random(seed)
        self.store = Store(f"chdb://{path}")
        # A second handle on the same engine for the load and the system tables.
        self.admin = clickhouse_connect.get_client(dsn=f"chdb://{path}")
        self.results: list[Result] = []
        self.notes: list[str] = []

    def close(self) -> None:
        self.admin.close()
        self.store.close()

    def scalar(self, sql: str) -> Any:
        return self.admin.query(sql).result_rows[0][0]

    def parts(self, table: str) -> int:
        return int(
            self.scalar(
                f"SELECT count() FROM system.parts WHERE active AND table = '{table}' "
                "AND database = currentDatabase()"
            )
        )

    def load(self) -> float:
        self.store.ensure_schema()
        hot = max(1, self.reps // 10)
        t0 = time.perf_counter()
        for start in range(0, self.rows, LOAD_CHUNK):
            count = min(LOAD_CHUNK, self.rows - start)
            sql = (
                _LOAD_SQL.replace("__START__", str(start))
                .replace("__COUNT__", str(count))
                .replace("__REPS__", str(self.reps))
                .replace("__HOT__", str(hot))
            )
            self.admin.command(
                sql,
                settings={
                    "deduplicate_blocks_in_dependent_materialized_views": 1,
                    "max_insert_threads": 2,
                },
            )
            print(f"  loaded {start + count:,} / {self.rows:,}", flush=True)
        return time.perf_counter() - t0

    def settle(self, limit_s: float = 300) -> float:
        """Wait until no background merge runs (bounded), so merges do not disturb timing."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit_s:
            if int(self.scalar("SELECT count() FROM system.merges")) == 0:
                break
            time.sleep(1)
        return time.perf_counter() - t0

    def _variant(self, sql: str) -> Callable[[tuple[str, ...]], list[dict[str, Any]]]:
        store = self.store

        def run(a: tuple[str, ...]) -> list[dict[str, Any]]:
            return statement_rows(store.query_columns(sql, {"r": a[0], "p": a[1]}))

        return run

    def _naive(self, a: tuple[str, ...]) -> list[dict[str, Any]]:
        rows = self.store.query(NAIVE_STATEMENT_SQL, {"r": a[0], "p": a[1]})
        return [_naive_statement_row(r) for r in rows]

    def check(self) -> None:
        """The rollup equals the ledger, and every statement variant equals
        Store.statement, whose totals match its lines."""
        ledger = self.admin.query(
            "SELECT count(), sum(amount) FROM commission_deltas FINAL"
        ).result_rows[0]
        rollup = self.admin.query(
            "SELECT sum(deltas), sum(amount) FROM rep_period_totals"
        ).result_rows[0]
        if tuple(ledger) != tuple(rollup):
            raise SystemExit(f"rollup {rollup} differs from ledger {ledger}")
        for a in (("rep-001", PERIODS[0]), (f"rep-{self.reps:03d}", PERIODS[-1])):
            expected = self.store.statement(*a)
            if not expected:
                raise SystemExit(f"empty statement for {a}")
            for name, sql in STATEMENT_VARIANTS.items():
                if self._variant(sql)(a) != expected:
                    raise SystemExit(f"statement variant {name!r} differs from Store.statement")
            if self._naive(a) != expected:
                raise SystemExit("the driver-decoded statement differs from Store.statement")
            for offset in (0, PAGE, len(expected) - 1):
                page = self.store.statement_page(*a, offset, PAGE)
                if page.lines != expected[offset : offset + PAGE]:
                    raise SystemExit(f"statement_page at {offset} differs from Store.statement")
                if page.line_count != len(expected):
                    raise SystemExit("statement_page counts differ from Store.statement")
                if page.totals != self.store.statement_totals(*a):
                    raise SystemExit("statement_page totals differ from statement_totals")
            totals = self.store.statement_totals(*a)
            if totals["deltas"] != len(expected):
                raise SystemExit("statement_totals counts differ from statement")
            for cur, entry in totals["currencies"].items():
                lines = [d["amount"] for d in expected if d["currency"] == cur]
                if entry["total"] != sum(lines, Decimal(0)):
                    raise SystemExit(f"statement_totals {cur} total differs from statement")

    def check_duplicates(self) -> None:
        """Re-insert a rep's period as a new part (the same delta ids, as a stage that
        re-emitted them after a crash would): each variant must still count every id
        once. Done last: the rollup then counts the copies, as it would in production
        until ensure_schema repairs it."""
        a = ("rep-002", PERIODS[1])
        expected = self.store.statement(*a)
        self.admin.command(
            "INSERT INTO commission_deltas SELECT * EXCEPT inserted_at, now64(3) "
            "FROM commission_deltas WHERE rep_id = {r:String} AND booked_period = {p:String}",
            parameters={"r": a[0], "p": a[1]},
        )
        raw = self.store.query(
            "SELECT count() FROM commission_deltas WHERE rep_id = {r:String} "
            "AND booked_period = {p:String}",
            {"r": a[0], "p": a[1]},
        )[0][0]
        if int(raw) != 2 * len(expected):
            raise SystemExit(f"duplicate insert did not land: {raw} rows, {len(expected)} ids")
        if self.store.statement(*a) != expected:
            raise SystemExit("Store.statement counts a re-inserted delta id twice")
        if self.store.statement_totals(*a)["deltas"] != len(expected):
            raise SystemExit("Store.statement_totals counts a re-inserted delta id twice")
        for name, sql in STATEMENT_VARIANTS.items():
            got = self._variant(sql)(a)
            if name.startswith("no de-dup"):
                if len(got) != 2 * len(expected):
                    raise SystemExit("the no-de-duplication variant did not see the copies")
            elif got != expected:
                raise SystemExit(f"statement variant {name!r} counts a delta id twice")
        self.notes.append(
            f"duplicate check: {a[0]} {a[1]} re-inserted ({len(expected)} ids, "
            f"{raw} rows): Store.statement, statement_totals and every de-duplicating "
            "variant counted each id once"
        )

    def measure(self, phase: str) -> None:
        n = self.queries
        periods = self.store.periods()
        reps = [f"rep-{i:03d}" for i in range(1, self.reps + 1)]
        rp = [(self.rng.choice(reps), self.rng.choice(periods)) for _ in range(n)]
        p_only = [(self.rng.choice(periods),) for _ in range(n)]
        store = self.store
        print(f"measuring ({phase}):", flush=True)
        load_before = os.getloadavg()[0]
        cpu_before = time.process_time()
        busy_before = _busy_cpu_s()
        wall_before = time.perf_counter()
        self.results += _time_interleaved(
            phase,
            {"(a) Store.leaderboard(period, 20)": lambda a: store.leaderboard(a[0], 20)},
            p_only,
            TARGETS_MS["leaderboard"],
        )
        statement_calls: dict[str, Callable[[tuple[str, ...]], Sequence[Any]]] = {
            "(b) Store.statement(rep, period)": lambda a: store.statement(*a),
            f"(b) Store.statement_page(rep, period, 0, {PAGE})": (
                lambda a: store.statement_page(a[0], a[1], 0, PAGE).lines
            ),
        }
        for name, sql in STATEMENT_VARIANTS.items():
            statement_calls[f"(b) statement SQL: {name}"] = self._variant(sql)
        self.results += _time_interleaved(phase, statement_calls, rp, TARGETS_MS["statement"])
        self.results += _time_interleaved(
            phase,
            {
                "(b) Store.statement_totals(rep, period)": lambda a: [store.statement_totals(*a)],
                "(b) totals SQL: FINAL": (
                    lambda a: store.query(TOTALS_FINAL_SQL, {"r": a[0], "p": a[1]})
                ),
            },
            rp,
        )
        self.results += _time_interleaved(
            phase,
            {
                "(c) exact leaderboard, ledger FINAL": (
                    lambda a: store.query(EXACT_LEADERBOARD_SQL, {"p": a[0]})
                ),
                "(c) leaderboard, ledger without FINAL (not exact)": (
                    lambda a: store.query(LEDGER_LEADERBOARD_SQL, {"p": a[0]})
                ),
            },
            p_only,
        )
        wall = time.perf_counter() - wall_before
        mine = time.process_time() - cpu_before
        others = max(0.0, _busy_cpu_s() - busy_before - mine)
        self.notes.append(
            f"{phase}: measured for {wall:.0f} s; this process used {mine / wall:.2f} cores "
            f"on average, other processes {others / wall:.2f} cores; load average (1 min) "
            f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        )

    def sizes(self) -> tuple[int, int, dict[str, int]]:
        total = int(self.scalar("SELECT sum(bytes_on_disk) FROM system.parts WHERE active"))
        raw = int(self.scalar("SELECT sum(data_uncompressed_bytes) FROM system.parts WHERE active"))
        per = {
            str(t): int(b)
            for t, b in self.admin.query(
                "SELECT table, sum(bytes_on_disk) FROM system.parts WHERE active "
                "GROUP BY table ORDER BY table"
            ).result_rows
        }
        return total, raw, per


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.query_bench", description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000, help="deltas to load")
    ap.add_argument("--reps", type=int, default=1000, help="distinct reps")
    ap.add_argument("--queries", type=int, default=300, help="timed calls per query")
    ap.add_argument("--seed", type=int, default=42, help="seed of the query mix")
    ap.add_argument("--keep", action="store_true", help="keep the data under var/bench/")
    args = ap.parse_args(argv)
    if args.rows < 1 or args.reps < 1 or args.queries < 1:
        ap.error("--rows, --reps and --queries must be positive")

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"chdb-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    bench = Bench(path, args.rows, args.reps, args.queries, args.seed)
    try:
        print(f"data path {path}", flush=True)
        print(f"loading {args.rows:,} deltas for {args.reps:,} reps:", flush=True)
        load_s = bench.load()
        loaded_parts = bench.parts("commission_deltas")
        settle_s = bench.settle()
        bench.check()
        before = (bench.parts("commission_deltas"), bench.parts("rep_period_totals"))
        size_before = bench.sizes()
        bench.measure("as loaded")
        t0 = time.perf_counter()
        bench.admin.command("OPTIMIZE TABLE commission_deltas FINAL")
        bench.admin.command("OPTIMIZE TABLE rep_period_totals FINAL")
        optimize_s = time.perf_counter() - t0
        after = (bench.parts("commission_deltas"), bench.parts("rep_period_totals"))
        bench.check()
        total, raw, per = bench.sizes()
        engine = bench.scalar("SELECT version()")
        ledger_rows = int(bench.scalar("SELECT count() FROM commission_deltas"))
        per_rp = bench.admin.query(
            "SELECT quantiles(0.5, 0.9, 0.99)(c), max(c) FROM (SELECT count() AS c "
            "FROM commission_deltas GROUP BY rep_id, booked_period)"
        ).result_rows[0]
        bench.measure("after OPTIMIZE")
        bench.check_duplicates()
    finally:
        bench.close()
        if args.keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)

    print()
    print(f"## Query latency, {ledger_rows:,} deltas, {args.reps:,} reps, {len(PERIODS)} periods")
    print()
    for line in _machine():
        print(f"- {line}")
    print(f"- ClickHouse engine {engine} (in-process chDB)")
    print(
        f"- load: {load_s:.1f} s ({ledger_rows / load_s:,.0f} deltas/s), {loaded_parts} "
        f"ledger parts right after the load; background merges settled in {settle_s:.0f} s"
    )
    print(
        f"- active parts when measured as loaded: ledger {before[0]}, rollup {before[1]}; "
        f"OPTIMIZE FINAL of both took {optimize_s:.1f} s, leaving {after[0]} and {after[1]}"
    )
    print(
        f"- deltas per (rep, period), i.e. lines of a statement: median {per_rp[0][0]:.0f}, "
        f"p90 {per_rp[0][1]:.0f}, p99 {per_rp[0][2]:.0f}, max {per_rp[1]}"
    )
    print(
        f"- on disk (sum(bytes_on_disk) of active parts): {size_before[0] / 2**20:,.1f} MiB "
        f"as loaded; {total / 2**20:,.1f} MiB after OPTIMIZE ("
        + ", ".join(f"{t} {b / 2**20:,.1f} MiB" for t, b in per.items())
        + f"); uncompressed {raw / 2**20:,.1f} MiB"
    )
    print(
        f"- {args.queries} timed calls per row after {WARMUP} warm-up calls; "
        "times in ms, measured in Python around the call (query + decoding + dicts)"
    )
    print()
    print("| phase | query | calls | rows/call | p50 | p95 | p99 | max | target p99 | met |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in bench.results:
        print(r.row())
    print()
    print("Store.statement by statement size (busy reps have ~5x the lines of quiet ones):")
    print()
    print("| phase | query | calls | rows/call | p50 | p95 | p99 | max | target p99 | met |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in bench.results:
        if r.name.startswith("(b) Store.statement(") and r.times_ms:
            for part in (
                r.split(f"<= {BIG_STATEMENT} lines", lambda n: n <= BIG_STATEMENT),
                r.split(f"> {BIG_STATEMENT} lines", lambda n: n > BIG_STATEMENT),
            ):
                if part.times_ms:
                    print(part.row())
    for note in bench.notes:
        print(f"\n- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
