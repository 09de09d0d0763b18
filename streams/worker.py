"""``comstream worker``: one worker process of a deployment.

Start order: topics exist, ClickHouse schema exists (and its rollup agrees with the
ledger), dimension topics are loaded whole, then the delta sink thread and the Faust
agents start. SIGTERM or Ctrl-C stops it cleanly; SIGKILL loses nothing (the design is
at-least-once with idempotent stages and an exactly-once sink).
"""

from __future__ import annotations

import logging
import shutil

import faust

from sinks.audit import AuditStore
from sinks.clickhouse import Store

from .app import WorkerState, build_app
from .audit_sink import AuditSink
from .dimensions import DimensionFollower, Dimensions
from .fact_sink import FactSink
from .kafka import ensure_topics
from .settings import Settings
from .sink import DeltaSink
from .users import UserFollower
from .web import register_views

log = logging.getLogger(__name__)


def discard_local_tables(settings: Settings) -> None:
    """Remove the local copies (RocksDB) of the state tables, so that Faust rebuilds them
    from their changelogs. A process that died can leave its local store *ahead* of the
    changelog (a table write made locally whose changelog record was still in the
    producer); the message is read again, applying it again changes nothing, so nothing is
    written and the changelog never gets that state; once the partition is rebuilt from
    the changelog (on another worker) the state is lost. A 100k chaos run lost one payment
    that way (docs/exactly-once.md). Rebuilt from the changelog, the store is never ahead.
    """
    shutil.rmtree(settings.data_dir / "worker" / "v1" / "tables", ignore_errors=True)


def run_worker(settings: Settings, loglevel: str = "WARNING") -> None:
    """Run until stopped by a signal."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
    ws = WorkerState(settings, store, dims)
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
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner, when kept (log level WARNING or above), sets the root
    # logger to DEBUG so that it can spin on every record: each message sent then formats
    # a debug record for nothing (bench/RESULTS.md). The worker runs without a terminal.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
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
