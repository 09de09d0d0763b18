"""Worked cases fed through the real ``comstream replay`` command, checked to the cent.

These were worked out by hand from SEMANTICS.md independently of the engine's own
scenario table; each comment shows the arithmetic.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PLAN_UTC = """
plan_id: flat
version: 1
effective_from: 2026-01-01
applies_to: {everyone: true}
period: month
timezone: UTC
earn_on: payment
rules:
  - id: all
    base: revenue
    rate: "0.05"
"""

PLAN_SHANGHAI = PLAN_UTC.replace("timezone: UTC", "timezone: Asia/Shanghai").replace(
    "plan_id: flat", "plan_id: flat-cn"
)

CRM = [
    {
        "type": "RepChanged",
        "event_id": "r1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "rep_id": "r1",
        "name": "Ada",
        "team_id": "t",
        "manager_id": None,
        "region": "APAC",
    },
    {
        "type": "RepChanged",
        "event_id": "r2",
        "occurred_at": "2026-01-01T00:00:00Z",
        "rep_id": "r2",
        "name": "Bo",
        "team_id": "t",
        "manager_id": None,
        "region": "APAC",
    },
    {
        "type": "RepChanged",
        "event_id": "r3",
        "occurred_at": "2026-01-01T00:00:00Z",
        "rep_id": "r3",
        "name": "Cy",
        "team_id": "t",
        "manager_id": None,
        "region": "APAC",
    },
    {
        "type": "CustomerChanged",
        "event_id": "c1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "customer_id": "c1",
        "name": "Acme",
        "tier": "A",
        "region": "APAC",
        "industry": "retail",
        "owner_rep_id": "r1",
        "customer_since": "2020-01-01",
    },
]


def order(oid: str, placed: str, lines: list[tuple[str, str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "OrderPlaced",
        "event_id": f"e-{oid}",
        "occurred_at": placed,
        "order_id": oid,
        "customer_id": "c1",
        "placed_at": placed,
        "currency": "USD",
        "lines": [
            {
                "line_id": f"{oid}-{i}",
                "sku": "S",
                "category": "hardware",
                "quantity": q,
                "unit_price": p,
                "discount": d,
                "unit_cost": "0",
            }
            for i, (q, p, d) in enumerate(lines)
        ],
        **extra,
    }


def pay(eid: str, oid: str, amount: str, at: str) -> dict[str, Any]:
    return {
        "type": "PaymentReceived",
        "event_id": eid,
        "occurred_at": at,
        "order_id": oid,
        "payment_id": eid,
        "amount": amount,
        "received_at": at,
    }


CASES: dict[str, tuple[str, list[dict[str, Any]], dict[tuple[str, str], str]]] = {
    # T = 3 x 100.00 + 1 x 250.00 x (1 - 0.2) = 500.00; C = 5% = 25.00
    # pay 200 (Nov) f=0.4 E=10.00 -> +10.00 in 2026-11
    # pay 300 (Dec) f=1   E=25.00 -> +15.00 in 2026-12
    # refund 100 (Dec) P=400 f=0.8 E=20.00 -> -5.00 in 2026-12
    "instalments-and-refund": (
        PLAN_UTC,
        [
            *CRM,
            order("o1", "2026-11-01T09:00:00Z", [("3", "100.00", "0"), ("1", "250.00", "0.2")]),
            pay("p1", "o1", "200.00", "2026-11-05T10:00:00Z"),
            pay("p2", "o1", "300.00", "2026-12-02T10:00:00Z"),
            {
                "type": "RefundIssued",
                "event_id": "f1",
                "occurred_at": "2026-12-10T10:00:00Z",
                "order_id": "o1",
                "refund_id": "f1",
                "amount": "100.00",
                "issued_at": "2026-12-10T10:00:00Z",
            },
            pay("p1", "o1", "200.00", "2026-11-05T10:00:00Z"),  # a duplicate: changes nothing
        ],
        {("r1", "2026-11"): "10.00", ("r1", "2026-12"): "10.00"},
    ),
    # T = 100.00, C = 5.00 shared 0.3333/0.3333/0.3334 -> 1.6665 / 1.6665 / 1.6670
    # pay 50: f=0.5: E = 0.83325 -> 0.83, 0.83325 -> 0.83, 0.8335 -> 0.83
    # pay 50: f=1:   E = 1.6665 -> 1.67, 1.67, 1.667 -> 1.67  (deltas +0.84 each)
    "thirds": (
        PLAN_UTC,
        [
            *CRM,
            order(
                "o2",
                "2026-11-01T09:00:00Z",
                [("1", "100.00", "0")],
                credits=[
                    {"rep_id": "r1", "share": "0.3333"},
                    {"rep_id": "r2", "share": "0.3333"},
                    {"rep_id": "r3", "share": "0.3334"},
                ],
            ),
            pay("p3", "o2", "50.00", "2026-11-02T10:00:00Z"),
            pay("p4", "o2", "50.00", "2026-11-03T10:00:00Z"),
        ],
        {("r1", "2026-11"): "1.67", ("r2", "2026-11"): "1.67", ("r3", "2026-11"): "1.67"},
    ),
    # The same with shares to 28 places (SEMANTICS.md section 2, "Precision"):
    # C = 5.00 x 0.333...3 = 1.666...65 (x2) and 5.00 x 0.333...34 = 1.666...67;
    # pay 50: E = 0.8333... -> 0.83 each; pay 50: E = 1.666... -> 1.67 each
    "thirds-to-28-places": (
        PLAN_UTC,
        [
            *CRM,
            order(
                "o2",
                "2026-11-01T09:00:00Z",
                [("1", "100.00", "0")],
                credits=[
                    {"rep_id": "r1", "share": "0.3333333333333333333333333333"},
                    {"rep_id": "r2", "share": "0.3333333333333333333333333333"},
                    {"rep_id": "r3", "share": "0.3333333333333333333333333334"},
                ],
            ),
            pay("p3", "o2", "50.00", "2026-11-02T10:00:00Z"),
            pay("p4", "o2", "50.00", "2026-11-03T10:00:00Z"),
        ],
        {("r1", "2026-11"): "1.67", ("r2", "2026-11"): "1.67", ("r3", "2026-11"): "1.67"},
    ),
    # The payment arrives before its order and is booked by its own time (October);
    # T = 2 x 50.00 = 100.00, C = 5.00, f = 1 -> +5.00 in 2026-10 once the order arrives;
    # the cancellation (November) sets f = 0 -> -5.00 in 2026-11.
    "payment-first-then-cancelled": (
        PLAN_UTC,
        [
            *CRM,
            pay("p5", "o3", "100.00", "2026-10-31T23:00:00Z"),
            order("o3", "2026-10-30T09:00:00Z", [("2", "50.00", "0")], rep_id="r2"),
            {
                "type": "OrderCancelled",
                "event_id": "x3",
                "occurred_at": "2026-11-03T00:00:00Z",
                "order_id": "o3",
                "cancelled_at": "2026-11-03T00:00:00Z",
            },
        ],
        {("r2", "2026-10"): "5.00", ("r2", "2026-11"): "-5.00"},
    ),
    # 2026-10-31T17:30Z is 2026-11-01 01:30 in Shanghai: the plan's time zone puts the
    # payment in November. T = 80.00, C = 4.00, pay 20.00 -> f = 0.25 -> E = 1.00.
    "timezone-boundary": (
        PLAN_SHANGHAI,
        [
            *CRM,
            order("o4", "2026-10-20T09:00:00+08:00", [("1", "80.00", "0")]),
            pay("p6", "o4", "20.00", "2026-10-31T17:30:00Z"),
        ],
        {("r1", "2026-11"): "1.00"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_worked_case_through_the_replay_command(name: str, tmp_path: Path) -> None:
    plan_text, events, expected = CASES[name]
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = tmp_path / "deltas.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "comstream.cli",
            "replay",
            str(path),
            "--plan",
            str(plan),
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    got = {(t["rep_id"], t["period"]): t["amount"] for t in report["totals"]}
    assert got == expected
    assert report["dead_letters"] == []
    deltas = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({d["delta_id"] for d in deltas}) == len(deltas) == report["deltas"]


def test_replay_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(CRM[0]) + "\n" + '{"type": "OrderPlaced"}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "comstream.cli", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert f"{path}:2:" in proc.stderr and "format.missing_field" in proc.stderr


def _replay_json(path: Path, plan: Path) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "comstream.cli", "replay", str(path), "--plan", str(plan), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}, proc.stderr


OVER_PRECISE = [
    # a payment finer than any currency's minor unit
    pay("p-fine", "o1", "100.00001", "2026-11-20T10:00:00Z"),
    # a share to 29 places
    order(
        "o9",
        "2026-11-06T09:00:00Z",
        [("1", "999.00", "0")],
        credits=[
            {"rep_id": "r1", "share": "0.33333333333333333333333333333"},
            {"rep_id": "r2", "share": "0.66666666666666666666666666667"},
        ],
    ),
    # a unit price to 13 places
    order("o8", "2026-11-07T09:00:00Z", [("1", "10.0000000000001", "0")]),
]


@pytest.mark.parametrize("bad", OVER_PRECISE, ids=["payment", "share", "unit_price"])
def test_one_over_precise_event_is_dead_lettered_alone(bad: dict[str, Any], tmp_path: Path) -> None:
    """Bad input never stops a replay: the over-precise event is a dead letter, every
    other event counts exactly as in a replay of the file without it, and the exit
    status says so (3)."""
    plan_text, events, expected = CASES["instalments-and-refund"]
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    good = [*events, pay("p-late", "o1", "50.00", "2026-12-20T10:00:00Z")]
    at = 6  # after the order and its first payment: valid events before and after it
    with_bad = tmp_path / "with-bad.jsonl"
    with_bad.write_text("".join(json.dumps(e) + "\n" for e in [*good[:at], bad, *good[at:]]))
    without = tmp_path / "without.jsonl"
    without.write_text("".join(json.dumps(e) + "\n" for e in good))

    code, report, err = _replay_json(with_bad, plan)
    assert code == 3, err
    ref_code, reference, ref_err = _replay_json(without, plan)
    assert ref_code == 0, ref_err
    assert report["totals"] == reference["totals"]
    assert {(t["rep_id"], t["period"]): t["amount"] for t in report["totals"]} == {
        **expected,
        ("r1", "2026-12"): "12.50",  # 10.00 + 5% of the late 50.00
    }
    (letter,) = report["dead_letters"]
    assert letter["reason"] == "invalid.amount_precision"
    assert letter["event_id"] == bad["event_id"]
    assert letter["event_type"] == bad["type"]
    assert f"{with_bad}:{at + 1}:" in letter["detail"]
    assert report["events"] == reference["events"] + 1
    assert report["deltas"] == reference["deltas"]

    table = subprocess.run(
        [sys.executable, "-m", "comstream.cli", "replay", str(with_bad), "--plan", str(plan)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert table.returncode == 3, table.stderr
    assert f"dead letter: {bad['event_id']}: invalid.amount_precision: {with_bad}:" in (
        table.stdout.replace("\n", "")
    )
    assert "r1" in table.stdout and "12.50" in table.stdout


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_simulate_compares_two_plans_per_rep(tmp_path: Path, jobs: str) -> None:
    current = tmp_path / "current.yaml"
    current.write_text(PLAN_UTC)
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(PLAN_UTC.replace('"0.05"', '"0.08"').replace("version: 1", "version: 2"))
    _, events, _ = CASES["instalments-and-refund"]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "comstream.cli",
            "simulate",
            "--events",
            str(path),
            "--plan",
            str(current),
            "--plan",
            str(proposed),
            "--json",
            "--jobs",
            jobs,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # C = 500.00 x 8% = 40.00; after the refund f = 0.8 -> 32.00 against 20.00 today
    assert json.loads(proc.stdout) == [
        {
            "rep_id": "r1",
            "currency": "USD",
            "current": "20.00",
            "proposed": "32.00",
            "change": "12.00",
        }
    ]


REPO = Path(__file__).resolve().parents[2]


def test_plans_validate_accepts_the_examples_and_names_a_broken_field(tmp_path: Path) -> None:
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "comstream.cli",
            "plans",
            "validate",
            str(REPO / "plans" / "simple.yaml"),
            str(REPO / "plans" / "rich.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLAN_UTC.replace('"0.05"', '"1.5"'))
    proc = subprocess.run(
        [sys.executable, "-m", "comstream.cli", "plans", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert f"{bad}:12: rules[0].rate: 1.5 is not a fraction between 0 and 1" in proc.stderr


def test_replay_into_clickhouse_gives_the_same_totals(tmp_path: Path) -> None:
    plan_text, events, expected = CASES["instalments-and-refund"]
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    dsn = f"chdb://{tmp_path / 'ch'}"
    code = (
        "import json, sys\n"
        "from sinks.clickhouse import Store\n"
        "s = Store(sys.argv[1]); s.ensure_schema()\n"
        "print(json.dumps({f'{r}|{p}': str(a) for (r, p, c), a in s.exact_totals().items()}))\n"
    )
    for _ in range(2):  # a second replay into the same store changes nothing
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "comstream.cli",
                "replay",
                str(path),
                "--plan",
                str(plan),
                "--clickhouse",
                dsn,
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
    stored = subprocess.run(
        [sys.executable, "-c", code, dsn], capture_output=True, text=True, timeout=120
    )
    assert stored.returncode == 0, stored.stderr
    got = json.loads(stored.stdout)
    assert got == {f"{r}|{p}": a for (r, p), a in expected.items()}


def test_what_if_in_parallel_gives_the_sequential_totals(tmp_path: Path) -> None:
    """The forked replays of ``simulate --jobs 2`` inherit the events read once and give
    the totals of one replay after the other, on a generated stream with refunds,
    cancellations and CRM changes."""
    from bench.engine_bench import Mix
    from comstream.replay import what_if
    from processors.events import PlanPublished

    mix = Mix(seed=11)
    events = [e for e in mix.dimensions() if not isinstance(e, PlanPublished)]
    events += list(mix.events(3_000))
    current = tmp_path / "current.yaml"
    current.write_text(PLAN_UTC)
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(PLAN_UTC.replace('"0.05"', '"0.08"').replace("version: 1", "version: 2"))
    sequential = what_if(list(events), [current, proposed], jobs=1)
    parallel = what_if(list(events), [current, proposed], jobs=2)
    assert parallel == sequential
    assert len(sequential[0]) > 10 and sequential[0] != sequential[1]
