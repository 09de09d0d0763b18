"""``comstream replay`` and ``comstream simulate``: the engine over an event file.

Replay is the batch reference that the streaming path is compared with: the same
``processors`` stages, composed in one process, in file order, no Kafka. Plan files given
with ``--plan`` are published first, in the order given.

Bad input never stops a replay: an event the engine refuses, or a line whose figures
are finer than their field carries (``invalid.amount_precision``), is a dead letter, and
every other event still counts. ``comstream replay`` prints the dead letters with the
totals and then exits with :data:`EXIT_DEAD_LETTERS`. A line that is not an event at all
(not JSON, unknown type, missing field...) still stops it: a reference run must not skip
input it cannot name.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from processors.engine import Engine
from processors.events import CommissionDelta, DeadLetter, Event
from processors.facts import Fact, state_facts
from schemas.container import read_events
from schemas.errors import EventFormatError
from schemas.jsonl import format_event, parse_event

from .batchgc import PausedGC
from .demo import plan_event
from .errors import ComstreamError

PRECISION = "invalid.amount_precision"


EXIT_DEAD_LETTERS = 3
"""``comstream replay``'s exit status when some events were dead-lettered: the totals
printed are those of every other event (0: none was; 1: an error, no totals)."""

Input = Event | DeadLetter
"""What an event file yields: an event, or the dead letter of a line refused alone."""


class EventFileError(ComstreamError):
    """An event file that cannot be read; names the file and line."""


def read_event_file(path: Path) -> Iterator[Input]:
    """Events of a JSON-lines file (any name but ``*.avro``) or an Avro container file.
    A line whose figures are finer than their field carries gives the
    ``invalid.amount_precision`` dead letter of that event (named by file and line) in
    its place; any other malformed line stops the replay with its line number
    (:class:`EventFileError`): a reference run must not silently skip input."""
    if path.suffix == ".avro":
        yield from read_events(path)
        return
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield parse_event(line)
            except EventFormatError as exc:
                if exc.reason != PRECISION:
                    raise EventFileError(f"{path}:{number}: {exc}") from exc
                yield DeadLetter(
                    exc.reason, f"{path}:{number}: {exc.detail}", exc.event_id, exc.event_type
                )


@dataclass
class ReplayResult:
    engine: Engine = field(default_factory=Engine)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events: int = 0

    @property
    def deltas(self) -> Sequence[CommissionDelta]:
        """Every delta, in emission order (the engine's own list)."""
        return self.engine.deltas

    def totals(self) -> dict[tuple[str, str, str], Decimal]:
        """(rep, booked period, currency) -> sum of delta amounts."""
        return self.engine.totals()

    def rep_totals(self) -> dict[tuple[str, str], Decimal]:
        """(rep, currency) -> total over all periods."""
        out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for (rep, _, currency), amount in self.totals().items():
            out[(rep, currency)] += amount
        return dict(out)


BATCH = 10_000
"""Events per :meth:`Engine.process_batch` call in a replay (the cyclic collector is
paused for the whole run: :class:`comstream.batchgc.PausedGC`)."""


def replay(events: Iterable[Input], plan_files: Sequence[Path] = ()) -> ReplayResult:
    """Run the engine over plan files and then events; a :class:`DeadLetter` among the
    events (a line refused by :func:`read_event_file`) counts as an event and is kept
    with the engine's own dead letters, in order.

    The engine runs the events in batches of :data:`BATCH`
    (:meth:`processors.engine.Engine.process_batch`: the same outputs as one call per
    event)."""
    result = ReplayResult()
    engine = result.engine
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    plans: list[Event] = [plan_event(p, epoch) for p in plan_files]
    dead = result.dead_letters

    def run(batch: list[Event]) -> None:
        dead.extend(o for o in engine.process_batch(batch) if type(o) is DeadLetter)

    with PausedGC():
        batch: list[Event] = []
        for event in itertools.chain(plans, events):
            result.events += 1
            if type(event) is DeadLetter:
                run(batch)  # the events before it first: dead letters stay in file order
                batch = []
                dead.append(event)
                continue
            batch.append(event)  # type: ignore[arg-type]
            if len(batch) >= BATCH:
                run(batch)
                batch = []
        run(batch)
    return result


def replay_facts(result: ReplayResult) -> list[Fact]:
    """The BI facts (:mod:`processors.facts`) of the replay's final stage states: the
    same rows the streaming path converges to."""
    engine = result.engine
    return state_facts(
        engine.order_states().values(),
        engine.customer_states().values(),
        engine.reps.values(),
    )


def _totals_table(result: ReplayResult) -> Table:
    table = Table(title="commission by rep and period")
    for col, justify in (
        ("rep", "left"),
        ("period", "left"),
        ("currency", "left"),
        ("commission", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for (rep, period, cur), amount in sorted(result.totals().items()):
        table.add_row(rep, period, cur, f"{amount:,.2f}")
    return table


def replay_command(args: argparse.Namespace) -> int:
    result = replay(read_event_file(Path(args.events)), [Path(p) for p in args.plan])
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            for d in result.deltas:
                fh.write(format_event(d) + "\n")
    if args.clickhouse:
        from sinks.clickhouse import Store

        store = Store(args.clickhouse)
        store.ensure_schema()
        n = store.insert_deltas(result.deltas, source=f"replay:{Path(args.events).name}")
        facts = replay_facts(result)
        store.insert_facts(facts)
        store.close()
        print(f"inserted {n} deltas and {len(facts)} facts into {args.clickhouse}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "events": result.events,
                    "deltas": len(result.deltas),
                    "dead_letters": [
                        {
                            "reason": d.reason,
                            "detail": d.detail,
                            "event_id": d.event_id,
                            "event_type": d.event_type,
                        }
                        for d in result.dead_letters
                    ],
                    "totals": [
                        {"rep_id": r, "period": p, "currency": c, "amount": str(a)}
                        for (r, p, c), a in sorted(result.totals().items())
                    ],
                },
                indent=2,
            )
        )
    else:
        console = Console()
        console.print(_totals_table(result))
        console.print(
            f"{result.events} events, {len(result.deltas)} deltas, "
            f"{len(result.dead_letters)} dead letters"
        )
        for letter in result.dead_letters:
            console.print(
                f"dead letter: {letter.event_id or '-'}: {letter.reason}: {letter.detail}",
                markup=False,
                highlight=False,
            )
    return EXIT_DEAD_LETTERS if result.dead_letters else 0


_SHARED_EVENTS: list[Input] = []
"""The events of a what-if, read once and inherited by the forked replays."""


def _rep_totals_under(plan: Path) -> dict[tuple[str, str], Decimal]:
    return replay(_SHARED_EVENTS, [plan]).rep_totals()


def what_if(
    events: list[Input], plans: Sequence[Path], jobs: int = 2
) -> list[dict[tuple[str, str], Decimal]]:
    """Each rep's total over ``events`` under each plan (one replay per plan).

    With ``jobs`` > 1 (and ``fork`` available) the replays run in parallel, one process
    per plan that inherits the events already read, so a what-if takes about the time of
    one replay on a machine with a core per plan (each process holds its own engine
    state: memory adds up). The totals are the same either way."""
    if jobs > 1 and len(plans) > 1 and "fork" in multiprocessing.get_all_start_methods():
        global _SHARED_EVENTS
        _SHARED_EVENTS = events
        try:
            with multiprocessing.get_context("fork").Pool(min(jobs, len(plans))) as pool:
                return pool.map(_rep_totals_under, plans, chunksize=1)
        finally:
            _SHARED_EVENTS = []
    return [replay(events, [plan]).rep_totals() for plan in plans]


def simulate_command(args: argparse.Namespace) -> int:
    if len(args.plan) != 2:
        print("simulate needs exactly two --plan files: current, then proposed", file=sys.stderr)
        return 2
    events = list(read_event_file(Path(args.events)))
    current, proposed = what_if(events, [Path(p) for p in args.plan], args.jobs)
    keys = sorted(set(current) | set(proposed))
    rows = [(k, current.get(k, Decimal(0)), proposed.get(k, Decimal(0))) for k in keys]
    rows.sort(key=lambda r: (-abs(r[2] - r[1]), r[0]))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "rep_id": k[0],
                        "currency": k[1],
                        "current": str(a),
                        "proposed": str(b),
                        "change": str(b - a),
                    }
                    for k, a, b in rows
                ],
                indent=2,
            )
        )
        return 0
    table = Table(title=f"what-if: {args.plan[0]} -> {args.plan[1]}")
    for col in ("rep", "currency", "current", "proposed", "change"):
        table.add_column(col, justify="left" if col in ("rep", "currency") else "right")
    for (rep, cur), a, b in rows:
        change = b - a
        style = "green" if change > 0 else "red" if change < 0 else ""
        table.add_row(
            rep, cur, f"{a:,.2f}", f"{b:,.2f}", f"[{style}]{change:+,.2f}[/]" if style else "0.00"
        )
    Console().print(table)
    return 0
