"""Keeping the local tables across a clean stop.

A worker that was killed may have written a table's local RocksDB copy without its
changelog record reaching the broker (docs/exactly-once.md, "A local store ahead of its
changelog"); its local tables are then removed at the next start and rebuilt from the
changelogs, which costs minutes with a large state (bench/RESULTS.md). A worker that
stopped cleanly (SIGTERM or Ctrl-C: a deployment, a configuration change) is different
when every changelog record it sent was acknowledged by the broker: each local write then
has its record in the changelog, the store is never ahead, and Faust's recovery reads
only the changelog records past the offsets the store keeps.

So the worker counts every changelog record its tables send and every acknowledgement
(:class:`ChangelogTally`, through :func:`counted_table`); after a clean stop, with the
producer stopped and every record acknowledged, it writes a marker into its data
directory (:func:`mark_clean_stop`), with each changelog topic's id and end offsets. The
next start takes the marker away before anything else (:func:`take_clean_stop`) and keeps
the local tables only if it was there, names the same deployment, and the changelogs are
the same topics, none shorter than at the stop (a Kafka cluster reset or a topic deleted
and created again under the same name would otherwise leave the tables holding states the
new changelogs do not have). A run that ends any other way (a kill, a crash, the worker ending
itself to read a message again, a record not acknowledged) leaves no marker, and the next
start rebuilds.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
from confluent_kafka import Consumer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from .settings import Settings

Marks = dict[str, dict[str, Any]]  # changelog topic -> {"id": topic id, "ends": [offset]}

log = logging.getLogger(__name__)

MARKER = "clean-stop.json"


class ChangelogTally:
    """Changelog records sent by the tables and how each ended."""

    def __init__(self) -> None:
        self.issued = 0
        self.acknowledged = 0
        self.failed = 0

    def track(self, fut: Any) -> None:
        """Count a sent record; ``fut`` completes when the broker has acknowledged it."""
        self.issued += 1
        fut.add_done_callback(self._done)

    def _done(self, fut: Any) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.failed += 1
        else:
            self.acknowledged += 1

    @property
    def settled(self) -> bool:
        """Every record sent so far was acknowledged."""
        return self.failed == 0 and self.acknowledged == self.issued

    def __str__(self) -> str:
        return f"{self.issued} sent, {self.acknowledged} acknowledged, {self.failed} failed"


def counted_table(tally: ChangelogTally) -> type[faust.Table[Any, Any]]:
    """A Faust table class whose changelog records are counted in ``tally``."""

    class CountedTable(faust.Table[Any, Any]):
        def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
            fut = super().send_changelog(*args, **kwargs)
            tally.track(fut)
            return fut

    return CountedTable


def _marker(settings: Settings) -> Path:
    return settings.data_dir / "worker" / MARKER


def _identity(settings: Settings) -> dict[str, Any]:
    return {"app_id": settings.app_id, "partitions": settings.partitions}


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def changelog_marks(settings: Settings, timeout: float = 10.0) -> Marks:
    """The deployment's changelog topics (Faust names them ``<app id>-<table>-changelog``):
    each one's topic id and the end offset of each partition."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    prefix = f"{settings.app_id}-"
    names = sorted(
        t
        for t in admin.list_topics(timeout=timeout).topics
        if t.startswith(prefix) and t.endswith("-changelog")
    )
    if not names:
        return {}
    described = admin.describe_topics(TopicCollection(names), request_timeout=timeout)
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap, "group.id": f"{settings.app_id}-restart"}
    )
    try:
        marks: Marks = {}
        for name, fut in described.items():
            desc = fut.result(timeout)
            ends = [
                consumer.get_watermark_offsets(TopicPartition(name, p.id), timeout=timeout)[1]
                for p in sorted(desc.partitions, key=lambda p: p.id)
            ]
            marks[name] = {"id": str(desc.topic_id), "ends": ends}
        return marks
    finally:
        consumer.close()


def same_changelogs(at_stop: Marks, now: Marks) -> bool:
    """Every changelog of the stop is still the same topic, with as many partitions, and
    none ends before it did (other workers of the deployment may have added records)."""
    for name, mark in at_stop.items():
        current = now.get(name)
        if current is None or current["id"] != mark["id"]:
            return False
        if len(current["ends"]) != len(mark["ends"]):
            return False
        if any(n < m for n, m in zip(current["ends"], mark["ends"], strict=True)):
            return False
    return True


def take_clean_stop(
    settings: Settings, marks: Callable[[Settings], Marks] = changelog_marks
) -> bool:
    """Remove the marker of the previous run; True when it was there, names this
    deployment and the changelogs are those of the stop (``marks`` reads them now), i.e.
    the local tables may be kept. The removal reaches the disk before anything else
    happens, so this run leaves a marker only if it ends cleanly too."""
    path = _marker(settings)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    path.unlink()
    _sync_dir(path.parent)
    try:
        found = json.loads(text)
    except ValueError:
        log.warning("unreadable %s: the local tables are rebuilt", path)
        return False
    if not isinstance(found, dict) or found.get("identity") != _identity(settings):
        return False
    try:
        now = marks(settings)
    except Exception as exc:  # the broker cannot say: rebuild, which is always safe
        log.warning("cannot read the changelogs' ends (%s): the local tables are rebuilt", exc)
        return False
    at_stop = found.get("changelogs")
    if not isinstance(at_stop, dict) or not same_changelogs(at_stop, now):
        log.warning("the changelogs changed since the clean stop: the local tables are rebuilt")
        return False
    return True


def mark_clean_stop(
    settings: Settings,
    tally: ChangelogTally,
    marks: Callable[[Settings], Marks] = changelog_marks,
) -> bool:
    """After a clean stop: write the marker if every changelog record was acknowledged,
    with the changelogs' ids and ends (``marks``), to a temporary file, synced, then
    renamed. False when it was not written."""
    if not tally.settled:
        log.warning("changelog records not all acknowledged (%s): no clean-stop mark", tally)
        return False
    try:
        at_stop = marks(settings)
    except Exception as exc:
        log.warning("cannot read the changelogs' ends (%s): no clean-stop mark", exc)
        return False
    path = _marker(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    record = {"identity": _identity(settings), "changelog": str(tally), "changelogs": at_stop}
    with tmp.open("w") as fh:
        json.dump(record, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    _sync_dir(path.parent)
    return True
