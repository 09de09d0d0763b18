"""Time from a worker restart to caught up with the state of 1M orders.

    python -m bench.restart_bench --orders 1000000 --distinct 100000

Running a million orders through one worker would take hours at today's throughput, so
the state is built the way the worker builds it and loaded where the worker keeps it:

1. ``--distinct`` orders (with their payments, refunds, cancellations and CRM changes)
   go through the pure engine (``comstream replay``); each order's stage state is
   serialized exactly as the order-stage agent stores it (``processors.serde``);
2. a fresh deployment is started once (so Faust creates its topics and changelogs) and
   stopped; the order states are written to the ``orders`` table's changelog topic, each
   under its order id on the partition Faust would use (the order-stage topic's murmur2
   partition), copied ``orders / distinct`` times under new order ids (the id is
   replaced inside the state too) to reach ``--orders`` states;
3. **cold restart**: a worker starts with an empty data directory (a new machine, or a
   lost disk) and must restore every state from the changelog: timed from process start
   to its health check answering ready (Faust opens the web server only after table
   recovery);
4. **restart after a clean stop**: that worker is stopped with SIGTERM and started again
   on the same data directory: it keeps its local tables (``streams/restart.py``) and
   Faust reads only the changelog past the offsets they hold;
5. **restart after a kill**: SIGKILL and start again: the local tables are rebuilt from
   the changelogs, as at every start that does not follow a clean stop;
6. a payment for one of the copied orders is published and its delta must reach the
   ledger: the restored state is the one the worker uses.

Prints the timings, the changelog size and the worker's resident memory after each
restart.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from comstream.broker import LocalBroker
from comstream.demo import start_worker, stop_process, wait_healthy
from comstream.leaderboard import WorkerUnavailable
from comstream.publish import publish_events
from comstream.replay import replay
from processors import serde, stages
from processors.events import OrderPlaced, PaymentReceived
from streams.settings import REPO_ROOT, Settings
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import RunningWorker, deployment, free_port, wait_until


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (the supervisor and the worker it
    runs in a session of its own)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("PPid:"):
                    parent[int(entry.name)] = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss[int(entry.name)] = int(line.split()[1])
        except OSError:
            continue

    def descends(p: int) -> bool:
        while p > 1:
            if p == pid:
                return True
            p = parent.get(p, 0)
        return False

    return sum(kb for p, kb in rss.items() if descends(p)) / 1024


def status_of(worker: RunningWorker, timeout: float = 600) -> dict[str, Any]:
    """``/api/status``, asked again while the worker answers too slowly: one that has just
    restored a large state can be busy for a while (ClickHouse shares one connection)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status: dict[str, Any] = worker.get("/api/status")
            return status
        except WorkerUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def timed_start(settings: Settings, log: Path, timeout: float) -> tuple[RunningWorker, float]:
    t0 = time.monotonic()
    proc = start_worker(settings, log)
    wait_healthy(settings.web_url, proc, timeout=timeout)
    return RunningWorker(settings, proc, log), time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    copies = -(-args.orders // args.distinct)
    root = REPO_ROOT / "var" / "bench-restart"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)

    t0 = time.monotonic()
    events = generated(orders=args.distinct, seed=23)
    result = replay(events)
    order_ids = [e.order_id for e in events if isinstance(e, OrderPlaced)]
    blobs = {oid: serde.dumps(result.engine.order_state(oid)) for oid in order_ids}
    print(
        f"engine: {len(events)} events, {len(blobs)} order states "
        f"({sum(map(len, blobs.values())) / len(blobs):,.0f} bytes each on average) "
        f"in {time.monotonic() - t0:.0f} s",
        flush=True,
    )

    broker: LocalBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "")
    if not bootstrap:
        broker = LocalBroker(free_port(), free_port(), root / "kafka")
        bootstrap = broker.start()
    worker: RunningWorker | None = None
    try:
        first = deployment(bootstrap, root / "first", partitions=args.partitions)
        n_dims = n_dimension_events(events)
        publish_events(events[:n_dims], bootstrap, first.topics)
        worker, _ = timed_start(first, root / "first.log", 300)  # creates the changelogs
        worker.stop()

        changelog = f"{first.app_id}-orders-changelog"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        found = admin.list_topics(timeout=30).topics.get(changelog)
        if found is None or len(found.partitions) != args.partitions:
            names = sorted(t for t in admin.list_topics(timeout=30).topics if "changelog" in t)
            raise SystemExit(f"no {changelog} with {args.partitions} partitions: {names}")
        failed: list[str] = []

        def delivered(err: object, msg: object) -> None:
            if err is not None:
                failed.append(str(err))

        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 50,
                "batch.size": 1_000_000,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 200_000,
            }
        )
        t0 = time.monotonic()
        written = nbytes = 0
        last_key: dict[str, str] = {}
        for copy in range(copies):
            for oid, blob in blobs.items():
                if written >= args.orders:
                    break
                key = oid if copy == 0 else f"{oid}~{copy}"
                value = blob if copy == 0 else blob.replace(oid.encode(), key.encode())
                partition = stages.partition_of(key, args.partitions)
                while True:
                    try:
                        producer.produce(
                            changelog,
                            key=key.encode(),
                            value=value,
                            partition=partition,
                            on_delivery=delivered,
                        )
                        break
                    except BufferError:
                        producer.poll(0.1)
                producer.poll(0)
                written += 1
                nbytes += len(value)
                last_key[oid] = key
        producer.flush(300)
        if failed:
            raise SystemExit(f"{len(failed)} changelog writes failed, e.g. {failed[0]}")
        print(
            f"changelog: {written:,} states, {nbytes / 2**20:,.0f} MiB, written in "
            f"{time.monotonic() - t0:.0f} s",
            flush=True,
        )

        cold = replace(first, data_dir=root / "cold", web_port=free_port())
        worker, cold_s = timed_start(cold, root / "cold.log", args.timeout)
        cold_rss = rss_mib(worker.proc.pid)
        print(f"cold restart (empty data dir): ready in {cold_s:.1f} s, RSS {cold_rss:,.0f} MiB")

        def restart(how: str) -> RunningWorker:
            started, took = timed_start(cold, root / f"{how.replace(' ', '-')}.log", args.timeout)
            try:
                tables = status_of(started)["local_tables"]
            except BaseException:  # not left running when the bench ends here
                stop_process(started.proc)
                raise
            print(
                f"restart after {how} (tables {tables}): ready in {took:.1f} s, "
                f"RSS {rss_mib(started.proc.pid):,.0f} MiB",
                flush=True,
            )
            return started

        worker.stop()  # SIGTERM: a clean stop, the local tables are kept
        worker = restart("a clean stop")
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        worker = restart("SIGKILL")

        # the restored state is the one the worker computes with: pay the last copy of an
        # accepted, open, partly paid order whose rep has a plan; only that state knows it
        oid = next(
            o
            for o in order_ids
            if (st := result.engine.order_state(o)) is not None
            and st.accepted is not None
            and not st.cancelled
            and st.paid < st.total
            and any(ledger.plan_id for ledger in st.ledgers)
        )
        target = last_key[oid]
        state = result.engine.order_state(oid)
        assert state is not None
        at = datetime(2026, 11, 20, tzinfo=UTC)
        due = state.total - state.paid
        pay = PaymentReceived(f"bench-pay-{target}", at, target, f"bench-{target}", due, at)
        publish_events([pay], bootstrap, cold.topics)

        wait_until(
            lambda: int(status_of(worker)["deltas_out"]) > 0,
            600,
            "a delta for the payment of a restored order",
        )
        print(f"payment of {due} for restored order {target} produced its deltas: ok")
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.partitions} "
            f"partitions; cold restart {timedelta(seconds=round(cold_s))}"
        )
    finally:
        if worker is not None:
            stop_process(worker.proc)
        if broker is not None:
            broker.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
