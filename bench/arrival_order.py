"""Does the read order change the totals? The generated flow through the in-memory engine
twice: in file order (what ``comstream replay`` does) and in the order a worker reads it,
each (topic, partition) in its own order but the partitions interleaved, a random 1 to
``--batch`` messages from each in turn (as fetches return them). Prints how many
rep-period totals differ.

    python -m bench.arrival_order [--plan plans/simple.yaml] [--orders 3000] [--batch 50]

With ``--crm-first`` the CRM changes of the flow are moved before it (what the tests did
before the customer's facts counted by business time), so that only the interleaving of
orders, payments and cancellations is left. Exit status 1 when any total differs.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from comstream.demo import plan_event
from comstream.generator import DemoStream, simulated_clock
from processors.engine import Engine
from processors.events import CustomerChanged, Event
from processors.stages import partition_of
from streams.routing import event_key, event_topic
from streams.settings import Topics

START_AT = "2026-11-02T08:00:00+00:00"


def totals(events: list[Event]) -> dict[tuple[str, str, str], Decimal]:
    engine = Engine()
    for e in events:
        engine.process(e)
    return {k: v for k, v in engine.totals().items() if v}


def interleaved(flow: list[Event], partitions: int, batch: int, rng: random.Random) -> list[Event]:
    """``flow`` as a worker may read it: per (topic, partition) in order, partitions
    taken in turn, a random 1 to ``batch`` messages each time."""
    topics = Topics()
    queues: dict[tuple[str, int], list[Event]] = {}
    for e in flow:
        queues.setdefault(
            (event_topic(e, topics), partition_of(event_key(e), partitions)), []
        ).append(e)
    out: list[Event] = []
    live = list(queues.values())
    while any(live):
        for q in live:
            n = rng.randint(1, batch)
            out += q[:n]
            del q[:n]
    return out


def main() -> int:
    from datetime import datetime

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plan", type=Path, default=Path("plans/simple.yaml"))
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--crm-first", action="store_true")
    args = ap.parse_args()
    start = datetime.fromisoformat(START_AT)
    stream = DemoStream(seed=args.seed, reps=12, customers=80)
    dims = stream.dimensions(start)
    flow = list(stream.events(simulated_clock(start, timedelta(minutes=3)), orders=args.orders))
    head: list[Event] = [plan_event(args.plan, start - timedelta(days=1)), *dims]
    if args.crm_first:
        head += [e for e in flow if isinstance(e, CustomerChanged)]
        flow = [e for e in flow if not isinstance(e, CustomerChanged)]
    crm = sum(isinstance(e, CustomerChanged) for e in flow)
    in_file = totals(head + flow)
    read = totals(head + interleaved(flow, args.partitions, args.batch, random.Random(args.seed)))
    differ = {k for k in in_file.keys() | read.keys() if in_file.get(k) != read.get(k)}
    gap = sum(
        (abs(in_file.get(k, Decimal(0)) - read.get(k, Decimal(0))) for k in differ), Decimal(0)
    )
    print(
        f"{args.plan}: {len(head) + len(flow)} events ({crm} CRM changes in the flow), "
        f"batch {args.batch}: {len(differ)} of {len(in_file.keys() | read.keys())} "
        f"rep-period totals differ (sum of differences {gap})"
    )
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
