"""The pure part of ``comstream reconcile``: the balance, the letters, the ledger check."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from comstream.reconcile import (
    EXIT_BALANCED,
    EXIT_IMBALANCE,
    EXIT_LEDGER,
    EventCheck,
    LedgerRow,
    Upstream,
    check_events,
    compare_ledger,
    exit_code,
    expected_rows,
    letters_in_period,
    processing_order,
    uncredited,
)
from processors.events import Event
from schemas.codec import DeadLetterRecord, encode
from tests.unit.test_scenarios_kit import customer, line, order, pay, plan_doc, publish, rep

ORDERS, PAYMENTS, PLANS, REPS, CUSTOMERS = "orders", "payments", "plans", "reps", "customers"
UPSTREAM = (CUSTOMERS, REPS, ORDERS, PAYMENTS, PLANS)
STAGE = "order-stage"
NOW = datetime(2026, 11, 20, tzinfo=UTC)


class Log:
    """A tiny upstream: one partition per topic, offsets in publish order."""

    def __init__(self) -> None:
        self.messages: list[Upstream] = []
        self.next: dict[str, int] = {}

    def put(self, topic: str, value: bytes | None) -> Upstream:
        offset = self.next.get(topic, 0)
        self.next[topic] = offset + 1
        m = Upstream(topic, 0, offset, len(self.messages), value)
        self.messages.append(m)
        return m

    def event(self, topic: str, e: Event) -> Upstream:
        return self.put(topic, encode(e))

    def all_committed(self) -> dict[tuple[str, int], int]:
        return {(t, 0): n for t, n in self.next.items()}

    def snapshot(self) -> dict[tuple[str, int], tuple[int, int]]:
        return {(t, 0): (0, self.next.get(t, 0)) for t in UPSTREAM}


def letter(m: Upstream, reason: str, event_id: str | None = None) -> DeadLetterRecord:
    return DeadLetterRecord(
        reason, "x", m.topic, m.partition, m.offset, None, m.value or b"", event_id, None, NOW
    )


def base_log() -> Log:
    log = Log()
    log.event(PLANS, publish(plan_doc()))
    log.event(REPS, rep("rep-1"))
    log.event(CUSTOMERS, customer("cust-1", owner="rep-1"))
    log.event(ORDERS, order("o-1", [line("l1", 1, 1000)]))
    log.event(PAYMENTS, pay("o-1", 1000, event_id="p-1"))
    return log


def check(
    log: Log, letters: list[DeadLetterRecord], committed: dict[tuple[str, int], int] | None = None
) -> EventCheck:
    return check_events(
        log.messages,
        log.all_committed() if committed is None else committed,
        letters,
        UPSTREAM,
        log.snapshot(),
    )


def test_all_valid_and_handled_balances() -> None:
    log = base_log()
    result = check(log, [])
    assert result.balanced
    total = result.total
    assert (total.events_in, total.processed, total.dead_lettered, total.pending) == (5, 5, 0, 0)
    assert result.payments == {"o-1": (1, Decimal(1000))}
    assert sum(d.amount for d in result.engine.deltas) == Decimal("50.00")


def test_bad_message_with_its_letter_balances_without_one_is_lost() -> None:
    log = base_log()
    junk = log.put(ORDERS, b"\x07garbage")
    neg = log.event(PAYMENTS, pay("o-1", -5, event_id="neg"))
    ok = check(log, [letter(junk, "decode.error"), letter(neg, "invalid.amount_negative")])
    assert ok.balanced
    assert ok.total.dead_lettered == 2 and ok.total.processed == 5
    assert ok.topics[ORDERS].dead_lettered == 1 and ok.topics[PAYMENTS].dead_lettered == 1

    lost = check(log, [letter(junk, "decode.error")])
    assert not lost.balanced
    assert lost.total.unaccounted == 1
    assert [(i.kind, i.topic, i.offset) for i in lost.issues] == [("lost", PAYMENTS, 1)]
    t = lost.total
    assert t.events_in == t.processed + t.dead_lettered + t.pending + t.unaccounted


def test_a_tombstone_is_expected_to_be_dead_lettered() -> None:
    log = base_log()
    tomb = log.put(CUSTOMERS, None)
    assert check(log, [letter(tomb, "decode.error")]).balanced
    assert not check(log, []).balanced


def test_valid_event_dead_lettered_and_wrong_reason_are_issues() -> None:
    log = base_log()
    good = log.messages[-1]
    bad = log.event(PAYMENTS, pay("o-1", -5, event_id="neg"))
    result = check(log, [letter(good, "invalid.whatever"), letter(bad, "decode.error")])
    assert not result.balanced
    assert sorted(i.kind for i in result.issues) == ["valid_dead_lettered", "wrong_reason"]
    assert result.total.dead_lettered == 2 and result.total.unaccounted == 0


def test_a_letter_resolved_by_replaying_its_bytes_is_no_issue() -> None:
    log = base_log()
    first = log.messages[-1]  # the payment, refused at the time (say, by older code)
    assert first.value is not None
    log.put(PAYMENTS, first.value)  # comstream dlq replay: the same bytes again
    result = check(log, [letter(first, "invalid.currency_unknown")])
    assert result.balanced, result.issues
    assert result.letters_replayed == 1
    assert result.topics[PAYMENTS].dead_lettered == 1 and result.topics[PAYMENTS].processed == 1


def test_letter_pointing_at_no_message_is_an_orphan_unless_out_of_snapshot() -> None:
    log = base_log()
    ghost = Upstream(ORDERS, 0, 0, 0, b"")  # offset 0 exists; make the letter point at 7
    far = DeadLetterRecord("decode.error", "x", ORDERS, 0, 7, None, b"", None, None, NOW)
    snap = log.snapshot()
    snap[(ORDERS, 0)] = (0, 9)  # offset 7 is inside the snapshot yet was not read
    result = check_events(log.messages, log.all_committed(), [far], UPSTREAM, snap)
    assert [i.kind for i in result.issues] == ["orphan_letter"]
    # beyond the snapshot's end, below the low watermark, or in a compacted topic: ignored
    assert check(log, [far]).balanced and check(log, [far]).letters_ignored == 1
    snap[(ORDERS, 0)] = (8, 9)
    assert check_events(log.messages, log.all_committed(), [far], UPSTREAM, snap).balanced
    snap[(ORDERS, 0)] = (0, 9)
    compacted = check_events(
        log.messages, log.all_committed(), [far], UPSTREAM, snap, compacted=[ORDERS]
    )
    assert compacted.balanced
    assert ghost.offset == 0


def test_messages_at_or_after_the_committed_offset_are_pending_not_an_imbalance() -> None:
    log = base_log()
    late = log.event(PAYMENTS, pay("o-1", 10, event_id="late"))
    junk = log.put(ORDERS, b"\x07junk")
    committed = log.all_committed()
    committed[(PAYMENTS, 0)] = late.offset
    committed[(ORDERS, 0)] = junk.offset
    result = check(log, [], committed)
    assert result.balanced
    assert result.total.pending == 2 and result.total.processed == 5
    # pending events are not run through the engine
    assert result.payments == {"o-1": (1, Decimal(1000))}
    # a pending message that already has its letter counts as dead-lettered
    early = check(log, [letter(junk, "decode.error")], committed)
    assert early.balanced and early.total.pending == 1 and early.total.dead_lettered == 1


def test_nothing_committed_means_everything_pending() -> None:
    log = base_log()
    result = check(log, [], {})
    assert result.balanced and result.total.pending == 5


def test_stage_refusal_matched_by_event_id() -> None:
    log = base_log()
    again = log.event(ORDERS, order("o-1", [line("l1", 2, 5)], event_id="placed-again"))
    stage_letter = DeadLetterRecord(
        "conflict.order_exists", "x", STAGE, 2, 40, None, b"", "placed-again", "OrderPlaced", NOW
    )
    ok = check(log, [stage_letter])
    assert ok.balanced, ok.issues
    assert ok.topics[ORDERS].dead_lettered == 1 and ok.topics[ORDERS].processed == 1
    lost = check(log, [])
    assert [(i.kind, i.offset) for i in lost.issues] == [("lost", again.offset)]
    # a stage letter for an event nobody published is an orphan
    stray = DeadLetterRecord(
        "conflict.order_exists", "x", STAGE, 0, 1, None, b"", "nobody", "OrderPlaced", NOW
    )
    assert [i.kind for i in check(log, [stage_letter, stray]).issues] == ["orphan_letter"]


def test_duplicate_payment_id_refused_by_the_stage() -> None:
    log = base_log()
    log.event(PAYMENTS, pay("o-1", 1000, event_id="p-2", payment_id="p-1"))
    stage_letter = DeadLetterRecord(
        "conflict.duplicate_payment_id", "x", STAGE, 0, 9, None, b"", "p-2", None, NOW
    )
    result = check(log, [stage_letter])
    assert result.balanced, result.issues
    assert result.payments == {"o-1": (1, Decimal(1000))}  # the refused one is not paid


def test_processing_order_merges_by_timestamp_keeping_partition_order() -> None:
    a = [Upstream("orders", 0, 0, 5, b""), Upstream("orders", 0, 1, 1, b"")]
    b = [Upstream("reps", 0, 0, 3, b""), Upstream("reps", 0, 1, 5, b"")]
    merged = list(processing_order([a, b], {"reps": 0, "orders": 1}))
    assert [(m.topic, m.offset) for m in merged] == [
        ("reps", 0),
        ("reps", 1),
        ("orders", 0),
        ("orders", 1),
    ]


def row(order_id: str, amount: str, rep_id: str = "rep-1") -> LedgerRow:
    return LedgerRow(order_id, rep_id, "USD", Decimal(amount), 1)


def test_compare_ledger_paid_no_commission_and_differences() -> None:
    expected = [row("o-1", "50.00"), row("o-2", "10.00"), row("o-3", "7.00"), row("", "3.00")]
    ledger = [row("o-1", "50.00"), row("o-3", "6.00"), row("", "3.00")]
    payments = {"o-1": (1, Decimal(1000)), "o-2": (2, Decimal(200))}
    result = compare_ledger(expected, ledger, payments)
    assert not result.ok
    assert [r["order_id"] for r in result.paid_no_commission] == ["o-2"]
    assert result.paid_no_commission[0]["payments"] == 2
    assert [(r["order_id"], r["difference"]) for r in result.order_differences] == [
        ("o-3", Decimal("-1.00"))
    ]
    assert [(r["rep_id"], r["expected"], r["ledger"]) for r in result.rep_differences] == [
        ("rep-1", Decimal("70.00"), Decimal("59.00"))
    ]
    assert compare_ledger(expected, expected, payments).ok
    # an unpaid order missing from the ledger is a difference, not "paid, no commission"
    unpaid = compare_ledger([row("o-9", "5.00")], [], {})
    assert not unpaid.paid_no_commission and len(unpaid.order_differences) == 1
    # an order whose expected commission is zero is not "paid, no commission"
    assert compare_ledger([row("o-1", "0.00")], [], payments).ok


def test_expected_rows_and_uncredited_from_the_engine() -> None:
    log = base_log()
    log.event(CUSTOMERS, customer("cust-2"))  # no owner
    log.event(ORDERS, order("o-2", [line("l1", 1, 80)], customer_id="cust-2", rep_id=None))
    log.event(PAYMENTS, pay("o-2", 80, event_id="p-o2"))
    result = check(log, [])
    assert result.balanced
    rows = expected_rows(result.engine.deltas, "2026-11")
    assert rows == [LedgerRow("o-1", "rep-1", "USD", Decimal("50.00"), 1)]
    assert expected_rows(result.engine.deltas, "2026-10") == []
    listed = uncredited(result.engine, "2026-11")
    assert [(r["order_id"], r["paid"]) for r in listed] == [("o-2", Decimal(80))]
    assert uncredited(result.engine, "2026-10") == []  # placed after October
    assert len(uncredited(result.engine, "2026-Q4")) == 1


def test_letters_in_period_dated_by_their_event_or_listed_as_undated() -> None:
    log = base_log()
    neg = log.event(PAYMENTS, pay("o-1", -5, at="2026-10-31T23:00:00Z", event_id="neg"))
    junk = log.put(ORDERS, b"\x07junk")
    log.event(ORDERS, order("o-1", [line("l1", 2, 5)], event_id="placed-again"))
    stage = DeadLetterRecord(  # a stage's letter: its bytes are a stage message, not Avro
        "conflict.order_exists", "x", STAGE, 2, 40, None, b"[]", "placed-again", None, NOW
    )
    gone = DeadLetterRecord(  # its source is gone; its own bytes still date it
        "invalid.amount_negative",
        "x",
        PAYMENTS,
        0,
        99,
        None,
        encode(pay("o-9", -1, at="2026-09-03T00:00:00Z", event_id="old")),
        "old",
        None,
        NOW,
    )
    result = check(
        log, [letter(neg, "invalid.amount_negative"), letter(junk, "decode.error"), stage]
    )
    assert result.balanced, result.issues
    letters = [
        (0, letter(neg, "invalid.amount_negative")),
        (1, letter(junk, "decode.error")),
        (2, letter(junk, "decode.error")),  # the same source again: shown once
        (3, stage),
        (4, gone),
    ]

    def listed(period: str) -> list[tuple[int, bool]]:
        rows = letters_in_period(letters, period, result.occurred_at, result.occurred_by_event)
        return [(r["dlq_offset"], r["undated"]) for r in rows]

    assert listed("2026-11") == [(1, True), (3, False)]
    assert listed("2026-10") == [(0, False), (1, True)]
    assert listed("2026-09") == [(1, True), (4, False)]


def test_exit_codes() -> None:
    assert exit_code(True, True) == EXIT_BALANCED == 0
    assert exit_code(False, True) == EXIT_IMBALANCE == 1
    assert exit_code(False, False) == EXIT_IMBALANCE
    assert exit_code(True, False) == EXIT_LEDGER == 3


# ---- silent money: overpayments and payments waiting for their order (issue 17, item 6) --


def test_overpayments_and_payments_waiting_for_their_order_are_listed() -> None:
    from datetime import timedelta

    from comstream.reconcile import payment_exceptions
    from processors.engine import Engine

    engine = Engine()
    engine.process_all(
        [
            publish(plan_doc()),
            rep("rep-1"),
            customer("cust-1", owner="rep-1"),
            order("o-1", [line("l1", 1, "1000.00")]),
            pay("o-1", "1000.00", event_id="p-ok", payment_id="p-ok"),
            pay("o-1", "999999999.00", event_id="p-big", payment_id="p-big"),
            order("o-2", [line("l1", 1, "500.00")]),
            pay("o-2", "500.00", event_id="p-2", payment_id="p-2"),
            # payments of orders that never arrived: one long ago, one just now
            pay("o-ghost", "120.00", at="2026-11-01T10:00:00Z", event_id="p-g", payment_id="p-g"),
            pay("o-late", "80.00", at="2026-11-19T23:00:00Z", event_id="p-l", payment_id="p-l"),
        ]
    )
    overpaid, waiting = payment_exceptions(engine, NOW, timedelta(hours=24))
    assert [(o["order_id"], o["total"], o["paid"], o["excess"]) for o in overpaid] == [
        ("o-1", Decimal("1000.00"), Decimal("1000000999.00"), Decimal("999999999.00"))
    ]
    assert overpaid[0]["currency"] == "USD"
    assert [(w["order_id"], w["payments"], w["amount"]) for w in waiting] == [
        ("o-ghost", 1, Decimal("120.00"))
    ]
    assert waiting[0]["first_received_at"].startswith("2026-11-01T10:00")
    assert waiting[0]["waiting_hours"] == 19 * 24 - 10
    # a shorter age lists the recent one too
    _, waiting = payment_exceptions(engine, NOW, timedelta(minutes=30))
    assert [w["order_id"] for w in waiting] == ["o-ghost", "o-late"]


# ---- adjustments followed to where they were booked (issue 17, item 7) -------------------


def test_a_payment_booked_as_a_prior_period_adjustment_is_not_paid_no_commission() -> None:
    """The worker saw the close before a payment received 0.4 s earlier and booked its
    commission in the next period as an adjustment of P; reconcile's replay took them in
    the other order. Compared by the period that caused them, they agree."""
    from processors.engine import Engine
    from processors.events import PeriodClosed

    base = [
        publish(plan_doc()),
        rep("rep-1"),
        customer("cust-1", owner="rep-1"),
        order("o-1", [line("l1", 1, "1000.00")], placed_at="2026-11-10T10:00:00Z"),
    ]
    payment = pay("o-1", "1000.00", at="2026-11-30T23:59:59Z")
    close = PeriodClosed("period-closed:2026-11", NOW, "2026-11", "u-admin")
    replayed, worker = Engine(), Engine()
    replayed.process_all([*base, payment, close])
    worker.process_all([*base, close, payment])
    assert {d.booked_period for d in worker.deltas} == {"2026-12"}
    assert {d.origin_period for d in worker.deltas} == {"2026-11"}
    expected = expected_rows(replayed.deltas, "2026-11")
    ledger = expected_rows(worker.deltas, "2026-11")  # what the ledger answers by origin
    check = compare_ledger(expected, ledger, {"o-1": (1, Decimal("1000.00"))})
    assert check.ok, check
    # the next period has nothing of its own to compare either
    assert compare_ledger(
        expected_rows(replayed.deltas, "2026-12"), expected_rows(worker.deltas, "2026-12"), {}
    ).ok


def test_only_settled_work_is_compared() -> None:
    """Orders with input the worker has not handled yet, or with work still in flight
    downstream, are left out of the comparison (listed as unsettled), not reported as
    differences; so is every row of a rep whose work is in flight."""
    from comstream.reconcile import Unsettled

    expected = [
        LedgerRow("o-1", "rep-1", "USD", Decimal("10.00"), 1),
        LedgerRow("o-2", "rep-1", "USD", Decimal("20.00"), 1),
        LedgerRow("o-3", "rep-2", "USD", Decimal("30.00"), 1),
        LedgerRow("", "rep-2", "USD", Decimal("5.00"), 1),
    ]
    ledger = [
        LedgerRow("o-1", "rep-1", "USD", Decimal("10.00"), 1),
        LedgerRow("o-2", "rep-1", "USD", Decimal("12.00"), 1),  # still in flight
        LedgerRow("o-3", "rep-2", "USD", Decimal("25.00"), 1),  # the rep's stage is busy
    ]
    payments = {"o-2": (1, Decimal("1")), "o-3": (1, Decimal("1"))}
    assert not compare_ledger(expected, ledger, payments).ok
    check = compare_ledger(
        expected, ledger, payments, Unsettled(frozenset({"o-2"}), frozenset({"rep-2"}))
    )
    assert check.ok, check
    assert check.unsettled == ["(accelerator)", "o-2", "o-3"]
    # what is settled is still compared
    wrong = [LedgerRow("o-1", "rep-1", "USD", Decimal("9.00"), 1), *ledger[1:]]
    check = compare_ledger(
        expected, wrong, payments, Unsettled(frozenset({"o-2"}), frozenset({"rep-2"}))
    )
    assert [d["order_id"] for d in check.order_differences] == ["o-1"]
    assert Unsettled(everything=True).covers("o-9", "rep-9")


def test_unsettled_work_is_named_by_pending_input_and_in_flight_messages() -> None:
    from comstream.reconcile import unsettled_work
    from processors import serde
    from processors.engine import Engine
    from schemas.codec import encode as avro

    engine = Engine()
    engine.process_all(
        [
            publish(plan_doc()),
            rep("rep-1"),
            customer("cust-1", owner="rep-1"),
            order("o-1", [line("l1", 1, "100.00")]),
            order("o-5", [line("l1", 1, "100.00")], customer_id="cust-5"),
        ]
    )
    paid = pay("o-2", "1.00")
    u = unsettled_work(
        pending=[paid, customer("cust-5", owner="rep-1"), rep("rep-7")],
        in_flight=[
            ("order", b"o-3", b"..."),
            ("customer", b"cust-1", b"..."),  # unreadable: every order of cust-1
            ("customer", b"cust-7", serde.dumps(order("o-7", [line("l1", 1, "1")]))),
            ("rep", b"rep-4", serde.dumps(pay("o-4", "1.00"))),  # no delta: the rep
            ("deltas", b"rep-6", b"not avro"),
        ],
        engine=engine,
    )
    assert u.orders == {"o-2", "o-3", "o-1", "o-5", "o-7"} and not u.everything
    assert u.reps >= {"rep-4", "rep-6", "rep-7"}
    assert unsettled_work([publish(plan_doc(version=2))], [], engine).everything
    engine.process(pay("o-1", "100.00"))
    delta = engine.deltas[-1]  # on its way to the ledger: it names its order
    u = unsettled_work([], [("deltas", b"rep-1", avro(delta))], engine)
    assert (u.orders, u.reps) == ({"o-1"}, frozenset())
