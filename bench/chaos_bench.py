"""The long chaos run: exact to the cent after many SIGKILLs, a broker restart and the
death of one of two workers.

    python -m bench.chaos_bench [--events 100000] [--kills 11] [--stops 4] [--seed 5]

Starts its own broker under ``var/bench-chaos`` (or uses ``KAFKA_BOOTSTRAP``; then the
broker restart is skipped), creates a fresh deployment, and:

1. publishes the plan (``tests/integration/facts_plan.yaml``: rates by CRM tier and by
   the count of the customer's earlier orders) and the CRM, starts worker A (stages,
   sink, API);
2. publishes the order flow (CRM owner and tier changes among the orders), with the
   adversarial events of the fuzz test (``tests/integration/test_bad_input.planted``,
   ~1,050) mixed in at random positions,
   in ``--kills`` + ``--stops`` + 1 chunks; after each chunk but the last it waits a random
   0.5-8 s (somewhere mid-processing), then SIGKILLs worker A's process group or, at
   ``--stops`` of those moments drawn at random, stops it cleanly (SIGTERM: the next start
   keeps its local tables, ``streams/restart.py``), and starts it again; after the third
   kill it restarts the broker; for the last two chunks a second worker B
   (stages only, ``COMSTREAM_SINK=false``) shares the partitions, and B is SIGKILLed for
   good before the last chunk;
3. waits until the worker has caught up, then compares every (rep, period, currency)
   total in ClickHouse with ``comstream replay`` of the same valid events (exact, to the
   cent), checks that no delta id counts twice (ledger rows == distinct ids after the
   ledger's own de-duplication), and that the dead-letter topic holds exactly the planted
   events: one distinct source position per planted message, the same bytes, the same
   reasons (repeats written by a killed worker collapse by source position, as
   ``comstream dlq list`` shows them).

Prints the figures and exits non-zero when anything differs. ``bench/RESULTS.md`` has a
run's output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import replace

from comstream.broker import LocalBroker
from comstream.dlq import distinct, read_letters
from comstream.publish import publish_events
from comstream.replay import replay
from comstream.supervise import RESTART_MARK
from processors.events import Event
from schemas.codec import encode
from streams.kafka import flush, make_producer
from streams.routing import event_key, event_topic
from streams.settings import REPO_ROOT
from tests.integration.test_bad_input import planted
from tests.integration.test_pipeline import FACTS_PLAN, generated, n_dimension_events
from tests.integration.workers import (
    RunningWorker,
    behind,
    deployment,
    free_port,
    launch,
    wait_until,
)

EVENTS_PER_ORDER = 2.55  # generated(): placed, payments, refunds, cancellations, CRM


def kill(worker: RunningWorker) -> None:
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)


def produce(messages: list[tuple[str, bytes | None, bytes]], bootstrap: str) -> None:
    producer = make_producer(bootstrap)
    for topic, key, value in messages:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    flush(producer)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="valid events, at least")
    ap.add_argument("--kills", type=int, default=11, help="SIGKILLs of worker A (>= 4)")
    ap.add_argument("--stops", type=int, default=4, help="clean stops of worker A (SIGTERM)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=5400, help="seconds to catch up")
    args = ap.parse_args()
    if args.kills < 4:
        ap.error("--kills must be at least 4")
    rng = random.Random(args.seed)
    root = REPO_ROOT / "var" / "bench-chaos"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)

    events: list[Event] = generated(
        orders=int(args.events / EVENTS_PER_ORDER) + 1, seed=args.seed, plan=FACTS_PLAN
    )
    bad = planted(events, rng)
    t0 = time.monotonic()
    expected = replay(events).totals()
    replay_s = time.monotonic() - t0
    n_dims = n_dimension_events(events)
    print(
        f"{len(events)} valid events ({n_dims} plan/CRM), {len(bad)} planted bad ones; "
        f"replay {replay_s:.1f} s, {len(expected)} rep-period totals",
        flush=True,
    )

    broker: LocalBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "")
    if not bootstrap:
        broker = LocalBroker(free_port(), free_port(), root / "kafka")
        bootstrap = broker.start()
    settings = deployment(bootstrap, root / "a")
    helper = replace(settings, data_dir=root / "b", web_port=free_port(), sink=False)
    topics = settings.topics
    topic_of = {
        "orders": topics.orders,
        "payments": topics.payments,
        "customers": topics.customers,
        "reps": topics.reps,
        "plans": topics.plans,
    }
    stream: list[tuple[str, bytes | None, bytes]] = [
        (event_topic(e, topics), event_key(e), encode(e)) for e in events[n_dims:]
    ]
    for kind, value, _ in bad:
        stream.insert(rng.randrange(len(stream) + 1), (topic_of[kind], rng.randbytes(4), value))
    # the last chunk is not followed by a kill or a stop
    size = len(stream) // (args.kills + args.stops + 1) + 1
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    breaks = ["kill"] * args.kills + ["stop"] * args.stops
    rng.shuffle(breaks)

    started = time.monotonic()
    publish_events(events[:n_dims], bootstrap, topics)
    worker = launch(settings)
    second: RunningWorker | None = None
    kills = second_kills = stops = kept = 0
    ok = False
    try:
        wait_until(lambda: worker.get("/api/status")["events_in"] >= n_dims, 120, "CRM ingested")
        for i, chunk in enumerate(chunks):
            if i == len(chunks) - 2:
                second = launch(helper)
            if i == len(chunks) - 1 and second is not None:
                kill(second)
                second_kills += 1
            produce(chunk, bootstrap)
            if i == len(chunks) - 1:
                break  # the last chunk runs to the end undisturbed
            time.sleep(rng.uniform(0.5, 8.0))
            if breaks[i] == "stop":
                worker.stop()
                stops += 1
                worker = launch(settings)
                tables = worker.get("/api/status")["local_tables"]
                kept += tables == "kept"
                print(f"chunk {i + 1}/{len(chunks)} published; stop {stops}: {tables}", flush=True)
                continue
            kill(worker)
            kills += 1
            print(f"chunk {i + 1}/{len(chunks)} published; kill {kills}", flush=True)
            if kills == 3 and broker is not None:
                broker.restart()
                print("broker restarted", flush=True)
            worker = launch(settings)

        def caught_up() -> bool:
            return worker.totals() == expected

        wait_until(caught_up, args.timeout, "totals == replay")
        elapsed = time.monotonic() - started
        # bad events published after the last valid one may still be on their way
        with contextlib.suppress(AssertionError):  # reported below, with what is missing
            wait_until(
                lambda: len(distinct(read_letters(settings))) >= len(bad), 300, "dead letters"
            )
        status = worker.get("/api/status")
        letters = distinct(read_letters(settings))
        raw_letters = sum(1 for _ in read_letters(settings))
        reasons_got = Counter(s.record.reason.split(":")[0] for s in letters)
        reasons_want = Counter(reason for _, _, reason in bad)
        values_ok = sorted(s.record.value for s in letters) == sorted(v for _, v, _ in bad)
        ids_once = status["ledger_rows"] == status["deltas_stored"]
        ok = ids_once and len(letters) == len(bad) and reasons_got == reasons_want and values_ok
        missing = Counter(v for _, v, _ in bad) - Counter(s.record.value for s in letters)
        for value in missing:
            print(f"MISSING dead letter: {[(k, r) for k, v, r in bad if v == value]}")
        for line in behind(settings, settings.topics.upstream):
            print(f"UNCOMMITTED: {line}")
        print(
            "\n".join(
                [
                    f"machine: {platform.machine()}, {os.cpu_count()} cores, "
                    f"Python {platform.python_version()}",
                    f"events: {len(events)} valid + {len(bad)} bad",
                    f"SIGKILLs: worker A {kills}, worker B {second_kills}; broker restarts: "
                    f"{1 if broker is not None else 0}",
                    f"clean stops of worker A: {stops}, local tables kept at the next start: "
                    f"{kept}",
                    f"publish start to totals == replay: {elapsed:.0f} s",
                    f"rep-period totals compared: {len(expected)}, all equal to the cent",
                    f"ledger rows {status['ledger_rows']}, distinct delta ids "
                    f"{status['deltas_stored']}: {'no id twice' if ids_once else 'DUPLICATES'}",
                    f"dead letters: {raw_letters} written, {len(letters)} distinct source "
                    f"messages, planted {len(bad)}; reasons equal: {reasons_got == reasons_want}; "
                    f"bytes equal: {values_ok}",
                    "RESULT: " + ("exact" if ok else "MISMATCH"),
                ]
            ),
            flush=True,
        )
    finally:
        if second is not None:
            second.stop()
        worker.stop()
        if broker is not None:
            broker.stop()
    restarts = sum(
        log.read_text(errors="replace").count(RESTART_MARK) for log in root.rglob("worker.log")
    )
    print(f"worker restarts to re-read a message (skips caught, all workers): {restarts}")
    if ok:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
