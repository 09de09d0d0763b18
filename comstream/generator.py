"""A realistic, deterministic event stream for the demo, the tests and the benchmarks.

Dozens of reps across teams and regions, hundreds of customers across tiers, orders of
several lines, payments in instalments, some refunds and cancellations, and CRM changes
(account moves, tier changes). The same seed gives the same events; times come from a
clock the caller supplies (wall time for the live demo, a simulated clock for tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from processors.events import (
    Credit,
    CustomerChanged,
    Event,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    PaymentReceived,
    RefundIssued,
    RepChanged,
)

TEAMS = (("team-east", "APAC"), ("team-west", "AMER"), ("team-north", "EMEA"))
TIERS = ("A", "B", "B", "C", "C", "C")
INDUSTRIES = ("retail", "manufacturing", "finance", "healthcare", "logistics", "education")
CATALOG: dict[str, tuple[tuple[str, int, int], ...]] = {
    # category: (sku, min price, max price)
    "hardware": (("HW-LAPTOP", 700, 2400), ("HW-DOCK", 90, 300), ("HW-SERVER", 3000, 12000)),
    "software": (("SW-SEAT", 20, 120), ("SW-SUITE", 400, 2000)),
    "services": (("SV-SETUP", 150, 900), ("SV-CONSULT", 1000, 6000)),
    "support": (("SP-BASIC", 50, 300), ("SP-PREMIUM", 400, 1500)),
}
CENT = Decimal("0.01")
FIRST_NAMES = (
    "Ada",
    "Bo",
    "Chen",
    "Dana",
    "Eli",
    "Fang",
    "Gus",
    "Hana",
    "Ivan",
    "Jun",
    "Kai",
    "Lena",
    "Ming",
    "Nora",
    "Omar",
    "Pia",
    "Quan",
    "Rosa",
    "Sam",
    "Tao",
    "Uma",
    "Vik",
    "Wei",
    "Xia",
    "Yan",
    "Zoe",
)


def simulated_clock(
    start: datetime, step: timedelta = timedelta(minutes=7)
) -> Callable[[], datetime]:
    """A clock that advances by ``step`` on every call, from ``start``."""
    now = [start]

    def tick() -> datetime:
        value = now[0]
        now[0] = value + step
        return value

    return tick


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)  # identity: list.remove() on thousands of open orders stays cheap
class _Open:
    order: OrderPlaced
    total: Decimal
    paid: Decimal
    plan: str  # full, instalments, partial, refund, cancel
    steps_left: int


class DemoStream:
    """Generates the events of a small company. Not thread-safe."""

    def __init__(
        self, seed: int = 7, reps: int = 24, customers: int = 300, currency: str = "USD"
    ) -> None:
        self.rng = random.Random(seed)
        self.currency = currency
        self.rep_ids = [f"rep-{i:03d}" for i in range(1, reps + 1)]
        self.customer_ids = [f"cust-{i:04d}" for i in range(1, customers + 1)]
        self._order_seq = 0
        self._event_seq = 0
        self._open: list[_Open] = []
        self._owner: dict[str, str | None] = {}
        self._customer: dict[str, CustomerChanged] = {}

    def _eid(self, kind: str) -> str:
        self._event_seq += 1
        return f"{kind}-{self._event_seq:08d}"

    def dimensions(self, at: datetime) -> list[Event]:
        """The CRM as it is at the start: every rep, then every customer."""
        events: list[Event] = []
        for i, rep_id in enumerate(self.rep_ids):
            team, region = TEAMS[i % len(TEAMS)]
            manager = self.rep_ids[i - i % 8]
            name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {chr(65 + i // len(FIRST_NAMES))}."
            events.append(
                RepChanged(
                    self._eid("rep"),
                    at,
                    rep_id,
                    name,
                    team,
                    None if manager == rep_id else manager,
                    region,
                    True,
                )
            )
        for cid in self.customer_ids:
            events.append(self._customer_event(cid, at, owner=self._pick_owner()))
        return events

    def _pick_owner(self) -> str | None:
        return None if self.rng.random() < 0.03 else self.rng.choice(self.rep_ids)

    def _customer_event(self, cid: str, at: datetime, owner: str | None) -> CustomerChanged:
        rng = self.rng
        prev = self._customer.get(cid)
        since = (
            prev.customer_since if prev else date(2018, 1, 1) + timedelta(days=rng.randrange(3000))
        )
        event = CustomerChanged(
            self._eid("cust"),
            at,
            cid,
            f"Customer {cid[5:]}",
            rng.choice(TIERS),
            TEAMS[rng.randrange(len(TEAMS))][1],
            rng.choice(INDUSTRIES),
            owner,
            since,
        )
        self._customer[cid] = event
        self._owner[cid] = owner
        return event

    def _order(self, at: datetime) -> OrderPlaced:
        rng = self.rng
        self._order_seq += 1
        oid = f"ord-{self._order_seq:07d}"
        lines = []
        for n in range(1, rng.randint(1, 6) + 1):
            category = rng.choice(tuple(CATALOG))
            sku, lo, hi = rng.choice(CATALOG[category])
            price = (Decimal(rng.randint(lo * 100, hi * 100)) / 100).quantize(CENT)
            lines.append(
                OrderLine(
                    f"{oid}-{n}",
                    sku,
                    category,
                    Decimal(rng.randint(1, 12)),
                    price,
                    Decimal(rng.choice((0, 0, 0, 5, 10, 15, 25, 40))) / 100,
                    (price * Decimal(rng.randint(35, 85)) / 100).quantize(CENT),
                )
            )
        cid = rng.choice(self.customer_ids)
        credits: tuple[tuple[str, Decimal], ...] = ()
        rep_id = None
        roll = rng.random()
        if roll < 0.08:
            a, b = rng.sample(self.rep_ids, 2)
            credits = ((a, Decimal("0.6")), (b, Decimal("0.4")))
        elif roll < 0.10:
            a, b, c = rng.sample(self.rep_ids, 3)
            credits = ((a, Decimal("0.3333")), (b, Decimal("0.3333")), (c, Decimal("0.3334")))
        elif roll < 0.25:
            rep_id = rng.choice(self.rep_ids)
        return OrderPlaced(
            self._eid("ord"),
            at,
            oid,
            cid,
            at,
            self.currency,
            tuple(lines),
            rep_id,
            tuple(Credit(r, s) for r, s in credits),
        )

    @staticmethod
    def order_total(order: OrderPlaced) -> Decimal:
        total = sum(
            (ln.quantity * ln.unit_price * (1 - ln.discount) for ln in order.lines), Decimal(0)
        )
        return total.quantize(CENT)

    def events(self, clock: Callable[[], datetime], orders: int | None = None) -> Iterator[Event]:
        """Order-flow events until ``orders`` orders were placed (forever if None) and
        every open one was settled."""
        rng = self.rng
        placed = 0
        while orders is None or placed < orders or self._open:
            at = clock()
            if (orders is None or placed < orders) and (not self._open or rng.random() < 0.45):
                order = self._order(at)
                placed += 1
                plan = rng.choices(
                    ("full", "instalments", "partial", "refund", "cancel"), (50, 25, 10, 8, 7)
                )[0]
                self._open.append(
                    _Open(order, self.order_total(order), Decimal(0), plan, rng.randint(1, 3))
                )
                yield order
                continue
            if rng.random() < 0.02:
                cid = rng.choice(self.customer_ids)
                owner = self._owner.get(cid) or rng.choice(self.rep_ids)
                if rng.random() < 0.3:
                    owner = rng.choice(self.rep_ids)
                yield self._customer_event(cid, at, owner)
                continue
            if not self._open:
                continue
            item = self._open[rng.randrange(len(self._open))]
            yield from self._advance(item, at)

    def _advance(self, item: _Open, at: datetime) -> Iterator[Event]:
        rng = self.rng
        oid = item.order.order_id
        if item.plan == "cancel" and (item.paid > 0 or rng.random() < 0.5):
            self._open.remove(item)
            yield OrderCancelled(self._eid("cxl"), at, oid, at)
            return
        due = item.total - item.paid
        if due <= 0 or item.steps_left <= 0:
            self._open.remove(item)
            if item.plan == "refund" and item.paid > 0:
                amount = (item.paid * Decimal(rng.choice((25, 50, 100))) / 100).quantize(CENT)
                yield RefundIssued(self._eid("rfd"), at, oid, f"rf-{oid}", amount, at)
            return
        if item.plan == "full" or item.steps_left == 1:
            amount = due
        else:
            amount = max(CENT, (due * Decimal(rng.randint(20, 60)) / 100).quantize(CENT))
        if item.plan == "partial" and item.steps_left == 1:
            amount = (due / 2).quantize(CENT)
        item.steps_left -= 1
        item.paid += amount
        if amount > 0:
            yield PaymentReceived(self._eid("pay"), at, oid, f"pay-{self._event_seq}", amount, at)
