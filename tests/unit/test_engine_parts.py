"""Small parts of the engine: periods, the persistent map, routing, delta ids, the
in-memory Engine's bookkeeping."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from processors import stages
from processors.events import CommissionDelta, DeadLetter
from processors.ids import delta_id
from processors.messages import CreditResolved, OrderAccepted, OrderCancelledNotice
from processors.periods import book_period, last_day, next_period, period_kind, period_of
from processors.pmap import PMap

from .test_scenarios_kit import (
    cancel,
    close,
    customer,
    line,
    order,
    pay,
    plan_doc,
    publish,
    refund,
    rep,
    run,
    ts,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def test_period_of() -> None:
    assert period_of(ts("2026-10-31T23:30:00Z"), "month", SHANGHAI) == "2026-11"
    assert period_of(ts("2026-10-31T15:59:59Z"), "month", SHANGHAI) == "2026-10"
    assert period_of(ts("2026-12-31T16:00:00Z"), "quarter", SHANGHAI) == "2027-Q1"
    assert period_of(ts("2026-04-01T03:59:00Z"), "quarter", NEW_YORK) == "2026-Q1"
    assert period_of(ts("2026-07-01T00:00:00+02:00"), "month", UTC) == "2026-06"


def test_period_of_matches_direct_conversion_over_many_instants() -> None:
    rng = random.Random(3)
    at = datetime(2025, 12, 1, tzinfo=UTC)
    for _ in range(20000):
        at += timedelta(seconds=rng.randint(0, 40000))
        value = at if rng.random() < 0.8 else at.astimezone(timezone(timedelta(hours=-7)))
        for tz in (SHANGHAI, NEW_YORK, UTC):
            local = value.astimezone(tz)
            assert period_of(value, "month", tz) == f"{local.year:04d}-{local.month:02d}"
            assert period_of(value, "quarter", tz) == f"{local.year:04d}-Q{(local.month + 2) // 3}"


def test_period_helpers() -> None:
    assert next_period("2026-12") == "2027-01" and next_period("2026-Q4") == "2027-Q1"
    assert last_day("2026-02") == date(2026, 2, 28) and last_day("2024-02") == date(2024, 2, 29)
    assert last_day("2026-Q4") == date(2026, 12, 31) and last_day("2026-Q1") == date(2026, 3, 31)
    assert period_kind("2026-11") == "month" and period_kind("2026-Q2") == "quarter"
    with pytest.raises(ValueError):
        period_kind("2026-13")
    assert book_period("2026-10", {"2026-10", "2026-11"}) == "2026-12"
    assert book_period("2026-10", {"2026-09"}) == "2026-10"


def test_pmap_is_persistent() -> None:
    empty: PMap[str, int] = PMap()
    m = empty
    versions = []
    for i in range(3000):
        m = m.set(f"k{i}", i)
        versions.append(m)
    assert len(empty) == 0 and len(m) == 3000
    assert len(versions[99]) == 100 and "k100" not in versions[99] and versions[99]["k99"] == 99
    m2 = m.set("k5", -5)
    assert m["k5"] == 5 and m2["k5"] == -5 and len(m2) == 3000
    m3 = m2.remove("k5")
    assert "k5" not in m3 and "k5" in m2 and len(m3) == 2999
    assert m3.remove("nope") is m3
    assert m3.get("nope") is None and m3.get("nope", 7) == 7
    assert PMap(dict(m.items())) == m and dict(m) == {f"k{i}": i for i in range(3000)}
    assert 3 not in PMap({"a": 1}) and [] not in PMap({"a": 1})


def test_murmur2_matches_kafka() -> None:
    # test vectors of Kafka's own UtilsTest (org.apache.kafka.common.utils)
    assert stages.murmur2(b"21") == -973932308
    assert stages.murmur2(b"foobar") == -790332482
    assert stages.murmur2(b"a-little-bit-long-string") == -985981536
    assert stages.murmur2(b"a-little-bit-longer-string") == -1486304829
    assert stages.murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert stages.murmur2(b"abc") == 479470107
    assert stages.partition_of("21", 7) == (-973932308 & 0x7FFFFFFF) % 7
    assert stages.partition_of(b"21", 7) == stages.partition_of("21", 7)


def test_routing() -> None:
    placed = order("o1", [line("l1", 1, 10)], customer_id="c1")
    assert stages.route_input(placed) == [(stages.CUSTOMER_STAGE, "c1", placed)]
    p = pay("o1", 5)
    assert stages.route_input(p) == [(stages.ORDER_STAGE, "o1", p)]
    r = rep("rep-1")
    assert stages.route_input(r) == [(stages.REP_STAGE, "rep-1", r)]
    plan = publish(plan_doc())
    assert stages.route_input(plan) == []
    assert stages.broadcast_targets(plan) == (stages.ORDER_STAGE, stages.REP_STAGE)
    assert stages.broadcast_targets(close("2026-11")) == (stages.ORDER_STAGE,)
    assert stages.broadcast_targets(p) == ()
    engine, deltas, _ = run([plan, placed, pay("o1", 10)])
    st = engine.order_state("o1")
    assert st is not None and st.accepted is not None
    assert stages.address(st.accepted) == (stages.ORDER_STAGE, "o1")
    assert stages.address(deltas[0]) == (stages.REP_STAGE, "rep-1")
    notice = OrderCancelledNotice("x", "o1", "c1", ts("2026-11-01T00:00:00Z"))
    assert stages.address(notice) == (stages.CUSTOMER_STAGE, "c1")
    resolved = CreditResolved("x", ts("2026-11-01T00:00:00Z"), "o9", "c1", (), ())
    assert stages.address(resolved) == (stages.ORDER_STAGE, "o9")
    assert stages.address(DeadLetter("r", "d", "e1")) == (stages.DEAD_LETTERS, "e1")
    assert isinstance(st.accepted, OrderAccepted)


def test_delta_ids_are_deterministic_and_distinct() -> None:
    a = delta_id("ev-1", "rep-1", "commission:o1")
    assert a == delta_id("ev-1", "rep-1", "commission:o1") and len(a) == 32
    assert (
        len(
            {
                a,
                delta_id("ev-1", "rep-2", "commission:o1"),
                delta_id("ev-1", "rep-1", "commission:o2"),
                delta_id("ev-2", "rep-1", "commission:o1"),
            }
        )
        == 4
    )
    events = [publish(plan_doc()), order("o1", [line("l1", 1, 100)]), pay("o1", 50), pay("o1", 50)]
    first = [d.delta_id for d in run(events)[1]]
    second = [d.delta_id for d in run(events)[1]]
    assert first == second and len(set(first)) == 2


def test_engine_bookkeeping() -> None:
    events = [
        publish(plan_doc(earn_on="booking")),
        customer("c-none"),
        order("o1", [line("l1", 1, 100)]),
        order("o2", [line("l1", 1, 100)], customer_id="c-none", rep_id=None),
        refund("o1", 10),
        cancel("o1"),
        order("bad", []),
        order("bad", []),  # the same invalid event again: one dead letter
    ]
    engine, deltas, letters = run(events)
    assert engine.uncredited_orders() == ["o2"]
    assert [d.reason for d in letters] == ["invalid.no_lines"]
    assert list(engine.deltas) == deltas and list(engine.dead_letters) == letters
    assert engine.totals() == {("rep-1", "2026-11", "USD"): Decimal("0.00")}
    assert sum(d.amount for d in deltas if isinstance(d, CommissionDelta)) == 0
    assert ("std", 1) in engine.plans
    assert engine.closed_periods == frozenset()
