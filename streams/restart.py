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
directory (:func:`mark_clean_stop`). The next start takes the marker away before anything
else (:func:`take_clean_stop`) and keeps the local tables only if it was there and names
the same deployment. A run that ends any other way (a kill, a crash, the worker ending
itself to read a message again, a record not acknowledged) leaves no marker, and the next
start rebuilds.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import faust

from .settings import Settings

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


def take_clean_stop(settings: Settings) -> bool:
    """Remove the marker of the previous run; True when it was there and names this
    deployment, i.e. the local tables may be kept. The removal reaches the disk before
    anything else happens, so this run leaves a marker only if it ends cleanly too."""
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
    return isinstance(found, dict) and found.get("identity") == _identity(settings)


def mark_clean_stop(settings: Settings, tally: ChangelogTally) -> bool:
    """After a clean stop: write the marker if every changelog record was acknowledged
    (written to a temporary file, synced, then renamed). False when it was not written."""
    if not tally.settled:
        log.warning("changelog records not all acknowledged (%s): no clean-stop mark", tally)
        return False
    path = _marker(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        json.dump({"identity": _identity(settings), "changelog": str(tally)}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    _sync_dir(path.parent)
    return True
