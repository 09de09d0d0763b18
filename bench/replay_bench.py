"""``comstream replay`` and ``comstream simulate`` end to end on a large generated file.

    python -m bench.replay_bench --events 1000000

Writes (once, kept under ``var/bench/``) a JSON-lines file of the engine bench's mix
(``bench/engine_bench.py``: reps, customers, orders of 1-10 lines, instalments, refunds,
cancellations, CRM changes, quarter closes) without its plan events, and the plan files
it is replayed under: the bench plan (every feature: rate tables, modifiers, tiers, caps)
with ``plans/rich.yaml`` for replay; the bench plan against a proposed version (every flat
rate x1.1) for simulate. Then runs the installed ``comstream`` as a child process, as a
user would, and reports wall time, CPU time and peak memory of each command, reading the
file included. The JSON output of replay is checked against an in-process replay of the
same file when ``--check`` is given (slow: a second replay).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bench.engine_bench import BENCH_PLAN, Mix, _json_default
from processors.events import PlanPublished
from schemas.jsonl import format_event

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "var" / "bench"


def _plan_yaml(doc: dict[str, Any], path: Path) -> Path:
    plain = json.loads(json.dumps(doc, default=_json_default))
    path.write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    return path


def proposed(doc: dict[str, Any]) -> dict[str, Any]:
    """The same plan, every flat rule rate x1.1 (the what-if)."""
    new = copy.deepcopy(doc)
    for rule in new["rules"]:
        if "rate" in rule:
            rule["rate"] = str((Decimal(str(rule["rate"])) * Decimal("1.1")).normalize())
    return new


def event_file(events: int, seed: int) -> Path:
    """The generated file for ``events`` order-flow events (made once)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"replay-{seed}-{events}.jsonl"
    if path.exists():
        return path
    started = time.perf_counter()
    mix = Mix(seed=seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for event in mix.dimensions():
            if not isinstance(event, PlanPublished):
                fh.write(format_event(event) + "\n")
        for event in mix.events(events):
            fh.write(format_event(event) + "\n")
    tmp.rename(path)
    print(f"wrote {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def run(args: list[str]) -> tuple[float, float, float, bytes]:
    """(wall s, CPU s, peak RSS MB, stdout) of one child command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 3):
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024, proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="order-flow events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="compare with an in-process run")
    args = parser.parse_args(argv)
    path = event_file(args.events, args.seed)
    lines = sum(1 for _ in path.open(encoding="utf-8"))
    bench_plan = _plan_yaml(BENCH_PLAN, OUT / "plan-bench.yaml")
    proposal = _plan_yaml(proposed(BENCH_PLAN), OUT / "plan-bench-proposed.yaml")
    comstream = shutil.which("comstream") or str(Path(sys.executable).parent / "comstream")
    replay_args = [
        comstream,
        "replay",
        str(path),
        "--plan",
        str(bench_plan),
        "--plan",
        str(REPO / "plans" / "rich.yaml"),
        "--json",
    ]
    print(f"file: {path} ({lines:,} events, {path.stat().st_size / 1e6:,.0f} MB)")
    wall, cpu, rss, out = run(replay_args)
    result = json.loads(out)
    print(
        f"comstream replay --json: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:,.0f} MB; "
        f"{lines / wall:,.0f} events/s; {result['deltas']:,} deltas, "
        f"{len(result['dead_letters'])} dead letters, {len(result['totals']):,} rep-periods"
    )
    sim_args = [
        comstream,
        "simulate",
        "--events",
        str(path),
        "--plan",
        str(bench_plan),
        "--plan",
        str(proposal),
        "--json",
    ]
    wall, cpu, rss, out = run(sim_args)
    rows = json.loads(out)
    print(
        f"comstream simulate (2 plans) --json: {wall:.1f} s wall, {cpu:.1f} s CPU, "
        f"peak RSS {rss:,.0f} MB; {len(rows)} reps"
    )
    if args.check:
        from comstream.replay import read_event_file, replay

        reference = replay(read_event_file(path), [bench_plan, REPO / "plans" / "rich.yaml"])
        got = {
            (t["rep_id"], t["period"], t["currency"]): Decimal(t["amount"])
            for t in result["totals"]
        }
        same = got == reference.totals()
        print(f"check against an in-process replay: {'same totals' if same else 'DIFFERENT'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
