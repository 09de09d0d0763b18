"""Throughput and memory of the in-memory engine (``processors.engine.Engine``), one core.

    python -m bench.engine_bench --events 200000            # events per second
    python -m bench.engine_bench --memory --orders 1000000  # peak memory, 1M open orders

The event mix is generated deterministically from ``--seed``: dozens of reps in four teams,
hundreds of customers, orders of 1 to 10 lines (some credited to a rep, some split between
two or three reps, most to the customer's owner), payments in instalments, refunds,
cancellations, CRM changes (owner moves, tier changes, rep team moves), re-sent duplicates
and quarter closings. The plan uses every feature: rules with every base, fixed amounts,
rate tables of every scope and method, modifiers, tiers and both caps; ``plans/rich.yaml``
is published too when it exists (it governs two teams, the bench plan everyone else).
Events are generated before the clock starts; only ``Engine.process`` is timed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from comstream.batchgc import LongLivedGC, PausedGC
from processors import serde
from processors.engine import Engine
from processors.events import (
    CommissionDelta,
    Credit,
    CustomerChanged,
    Event,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    PaymentReceived,
    PeriodClosed,
    PlanPublished,
    RefundIssued,
    RepChanged,
)
from processors.periods import next_period, period_of
from processors.reps import RepState

REPO = Path(__file__).resolve().parents[1]
CENT = Decimal("0.01")
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
TEAMS = (
    ("team-east", "APAC"),
    ("team-north", "EMEA"),
    ("team-west", "AMER"),
    ("team-south", "APAC"),
)
TIERS = ("A", "B", "B", "C", "C", "C")
INDUSTRIES = ("retail", "manufacturing", "finance", "healthcare", "logistics", "education")
CATALOG: dict[str, tuple[tuple[str, int, int], ...]] = {
    "hardware": (("HW-LAPTOP", 700, 2400), ("HW-DOCK", 90, 300), ("HW-SERVER", 3000, 12000)),
    "software": (("SW-SEAT", 20, 120), ("SW-SUITE", 400, 2000)),
    "services": (("SV-SETUP", 150, 900), ("SV-CONSULT", 1000, 6000)),
    "support": (("SP-BASIC", 50, 300), ("SP-PREMIUM", 400, 1500)),
}
QUANTITIES = (1, 1, 1, 2, 2, 3, 4, 5, 8, 12)
DISCOUNTS = tuple(Decimal(d) / 100 for d in (0, 0, 0, 0, 5, 10, 15, 20, 25, 35))

BENCH_PLAN: dict[str, Any] = {
    "plan_id": "bench",
    "version": 1,
    "effective_from": "2026-01-01",
    "name": "Bench plan: every feature",
    "applies_to": {"everyone": True},
    "period": "quarter",
    "timezone": "Asia/Shanghai",
    "earn_on": "payment",
    "rules": [
        {
            "id": "hw-deep-discount",
            "when": {"category": "hardware", "discount": {"gte": "0.30"}},
            "base": "revenue",
            "rate": "0.01",
        },
        {"id": "setup-fee", "when": {"sku": "SV-SETUP"}, "base": "revenue", "fixed": "25.00"},
        {
            "id": "hw-units",
            "when": {
                "category": "hardware",
                "sku": {"not_in": ["HW-SERVER"]},
                "rep_team": ["team-north", "team-west"],
            },
            "base": "quantity",
            "table": {
                "scope": "quantity",
                "method": "whole",
                "bands": [
                    {"from": "0", "to": "10", "rate": "5.00"},
                    {"from": "10", "rate": "8.00"},
                ],
            },
        },
        {
            "id": "apac-regulated-support",
            "when": {
                "category": "support",
                "customer_region": "APAC",
                "customer_industry": ["finance", "healthcare"],
                "rep_region": {"eq": "APAC"},
            },
            "base": "margin",
            "rate": "0.15",
        },
        {
            "id": "key-account-services",
            "when": {"category": ["services", "support"], "customer_tier": {"in": ["A", "B"]}},
            "base": "margin",
            "table": {
                "scope": "line_base",
                "method": "marginal",
                "bands": [
                    {"from": "0", "to": "5000", "rate": "0.08"},
                    {"from": "5000", "rate": "0.10"},
                ],
            },
        },
        {
            "id": "big-software",
            "when": {"category": "software", "order_total": {"gte": "20000"}},
            "base": "revenue",
            "table": {
                "scope": "order_total",
                "method": "marginal",
                "bands": [
                    {"from": "0", "to": "20000", "rate": "0.04"},
                    {"from": "20000", "to": "100000", "rate": "0.05"},
                    {"from": "100000", "rate": "0.06"},
                ],
            },
        },
        {
            "id": "software-volume",
            "when": {"category": "software"},
            "base": "revenue",
            "table": {
                "scope": "order_total",
                "method": "whole",
                "bands": [
                    {"from": "0", "to": "5000", "rate": "0.03"},
                    {"from": "5000", "rate": "0.035"},
                ],
            },
        },
        {
            "id": "standard",
            "when": {"customer_tier": {"ne": "C"}},
            "base": "revenue",
            "rate": "0.03",
        },
        {"id": "everything-else", "base": "revenue", "rate": "0.02"},
    ],
    "modifiers": [
        {
            "id": "loyal-customer",
            "when": {"customer_orders_365d": {"gte": 5}},
            "multiplier": "1.10",
        },
        {"id": "new-logo", "when": {"customer_tenure_days": {"lte": 90}}, "multiplier": "1.50"},
        {
            "id": "discounted",
            "when": {"discount": {"gt": "0.15", "lt": "0.30"}},
            "multiplier": "0.80",
        },
    ],
    "tiers": {
        "quota": "1500000",
        "quota_overrides": {"rep-001": "2000000", "rep-003": "1000000"},
        "method": "marginal",
        "bands": [
            {"from": "0", "to": "0.5", "multiplier": "0.8"},
            {"from": "0.5", "to": "1.0", "multiplier": "1.0"},
            {"from": "1.0", "to": "1.5", "multiplier": "1.5"},
            {"from": "1.5", "multiplier": "2.0"},
        ],
    },
    "caps": {"per_order": "5000", "per_period": "150000"},
}


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal | date):
        return str(value)
    raise TypeError(f"{type(value).__name__} in a plan document")


def plan_event(doc: dict[str, Any], at: datetime) -> PlanPublished:
    effective = doc["effective_from"]
    return PlanPublished(
        f"plan-{doc['plan_id']}-{doc['version']}",
        at,
        str(doc["plan_id"]),
        int(doc["version"]),
        effective if isinstance(effective, date) else date.fromisoformat(str(effective)),
        json.dumps(doc, default=_json_default, sort_keys=True),
    )


def plan_events(at: datetime) -> list[PlanPublished]:
    """The bench plan, and plans/rich.yaml when it exists (read with PyYAML)."""
    events = [plan_event(BENCH_PLAN, at)]
    rich = REPO / "plans" / "rich.yaml"
    if rich.exists():
        import yaml

        doc = yaml.safe_load(rich.read_text(encoding="utf-8"))
        events.append(plan_event(doc, at))
    return events


@dataclass(eq=False)  # compared by identity: removing one from a long list stays cheap
class _Open:
    order: OrderPlaced
    total: Decimal
    paid: Decimal
    fate: str  # full | instalments | partial | refund | cancel
    steps: int


class Mix:
    """A deterministic, realistic event stream of a sales company."""

    def __init__(self, seed: int = 7, reps: int = 48, customers: int = 600) -> None:
        self.rng = random.Random(seed)
        self.rep_ids = [f"rep-{i:03d}" for i in range(1, reps + 1)]
        self.customer_ids = [f"cust-{i:05d}" for i in range(1, customers + 1)]
        self.now = START
        self.seq = 0
        self.orders = 0
        self.open: list[_Open] = []
        self.crm: dict[str, CustomerChanged] = {}
        self.recent: list[Event] = []
        self.last_closed = "2025-Q4"

    def _id(self, kind: str) -> str:
        self.seq += 1
        return f"{kind}-{self.seq:09d}"

    def _tick(self) -> datetime:
        self.now += timedelta(seconds=self.rng.randint(60, 1500))
        return self.now

    def dimensions(self) -> list[Event]:
        """Plans, every rep and every customer, at the start."""
        at = START - timedelta(days=3)
        events: list[Event] = list(plan_events(at))
        for i, rep_id in enumerate(self.rep_ids):
            team, region = TEAMS[i % len(TEAMS)]
            events.append(
                RepChanged(
                    self._id("rep"), at, rep_id, f"Rep {i}", team, self.rep_ids[i - i % 8], region
                )
            )
        for cid in self.customer_ids:
            owner = None if self.rng.random() < 0.03 else self.rng.choice(self.rep_ids)
            events.append(self._customer(cid, at, owner))
        return events

    def _customer(self, cid: str, at: datetime, owner: str | None) -> CustomerChanged:
        rng = self.rng
        prev = self.crm.get(cid)
        since = prev.customer_since if prev else date(2025, 1, 1) + timedelta(rng.randrange(500))
        event = CustomerChanged(
            self._id("crm"),
            at,
            cid,
            f"Customer {cid}",
            rng.choice(TIERS),
            TEAMS[rng.randrange(len(TEAMS))][1],
            rng.choice(INDUSTRIES),
            owner,
            since,
        )
        self.crm[cid] = event
        return event

    def _order(self, at: datetime) -> OrderPlaced:
        rng = self.rng
        self.orders += 1
        oid = f"ord-{self.orders:08d}"
        lines = []
        for n in range(1, rng.randint(1, 10) + 1):
            category = rng.choice(tuple(CATALOG))
            sku, lo, hi = rng.choice(CATALOG[category])
            price = Decimal(rng.randint(lo * 100, hi * 100)) / 100
            quantity = rng.choice(QUANTITIES)
            lines.append(
                OrderLine(
                    f"{oid}-{n}",
                    sku,
                    category,
                    Decimal(quantity),
                    price,
                    rng.choice(DISCOUNTS),
                    (price * rng.randint(35, 85) / 100).quantize(CENT),
                )
            )
        roll = rng.random()
        credits: tuple[Credit, ...] = ()
        rep_id = None
        if roll < 0.06:
            a, b = rng.sample(self.rep_ids, 2)
            credits = (Credit(a, Decimal("0.6")), Credit(b, Decimal("0.4")))
        elif roll < 0.08:
            a, b, c = rng.sample(self.rep_ids, 3)
            credits = (
                Credit(a, Decimal("0.3333")),
                Credit(b, Decimal("0.3333")),
                Credit(c, Decimal("0.3334")),
            )
        elif roll < 0.20:
            rep_id = rng.choice(self.rep_ids)
        return OrderPlaced(
            self._id("ord"),
            at,
            oid,
            rng.choice(self.customer_ids),
            at,
            "USD",
            tuple(lines),
            rep_id,
            credits,
        )

    def place(self) -> OrderPlaced:
        """A new order, remembered as open."""
        order = self._order(self._tick())
        total = sum(
            (ln.quantity * ln.unit_price * (1 - ln.discount) for ln in order.lines), Decimal(0)
        ).quantize(CENT)
        fate = self.rng.choices(
            ("full", "instalments", "partial", "refund", "cancel"), (50, 25, 10, 8, 7)
        )[0]
        self.open.append(_Open(order, total, Decimal(0), fate, self.rng.randint(1, 3)))
        return order

    def events(self, count: int) -> Iterator[Event]:
        """``count`` order-flow events after :meth:`dimensions`."""
        rng = self.rng
        produced = 0
        while produced < count:
            out = self._next(rng)
            if out is None:
                continue
            produced += 1
            self.recent.append(out)
            if len(self.recent) > 50:
                del self.recent[:25]
            yield out

    def _next(self, rng: random.Random) -> Event | None:
        at = self._tick()
        current = period_of(at, "quarter", UTC)
        closable = next_period(self.last_closed)
        if (
            closable != current
            and at - timedelta(days=10) > START
            and period_of(at - timedelta(days=10), "quarter", UTC) != closable
        ):
            self.last_closed = closable
            return PeriodClosed(self._id("close"), at, closable, "finance")
        roll = rng.random()
        if roll < 0.008 and self.recent:
            return rng.choice(self.recent)  # a re-sent duplicate
        if roll < 0.025:
            cid = rng.choice(self.customer_ids)
            owner = self.crm[cid].owner_rep_id
            if owner is None or rng.random() < 0.3:
                owner = rng.choice(self.rep_ids)
            return self._customer(cid, at, owner)
        if roll < 0.027:
            i = rng.randrange(len(self.rep_ids))
            team, region = TEAMS[rng.randrange(len(TEAMS))]
            return RepChanged(self._id("rep"), at, self.rep_ids[i], f"Rep {i}", team, None, region)
        if not self.open or roll < 0.33:
            return self.place()
        item = self.open[rng.randrange(len(self.open))]
        oid = item.order.order_id
        if item.fate == "cancel" and (item.paid > 0 or rng.random() < 0.5):
            self.open.remove(item)
            return OrderCancelled(self._id("cxl"), at, oid, at)
        due = item.total - item.paid
        if due <= 0 or item.steps <= 0:
            self.open.remove(item)
            if item.fate == "refund" and item.paid > 0:
                amount = (item.paid * rng.choice((25, 50, 100)) / 100).quantize(CENT)
                return RefundIssued(self._id("rfd"), at, oid, f"rf-{oid}", amount, at)
            return None
        if item.fate == "full" or item.steps == 1:
            amount = due
        else:
            amount = max(CENT, (due * rng.randint(20, 60) / 100).quantize(CENT))
        if item.fate == "partial" and item.steps == 1:
            amount = (due / 2).quantize(CENT)
        item.steps -= 1
        item.paid += amount
        if amount <= 0:
            return None
        return PaymentReceived(self._id("pay"), at, oid, self._id("bank"), amount, at)


def max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 1024 / 1024


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize() / 1024 / 1024
    except OSError:
        return max_rss_mb()


def throughput(args: argparse.Namespace) -> None:
    mix = Mix(seed=args.seed, reps=args.reps, customers=args.customers)
    events = mix.dimensions() + list(mix.events(args.events))
    kinds = Counter(type(e).__name__ for e in events)
    configure_gc(args.gc)
    engine = Engine()
    process = engine.process
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    cpu_started = time.process_time()
    if args.api == "batch":
        # what comstream replay does: Engine.process_batch per chunk, the collector paused
        # for the run (comstream.batchgc.PausedGC)
        size = args.batch_size
        with PausedGC():
            for i in range(0, len(events), size):
                engine.process_batch(events[i : i + size])
    elif args.gc == "replay":
        with LongLivedGC() as collector:
            tick = collector.tick
            for event in events:
                process(event)
                tick()
    else:
        for event in events:
            process(event)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    deltas = engine.deltas
    by_kind = Counter(d.kind.value for d in deltas)
    print(f"events: {len(events):,} ({', '.join(f'{k} {v:,}' for k, v in kinds.most_common())})")
    print(
        f"orders: {mix.orders:,}; lines per order 1-10; reps {args.reps}; "
        f"customers {args.customers}; plans {len(engine.plans)}; "
        f"{'batch' if args.api == 'batch' else 'per event, gc ' + args.gc}"
    )
    print(
        f"deltas: {len(deltas):,} ({', '.join(f'{k} {v:,}' for k, v in by_kind.items())}); "
        f"dead letters: {len(engine.dead_letters):,}"
    )
    if args.serde:
        serde_report(engine)
    total = sum((d.amount for d in deltas if isinstance(d, CommissionDelta)), Decimal(0))
    print(f"commission total: {total:,.2f} USD over {len(engine.totals()):,} rep-periods")
    print(
        f"elapsed: {elapsed:.2f} s wall, {cpu:.2f} s CPU  ->  "
        f"{len(events) / elapsed:,.0f} events/s wall, {len(events) / cpu:,.0f} events/s CPU "
        f"({cpu / len(events) * 1e6:.1f} us CPU/event); peak RSS {max_rss_mb():,.0f} MB"
    )


def serde_report(engine: Engine) -> None:
    """Serialized sizes and round-trip times of the states the worker stores per event."""
    groups: dict[str, list[Any]] = {
        "order state": [engine.order_state(k) for k in list(engine._orders)[:3000]],
        "customer state": [engine.customer_state(k) for k in list(engine._customers)[:600]],
        "rep state (all periods)": [engine.rep_state(k) for k in list(engine._rep_states)[:50]],
        "rep state (one period)": [
            RepState(st.rep_id, (sums,))
            for st in list(engine._rep_states.values())[:50]
            for sums in st.periods
        ],
        "commission delta": list(engine.deltas[:3000]),
    }
    for name, objs in groups.items():
        blobs = [serde.dumps(o) for o in objs]
        started = time.perf_counter()
        for o in objs:
            serde.loads(serde.dumps(o))
        each = (time.perf_counter() - started) / len(objs) * 1e6
        sizes = sorted(len(b) for b in blobs)
        print(
            f"serde {name}: median {sizes[len(sizes) // 2]:,} B, max {sizes[-1]:,} B, "
            f"dumps+loads {each:,.0f} us"
        )


def configure_gc(mode: str) -> None:
    """``default``: Python's cyclic GC as configured; ``replay``: what ``comstream replay``
    does (``comstream.batchgc.LongLivedGC``: freeze what is alive every 10,000 events);
    ``tuned``: freeze what exists and collect the young generations rarely (the engine's
    states are acyclic, so reference counting frees everything the GC would); ``off``: no
    GC."""
    gc.collect()
    if mode == "tuned":
        gc.freeze()
        gc.set_threshold(100_000, 50, 1000)
    elif mode == "off":
        gc.disable()


def memory(args: argparse.Namespace) -> None:
    """Hold ``--orders`` open orders (placed, a third partly paid) and report memory."""
    configure_gc(args.gc)
    mix = Mix(seed=args.seed, reps=args.reps, customers=args.customers)
    engine = Engine()
    for event in mix.dimensions():
        engine.process(event)
    gc.collect()
    base = current_rss_mb()
    started = time.perf_counter()
    rng = random.Random(args.seed)
    for i in range(args.orders):
        order = mix.place()
        engine.process(order)
        if rng.random() < 0.33:
            at = order.placed_at + timedelta(hours=1)
            engine.process(
                PaymentReceived(f"m-pay-{i}", at, order.order_id, f"m-b-{i}", Decimal("10.00"), at)
            )
        if i and i % 200_000 == 0:
            mix.open.clear()
            print(f"  {i:,} orders, RSS {current_rss_mb():,.0f} MB", flush=True)
    mix.open.clear()
    gc.collect()
    elapsed = time.perf_counter() - started
    held = current_rss_mb() - base
    print(f"open orders held: {args.orders:,} (1-10 lines each); deltas {len(engine.deltas):,}")
    print(
        f"RSS: {base:,.0f} MB before, {current_rss_mb():,.0f} MB after, peak {max_rss_mb():,.0f} MB"
    )
    print(
        f"engine state: {held:,.0f} MB  ->  {held * 1024 * 1024 / args.orders:,.0f} bytes per "
        f"open order (with its deltas); {elapsed:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="order-flow events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reps", type=int, default=48)
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument(
        "--gc",
        choices=("default", "replay", "tuned", "off"),
        default="default",
        help="cyclic GC: as configured, as comstream replay runs it (freeze every 10,000 "
        "events; throughput only), frozen once with high thresholds, or off; see configure_gc",
    )
    parser.add_argument(
        "--api",
        choices=("batch", "event"),
        default="batch",
        help="batch: Engine.process_batch over chunks of --batch-size events, as comstream "
        "replay runs it (the collector paused for the run; --gc is then ignored); event: "
        "Engine.process per event under --gc",
    )
    parser.add_argument("--batch-size", type=int, default=10_000, help="events per batch")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument("--serde", action="store_true", help="state sizes and serde times")
    parser.add_argument("--memory", action="store_true", help="measure memory of open orders")
    parser.add_argument("--orders", type=int, default=1_000_000, help="open orders (--memory)")
    args = parser.parse_args(argv)
    if args.memory:
        memory(args)
    else:
        throughput(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
