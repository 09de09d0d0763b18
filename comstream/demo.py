"""``comstream demo``: a local broker, the worker, a generated stream, a live leaderboard.

Everything it starts it stops again on Ctrl-C (or after ``--seconds``): the event
generator, the worker process and the broker. Its data lives under ``var/demo`` and is
wiped at start, so every run begins from an empty broker and an empty ClickHouse.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live

from processors.events import Event, PlanPublished
from streams.kafka import ensure_topics
from streams.settings import REPO_ROOT, Settings

from .broker import LocalBroker
from .generator import DemoStream, wall_clock
from .leaderboard import WorkerUnavailable, get_json, render
from .planfiles import load_plan_file, plan_to_definition
from .publish import publish_events


def plan_event(path: Path, at: datetime) -> PlanPublished:
    """A PlanPublished event for a plan file (validated on load)."""
    doc = load_plan_file(path)
    return PlanPublished(
        event_id=f"plan-{doc['plan_id']}-{doc['version']}",
        occurred_at=at,
        plan_id=str(doc["plan_id"]),
        version=int(doc["version"]),
        effective_from=datetime.fromisoformat(str(doc["effective_from"])).date(),
        definition=plan_to_definition(doc),
    )


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``comstream worker`` as a child process in its own process group."""
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP=settings.bootstrap,
        COMSTREAM_DATA_DIR=str(settings.data_dir),
        COMSTREAM_CLICKHOUSE_DSN=settings.clickhouse_dsn,
        COMSTREAM_WEB_PORT=str(settings.web_port),
        COMSTREAM_PARTITIONS=str(settings.partitions),
        COMSTREAM_TOPIC_PREFIX=settings.topics.prefix,
        COMSTREAM_APP_ID=settings.app_id,
        COMSTREAM_SINK="true" if settings.sink else "false",
        COMSTREAM_SESSION_TIMEOUT=str(settings.session_timeout_s),
        COMSTREAM_STALL_AFTER_S=str(settings.stall_after_s),
        COMSTREAM_PRODUCER_LINGER_MS=str(settings.producer_linger_ms),
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "comstream.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Wait until the worker answers ``/api/health`` with ``ready``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WorkerUnavailable(f"worker exited with status {proc.returncode}")
        try:
            if get_json(url, "/api/health", timeout=2).get("ready"):
                return
        except WorkerUnavailable:
            pass
        time.sleep(0.5)
    raise WorkerUnavailable(f"worker not ready after {timeout:.0f}s")


def _feed(settings: Settings, stop: threading.Event, rate: float, seed: int) -> None:
    stream = DemoStream(seed=seed)
    now = datetime.now(UTC)
    publish_events(stream.dimensions(now), settings.bootstrap, settings.topics)
    batch: list[Event] = []
    tick = 0.25
    for event in stream.events(wall_clock):
        batch.append(event)
        if len(batch) >= max(1, int(rate * tick)):
            publish_events(batch, settings.bootstrap, settings.topics)
            batch = []
            if stop.wait(tick):
                return


def demo_users(settings: Settings) -> list[tuple[str, str]]:
    """Create the demo's users (admin, a manager of team-east, finance, rep-001) and
    return (role, sign-in link) for each; the terminal leaderboard uses the admin's
    token (``COMSTREAM_TOKEN``). docs/payouts.md."""
    from streams.users import new_user, publish_user

    logins = []
    for name, role, rep_id, team in (
        ("Demo Admin", "admin", None, None),
        ("Demo Manager", "manager", None, "team-east"),
        ("Demo Finance", "finance", None, None),
        ("Demo Rep", "rep", "rep-001", "team-east"),
    ):
        user, token = new_user(name, role, rep_id, team)
        publish_user(settings, user)
        if role == "admin":
            os.environ["COMSTREAM_TOKEN"] = token
        logins.append((role, f"{settings.web_url}/#token={token}"))
    return logins


def run_demo(settings: Settings, seconds: float | None, rate: float, plan: Path) -> int:
    """Run the demo until Ctrl-C or ``seconds``; returns the exit status."""
    console = Console()
    root = REPO_ROOT / "var" / "demo"
    shutil.rmtree(root, ignore_errors=True)
    settings = replace(settings, data_dir=root, clickhouse_dsn=f"chdb://{root / 'clickhouse'}")
    broker: LocalBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    feeder: threading.Thread | None = None
    try:
        if not os.environ.get("KAFKA_BOOTSTRAP"):
            console.print(
                "[bold]starting the local Kafka broker[/] (first run fetches it with Maven)"
            )
            broker = LocalBroker(data_dir=root / "kafka")
            settings = replace(settings, bootstrap=broker.start())
        console.print(f"Kafka at {settings.bootstrap}; creating topics")
        ensure_topics(settings)
        publish_events([plan_event(plan, datetime.now(UTC))], settings.bootstrap, settings.topics)
        logins = demo_users(settings)
        console.print(f"starting the worker (log: {root / 'worker.log'})")
        worker = start_worker(settings, root / "worker.log")
        wait_healthy(settings.web_url, worker)
        console.print(
            f"[bold]web leaderboard: {settings.web_url}/[/]  (API: {settings.web_url}/api)"
        )
        for role, url in logins:
            console.print(
                f"  sign in as {role}: {url}", markup=False, highlight=False, soft_wrap=True
            )
        feeder = threading.Thread(
            target=_feed, args=(settings, stop, rate, int(time.time())), daemon=True
        )
        feeder.start()
        deadline = None if seconds is None else time.monotonic() + seconds
        with Live(console=console, refresh_per_second=2) as live:
            while deadline is None or time.monotonic() < deadline:
                if worker.poll() is not None:
                    console.print(f"[red]worker exited ({worker.returncode}); see its log[/]")
                    return 1
                try:
                    board = get_json(settings.web_url, "/api/leaderboard?limit=15")
                    status = get_json(settings.web_url, "/api/status")
                    live.update(render(board, status))
                except WorkerUnavailable as exc:
                    live.update(f"waiting for the worker: {exc}")
                time.sleep(1.0)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        if feeder is not None:
            feeder.join(10)
        if worker is not None:
            stop_process(worker)
        if broker is not None:
            broker.stop()
        console.print("\nstopped: generator, worker and broker")
