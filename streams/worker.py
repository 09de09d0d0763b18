"""``comstream worker``: one worker process of a deployment.

Start order: topics exist, ClickHouse schema exists (and its rollup agrees with the
ledger), dimension topics are loaded whole, then the delta sink thread and the Faust
agents start. SIGTERM or Ctrl-C stops it cleanly; SIGKILL loses nothing (the design is
at-least-once with idempotent stages and an exactly-once sink).
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

import faust

from sinks.audit import AuditStore
from sinks.clickhouse import Store

from .app import WorkerState, build_app
from .audit_sink import AuditSink
from .dimensions import DimensionFollower, Dimensions
from .fact_sink import FactSink
from .kafka import ensure_topics
from .restart import mark_clean_stop, take_clean_stop
from .settings import Settings
from .sink import DeltaSink
from .users import UserFollower
from .web import register_views

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0  # a stop waits this long for the agents (the demo kills after 20 s)


class DrainingWorker(faust.Worker):
    """Faust's worker, which on SIGTERM or SIGINT first lets the agents finish what they
    hold (:attr:`WorkerState.drain`), so that a stop under load is clean and the next start
    keeps the local tables (:mod:`.restart`)."""

    def __init__(self, app: faust.App, ws: WorkerState, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.ws = ws

    async def _stop_on_signal(self, signal: Any) -> None:  # mode.Worker's signal stop
        if self.ws.drain is not None:
            try:
                drained = await self.ws.drain(DRAIN_TIMEOUT_S)
            except Exception:  # e.g. a signal before the consumer started: stop regardless
                log.exception("could not drain the agents; stopping anyway")
            else:
                if not drained:
                    log.warning("agents busy after %.0f s; stopping anyway", DRAIN_TIMEOUT_S)
        await super()._stop_on_signal(signal)


def discard_local_tables(settings: Settings) -> None:
    """Remove the local copies (RocksDB) of the state tables, so that Faust rebuilds them
    from their changelogs (at every start but one after a clean stop, :mod:`.restart`).
    A process that died can leave its local store *ahead* of the changelog (a table write
    made locally whose changelog record was still in the producer); the message is read
    again, applying it again changes nothing, so nothing is written and the changelog
    never gets that state; once the partition is rebuilt from the changelog (on another
    worker) the state is lost. A 100k chaos run lost one payment that way
    (docs/exactly-once.md). Rebuilt from the changelog, the store is never ahead.
    """
    shutil.rmtree(settings.data_dir / "worker" / "v1" / "tables", ignore_errors=True)


def run_worker(settings: Settings, loglevel: str = "WARNING") -> None:
    """Run until stopped by a signal."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    kept = take_clean_stop(settings)
    if not kept:
        discard_local_tables(settings)
    ensure_topics(settings)
    store: Store | None = None
    fact_sink: FactSink | None = None
    if settings.sink:
        store = Store(settings.clickhouse_dsn)
        store.ensure_schema()
        AuditStore(store).ensure_schema()
        fact_sink = FactSink(settings, store)
        fact_sink.start()
    dims = Dimensions()
    follower = DimensionFollower(settings, dims)
    follower.load()
    follower.start()
    ws = WorkerState(settings, store, dims, tables_kept=kept)
    log.warning("local tables %s", "kept (clean stop)" if kept else "rebuilt from changelogs")
    users = UserFollower(settings, ws.users)
    users.load()
    users.start()
    app = build_app(ws)
    register_views(app, ws)
    if store is not None:
        ws.sink = DeltaSink(settings, store, on_insert=ws.ledger_signal.notify)
        ws.sink.start()
        ws.audit_sink = AuditSink(settings, AuditStore(store))
        ws.audit_sink.start()
    worker = DrainingWorker(app, ws, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner, when kept (log level WARNING or above), sets the root
    # logger to DEBUG so that it can spin on every record: each message sent then formats
    # a debug record for nothing (bench/RESULTS.md). The worker runs without a terminal.
    worker.spinner = None
    clean = False
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        # mode ends a run that stopped without an error with status 0; Faust has
        # stopped its producer by then, so every changelog record has been answered
        clean = exc.code in (None, 0)
        raise
    finally:
        if ws.sink is not None:
            ws.sink.stop()
            ws.sink.join(30)
        if ws.audit_sink is not None:
            ws.audit_sink.stop()
            ws.audit_sink.join(30)
        users.stop()
        users.join(10)
        follower.stop()
        follower.join(10)
        if fact_sink is not None:
            fact_sink.stop()
            fact_sink.join(30)
        if store is not None:
            store.close()
        if clean and mark_clean_stop(settings, ws.changelog):
            log.warning("clean stop, changelog records %s: tables kept", ws.changelog)
