"""Starting real worker processes for integration tests."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from comstream.demo import start_worker, stop_process, wait_healthy
from comstream.leaderboard import WorkerUnavailable, get_json
from comstream.supervise import RESTART_MARK
from streams.kafka import ensure_topics
from streams.settings import Settings, Topics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningWorker:
    settings: Settings
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> Any:
        return get_json(self.settings.web_url, path, timeout=10)

    def totals(self) -> dict[tuple[str, str, str], Decimal]:
        rows = self.get("/api/totals")["totals"]
        return {(r["rep_id"], r["period"], r["currency"]): Decimal(r["amount"]) for r in rows}

    def stop(self) -> None:
        stop_process(self.proc)

    def restarts(self) -> int:
        """How often the worker ended itself to read a message again (and was started
        again by its supervisor) so far, from its log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text.count(RESTART_MARK)

    def log_tail(self, n: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


def deployment(bootstrap: str, root: Path, partitions: int = 3) -> Settings:
    """Settings for an isolated deployment: its own topics, group ids and data."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap=bootstrap,
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
        data_dir=root,
        app_id=f"cs-{tag}",
        partitions=partitions,
        web_port=free_port(),
        sink_linger_ms=100,
        stall_after_s=20,
        topics=Topics(prefix=f"t{tag}."),
    )
    ensure_topics(settings)
    return settings


def launch(settings: Settings) -> RunningWorker:
    log = settings.data_dir / "worker.log"
    proc = start_worker(settings, log)
    worker = RunningWorker(settings, proc, log)
    try:
        wait_healthy(settings.web_url, proc, timeout=120)
    except WorkerUnavailable as exc:
        worker.stop()
        raise AssertionError(f"worker did not start: {exc}\n{worker.log_tail()}") from exc
    return worker


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds. A worker that does not answer (the supervisor is
    starting it again after it ended itself to re-read a message) counts as "not yet"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except WorkerUnavailable:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def behind(settings: Settings, topics: Iterable[str]) -> list[str]:
    """Partitions of ``topics`` whose committed offset (the deployment's consumer group)
    is behind the end of the partition: messages the workers have not finished."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": settings.app_id})
    try:
        meta = consumer.list_topics(timeout=30)
        out = []
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
            for tp in consumer.committed(tps, timeout=30):
                _, high = consumer.get_watermark_offsets(tp, timeout=30)
                if max(tp.offset, 0) < high:
                    out.append(f"{topic}[{tp.partition}] committed {tp.offset} of {high}")
        return out
    finally:
        consumer.close()


def stages_done(settings: Settings) -> bool:
    """Whichever workers ran, the stages have finished every message published so far to
    the upstream and stage topics."""
    t = settings.topics
    return not behind(settings, (*t.upstream, t.customer_stage, t.order_stage, t.rep_stage))
