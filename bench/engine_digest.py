"""A guard for engine optimisations: SHA-256 digests of everything the engine produces.

    python -m bench.engine_digest            # prints one line per run, then "all"

Runs :class:`processors.engine.Engine` over a few deterministic streams (the bench's mix
under the bench plan and ``plans/rich.yaml``; other seeds under ``plans/simple.yaml`` and
``plans/rich.yaml``, with later plan versions published mid-stream so adjustments run) and
prints, per run, a digest of every output in order (``serde.dumps`` of each delta and dead
letter: ids, kinds, reps, amounts, cumulative, periods, traces) and a digest of
``serde.dumps`` of every final state (customer, order and rep states, sorted by key).
A change that must not change results keeps the output digests identical; the state
digests change only when a state's representation changes on purpose.

String hashing is fixed (``PYTHONHASHSEED=0``, re-executing if needed), and PMaps are
hashed in key order (their serialized order is their bucket layout's).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _plan_doc(name: str) -> dict[str, Any]:
    import yaml

    doc: dict[str, Any] = yaml.safe_load((REPO / "plans" / name).read_text(encoding="utf-8"))
    return doc


def _bumped(doc: dict[str, Any], factor: str) -> dict[str, Any]:
    """Version + 1 of a plan, every flat rule rate multiplied by ``factor``."""
    new = copy.deepcopy(doc)
    new["version"] = int(doc["version"]) + 1
    for rule in new.get("rules", []):
        if "rate" in rule:
            rule["rate"] = str((Decimal(str(rule["rate"])) * Decimal(factor)).normalize())
    return new


def _stream(
    seed: int, events: int, plans: list[dict[str, Any]] | None, later: list[Any]
) -> list[Any]:
    from bench.engine_bench import START, Mix, plan_event

    mix = Mix(seed=seed)
    dims = mix.dimensions()
    if plans is not None:
        from processors.events import PlanPublished

        at = START - timedelta(days=3)
        dims = [plan_event(p, at) for p in plans] + [
            e for e in dims if not isinstance(e, PlanPublished)
        ]
    flow = list(mix.events(events))
    out: list[Any] = list(dims)
    step = max(1, len(flow) // (len(later) + 1))
    for i, event in enumerate(flow):
        out.append(event)
        k = i // step
        if i % step == step - 1 and k < len(later):
            out.append(plan_event(later[k], event.occurred_at))
    return out


def runs(quick: bool = False) -> Iterator[tuple[str, list[Any]]]:
    n = 5 if quick else 1
    rich = _plan_doc("rich.yaml")
    simple = _plan_doc("simple.yaml")
    from bench.engine_bench import BENCH_PLAN

    yield "bench-seed7", _stream(7, 60_000 // n, None, [])
    yield (
        "simple+rich-seed11",
        _stream(11, 25_000 // n, [simple, rich], [_bumped(simple, "1.2"), _bumped(rich, "0.9")]),
    )
    yield "rich-seed3", _stream(3, 25_000 // n, [rich], [_bumped(rich, "1.1")])
    yield "bench+rich-seed5", _stream(5, 25_000 // n, None, [_bumped(BENCH_PLAN, "1.5")])


def digest(events: list[Any]) -> tuple[str, str, int]:
    from processors import serde
    from processors.engine import Engine

    engine = Engine()
    out_hash = hashlib.sha256()
    count = 0
    for event in events:
        for o in engine.process(event):
            out_hash.update(serde.dumps(o))
            out_hash.update(b"\n")
            count += 1
    st_hash = hashlib.sha256()
    from processors.pmap import PMap

    layout_iter = PMap.__iter__
    PMap.__iter__ = lambda self: iter(sorted(layout_iter(self)))  # type: ignore[method-assign, type-var]
    try:
        _hash_states(engine, st_hash)
    finally:
        PMap.__iter__ = layout_iter  # type: ignore[method-assign]
    totals = sorted((k, str(v)) for k, v in engine.totals().items())
    out_hash.update(json.dumps(totals).encode())
    return out_hash.hexdigest(), st_hash.hexdigest(), count


def _hash_states(engine: Any, st_hash: Any) -> None:
    """``serde.dumps`` of every final state, by stage and key; PMaps (whose serialized
    order is their bucket layout's) are iterated in key order, so the digest is that of
    the states' values, not of PMap's internal layout."""
    from processors import serde

    for name, table in (
        ("customer", engine.customer_states()),
        ("order", engine.order_states()),
        ("rep", {k: engine.rep_state(k) for k in engine._rep_states}),
    ):
        for key in sorted(table):
            st_hash.update(f"{name}:{key}:".encode())
            st_hash.update(serde.dumps(table[key]))
            st_hash.update(b"\n")


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, "-m", "bench.engine_digest", *sys.argv[1:]], env)
    parser = argparse.ArgumentParser(prog="python -m bench.engine_digest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fifth of the events")
    args = parser.parse_args(argv)
    whole_out = hashlib.sha256()
    whole_state = hashlib.sha256()
    for name, events in runs(args.quick):
        out, state, count = digest(events)
        whole_out.update(out.encode())
        whole_state.update(state.encode())
        print(
            f"{name}: {len(events):,} events, {count:,} outputs  out {out[:16]}  state {state[:16]}"
        )
    print(f"all: out {whole_out.hexdigest()}  state {whole_state.hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
