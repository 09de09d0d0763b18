"""The audit trail in ClickHouse: ``audit_log`` (append-only) and ``statement_history``.

``audit_log`` is a plain ``MergeTree``: rows are inserted, never updated, never merged
away. A record reaches it at least once (the audit topic is read at least once); the
sink drops ids the table already holds before each insert (it is the table's only
writer) and inserts each batch with an offset-range deduplication token, and every read
takes each ``audit_id`` once (``LIMIT 1 BY audit_id``), so a duplicate that slipped
through a crash never shows. A ``ReplacingMergeTree`` would also de-duplicate, but by
rewriting parts in the background: the table we show auditors should be one whose rows
the engine never replaces.

``statement_history`` is a view: the de-duplicated records of the lifecycle commands
(statements and period closes, applied or refused), in time order; requests refused
before they became commands (no token, wrong role) stay in ``audit_log`` only. A
statement's current state is its applied records folded by
:func:`processors.payouts.fold_records` (:meth:`AuditStore.statement_states`), the
state the command agent keeps; a statement without one is ``open`` while its period is
open and ``closed`` (version 1) once it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from processors.payouts import AuditRecord, Outcome, fold_records

from .clickhouse import Store

AUDIT_DDL: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS audit_log (
        audit_id String,
        command_id String,
        action LowCardinality(String),
        outcome LowCardinality(String),
        code LowCardinality(String),
        message String,
        rep_id String,
        period String,
        actor_id String,
        actor_role LowCardinality(String),
        at DateTime64(3, 'UTC'),
        state_before LowCardinality(String),
        state_after LowCardinality(String),
        version_before UInt32,
        version_after UInt32,
        reason String,
        reference String,
        amounts String,
        src_topic LowCardinality(String),
        src_partition UInt32,
        src_offset UInt64,
        inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    )
    ENGINE = MergeTree
    ORDER BY (period, rep_id, at, audit_id)
    SETTINGS non_replicated_deduplication_window = 10000
    """,
    """
    CREATE VIEW IF NOT EXISTS statement_history AS
    SELECT audit_id, command_id, action, outcome, code, message, rep_id, period, actor_id,
           actor_role, at, state_before, state_after, version_before, version_after,
           reason, reference, amounts
    FROM audit_log
    WHERE action IN ('close_period', 'review', 'return', 'approve', 'pay')
    ORDER BY period, rep_id, at, audit_id
    LIMIT 1 BY audit_id
    """,
)

AUDIT_COLUMNS: tuple[str, ...] = (
    "audit_id",
    "command_id",
    "action",
    "outcome",
    "code",
    "message",
    "rep_id",
    "period",
    "actor_id",
    "actor_role",
    "at",
    "state_before",
    "state_after",
    "version_before",
    "version_after",
    "reason",
    "reference",
    "amounts",
)
_READ = ", ".join(AUDIT_COLUMNS)


@dataclass(frozen=True, slots=True)
class SourcedRecord:
    """An audit record with the Kafka position it was read from."""

    topic: str
    partition: int
    offset: int
    record: AuditRecord


def amounts_json(amounts: Iterable[tuple[str, Decimal]]) -> str:
    return json.dumps({c: str(a) for c, a in amounts}, sort_keys=True)


def _row(item: SourcedRecord) -> list[Any]:
    r = item.record
    return [
        r.audit_id,
        r.command_id,
        r.action,
        r.outcome.value,
        r.code,
        r.message,
        r.rep_id,
        r.period,
        r.actor_id,
        r.actor_role,
        r.at.astimezone(UTC),
        r.state_before,
        r.state_after,
        r.version_before,
        r.version_after,
        r.reason,
        r.reference,
        amounts_json(r.amounts),
        item.topic,
        item.partition,
        item.offset,
    ]


def _as_dict(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(AUDIT_COLUMNS, row, strict=True))
    at = out["at"]
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    out["at"] = at.isoformat(timespec="milliseconds") if isinstance(at, datetime) else str(at)
    out["amounts"] = json.loads(out["amounts"] or "{}")
    out["version_before"] = int(out["version_before"])
    out["version_after"] = int(out["version_after"])
    return out


def _as_record(row: Sequence[Any]) -> AuditRecord:
    d = dict(zip(AUDIT_COLUMNS, row, strict=True))
    at = d["at"]
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    amounts = json.loads(d["amounts"] or "{}")
    return AuditRecord(
        audit_id=str(d["audit_id"]),
        command_id=str(d["command_id"]),
        action=str(d["action"]),
        outcome=Outcome(str(d["outcome"])),
        code=str(d["code"]),
        message=str(d["message"]),
        rep_id=str(d["rep_id"]),
        period=str(d["period"]),
        actor_id=str(d["actor_id"]),
        actor_role=str(d["actor_role"]),
        at=at,
        state_before=str(d["state_before"]),
        state_after=str(d["state_after"]),
        version_before=int(d["version_before"]),
        version_after=int(d["version_after"]),
        reason=str(d["reason"]),
        reference=str(d["reference"]),
        amounts=tuple(sorted((str(c), Decimal(str(a))) for c, a in amounts.items())),
    )


class AuditStore:
    """The audit queries and inserts on a :class:`~sinks.clickhouse.Store` (its lock,
    its engine)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def ensure_schema(self) -> None:
        for ddl in AUDIT_DDL:
            self.store.execute(ddl)

    def insert(self, batch: Sequence[SourcedRecord]) -> int:
        """Insert the records of one topic-partition offset range whose ids the table
        does not hold yet; returns how many. Raises SinkError if ClickHouse did not
        acknowledge (retrying the same batch inserts nothing twice)."""
        if not batch:
            return 0
        ids = sorted({b.record.audit_id for b in batch})
        held = {
            str(r[0])
            for r in self.store.query(
                "SELECT DISTINCT audit_id FROM audit_log WHERE audit_id IN {ids:Array(String)}",
                {"ids": ids},
            )
        }
        fresh: list[SourcedRecord] = []
        seen: set[str] = set(held)
        for item in batch:
            if item.record.audit_id not in seen:
                seen.add(item.record.audit_id)
                fresh.append(item)
        if not fresh:
            return 0
        first, last = batch[0], batch[-1]
        token = f"{first.topic}-{first.partition}-{first.offset}-{last.offset}"
        self.store.insert_rows(
            "audit_log",
            [_row(i) for i in fresh],
            [*AUDIT_COLUMNS, "src_topic", "src_partition", "src_offset"],
            {"insert_deduplication_token": token},
        )
        return len(fresh)

    def resume_offsets(self, topic: str) -> dict[int, int]:
        rows = self.store.query(
            "SELECT src_partition, max(src_offset) FROM audit_log "
            "WHERE src_topic = {t:String} GROUP BY src_partition",
            {"t": topic},
        )
        return {int(p): int(o) + 1 for p, o in rows}

    def records(
        self,
        rep_id: str | None = None,
        period: str | None = None,
        limit: int = 10_000,
        include_requests: bool = True,
    ) -> list[dict[str, Any]]:
        """Audit records (each id once) in time order, filtered by rep and period. A
        period filter includes the period's close (rep ``""``); with a rep filter too."""
        where = ["1"]
        params: dict[str, Any] = {"limit": limit}
        if period is not None:
            where.append("period = {p:String}")
            params["p"] = period
        if rep_id is not None:
            where.append("(rep_id = {r:String} OR (rep_id = '' AND action = 'close_period'))")
            params["r"] = rep_id
        if not include_requests:
            where.append("period != ''")
        rows = self.store.query(
            f"SELECT {_READ} FROM audit_log WHERE {' AND '.join(where)} "
            "ORDER BY at, audit_id LIMIT 1 BY audit_id LIMIT {limit:UInt32}",
            params,
        )
        return [_as_dict(r) for r in rows]

    def statement_history(self, rep_id: str, period: str) -> list[dict[str, Any]]:
        """The statement's records and its period's close, in time order."""
        rows = self.store.query(
            f"SELECT {_READ} FROM statement_history WHERE period = {{p:String}} "
            "AND (rep_id = {r:String} OR (rep_id = '' AND action = 'close_period')) "
            "ORDER BY at, audit_id",
            {"p": period, "r": rep_id},
        )
        return [_as_dict(r) for r in rows]

    def statement_states(self, period: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """(rep, period) -> the state folded from the applied records of every statement
        that has one (:func:`~processors.payouts.fold_records`): ``status``,
        ``version``, ``reviewed_by``, ``approved_by``, ``totals`` (approved), ``paid``,
        ``reference``, ``return_reason``, ``updated_at`` and, once paid, ``paid_at``."""
        where = "outcome = 'applied' AND rep_id != ''"
        params: dict[str, Any] = {}
        if period is not None:
            where += " AND period = {p:String}"
            params["p"] = period
        rows = self.store.query(
            f"SELECT {_READ} FROM statement_history WHERE {where} ORDER BY version_after",
            params,
        )
        grouped: dict[tuple[str, str], list[AuditRecord]] = {}
        for row in rows:
            record = _as_record(row)
            grouped.setdefault((record.rep_id, record.period), []).append(record)
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for (rep_id, per), records in grouped.items():
            state = fold_records(records, rep_id, per, period_closed=True)
            latest = max(r.at for r in records)
            view: dict[str, Any] = {
                "rep_id": rep_id,
                "period": per,
                "status": state.status.value,
                "version": state.version,
                "reviewed_by": state.reviewed_by,
                "approved_by": state.approved_by,
                "totals": {c: str(a) for c, a in state.totals},
                "paid": {c: str(a) for c, a in state.paid_amounts},
                "reference": state.payout_reference,
                "return_reason": state.return_reason,
                "updated_at": latest.isoformat(timespec="milliseconds"),
            }
            if state.paid_at is not None:
                view["paid_at"] = state.paid_at.isoformat(timespec="milliseconds")
            out[(rep_id, per)] = view
        return out

    def statement_reps(self, period: str) -> list[str]:
        """The reps that have deltas booked in ``period``."""
        rows = self.store.query(
            "SELECT DISTINCT rep_id FROM rep_period_totals WHERE booked_period = {p:String} "
            "ORDER BY rep_id",
            {"p": period},
        )
        return [str(r[0]) for r in rows]


def is_applied(record: dict[str, Any]) -> bool:
    return bool(record.get("outcome") == Outcome.APPLIED.value)
