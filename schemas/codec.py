"""Avro codec between Kafka bytes and ``processors`` types.

Wire format: the Confluent framing, ``0x00`` + a 4-byte big-endian schema id + the Avro
binary body, so standard Kafka tooling can read the topics. Without a schema registry the
ids are the fixed ones in :data:`SCHEMA_IDS`; with one, register each schema under these
ids (or map them) — the body is the same.

Contract: :func:`encode` accepts any event, :class:`CommissionDelta` or
:class:`DeadLetterRecord` and returns bytes; :func:`decode` returns the same value (times
to the millisecond, decimals numerically equal) or raises :class:`CodecError` naming the
problem. Schemas are parsed once, at import.

A schema that changes gets a new id, as a schema registry would give it; the earlier
versions stay readable under their ids (:data:`LEGACY_SCHEMAS`, files in
``schemas/legacy/``), so messages already on the topics, and the original bytes kept in
dead letters, decode as they were written. Encoding always uses the current schema.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any, TypeAlias

import fastavro

from processors.events import (
    EVENT_TYPES,
    CommissionDelta,
    Credit,
    DeltaKind,
    Event,
    LineTrace,
    OrderLine,
)

from .errors import CodecError


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """What ``commission.dlq`` holds: the original message and why it was refused."""

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    event_id: str | None
    event_type: str | None
    dead_at: datetime


Encodable: TypeAlias = Event | CommissionDelta | DeadLetterRecord

SCHEMA_IDS: dict[str, int] = {
    "RepChanged": 1,
    "CustomerChanged": 2,
    "OrderPlaced": 11,
    "OrderCancelled": 4,
    "PaymentReceived": 5,
    "RefundIssued": 6,
    "PlanPublished": 7,
    "PeriodClosed": 8,
    "CommissionDelta": 12,
    "DeadLetter": 10,
}
"""The id each record is written with (its current schema)."""
LEGACY_SCHEMAS: dict[int, str] = {
    3: "OrderPlaced",  # shares to 10 places, line figures to 4-6
    9: "CommissionDelta",  # the share to 12 places
}
"""Ids of earlier schema versions, still read: id -> record name (schema file
``schemas/legacy/{name}-{id}.avsc``)."""
_NAME_BY_ID = {**{v: k for k, v in SCHEMA_IDS.items()}, **LEGACY_SCHEMAS}
_TYPES: dict[str, type[Any]] = {
    **EVENT_TYPES,
    "CommissionDelta": CommissionDelta,
    "DeadLetter": DeadLetterRecord,
}
# Nested record types, by (record, field).
_NESTED: dict[tuple[str, str], type[Any]] = {
    ("OrderPlaced", "lines"): OrderLine,
    ("OrderPlaced", "credits"): Credit,
    ("CommissionDelta", "lines"): LineTrace,
}
_OFFSET_SUFFIX = "_offset_minutes"
_MAGIC = 0
_HEADER = struct.Struct(">bI")


def schema_json(name: str) -> dict[str, Any]:
    """The Avro schema of a record name (``"OrderPlaced"``, ``"CommissionDelta"``...)."""
    return _raw_schemas()[name]


@cache
def _raw_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in SCHEMA_IDS:
        text = resources.files("schemas").joinpath(f"{name}.avsc").read_text(encoding="utf-8")
        out[name] = json.loads(text)
    return out


@cache
def _parsed(name: str) -> Any:
    return fastavro.parse_schema(_raw_schemas()[name])


@cache
def _parsed_id(schema_id: int) -> Any:
    """The parsed schema of an id, current or legacy."""
    name = LEGACY_SCHEMAS.get(schema_id)
    if name is None:
        return _parsed(_NAME_BY_ID[schema_id])
    path = resources.files("schemas").joinpath("legacy", f"{name}-{schema_id}.avsc")
    return fastavro.parse_schema(json.loads(path.read_text(encoding="utf-8")))


def type_name(value: Encodable) -> str:
    """The schema name of a value."""
    return "DeadLetter" if isinstance(value, DeadLetterRecord) else type(value).__name__


def _decimal_scales(schema: dict[str, Any]) -> dict[str, int]:
    scales: dict[str, int] = {}
    for field in schema["fields"]:
        ftype = field["type"]
        if isinstance(ftype, dict) and ftype.get("logicalType") == "decimal":
            scales[field["name"]] = int(ftype["scale"])
    return scales


@cache
def _scales(name: str) -> dict[str, int]:
    return _decimal_scales(_raw_schemas()[name])


@cache
def _line_trace_scales() -> dict[str, int]:
    delta = _raw_schemas()["CommissionDelta"]
    lines = next(f for f in delta["fields"] if f["name"] == "lines")
    return _decimal_scales(lines["type"]["items"])


_WIDE = Context(prec=64, rounding=ROUND_HALF_EVEN)  # 38 digits fit, whatever the thread's


def _quantize(value: Decimal, scale: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-scale), context=_WIDE)


def to_record(value: Encodable) -> dict[str, Any]:
    """A dict in the Avro schema's shape. Delta trace values are rounded to the schema's
    scale; event decimals are passed unchanged (a finer scale is refused on encoding)."""
    name = type_name(value)
    rec: dict[str, Any] = _plain(value)
    if name == "CommissionDelta":
        for field, scale in _scales(name).items():
            rec[field] = _quantize(rec[field], scale)
        lscales = _line_trace_scales()
        for line in rec["lines"]:
            for field, scale in lscales.items():
                line[field] = _quantize(line[field], scale)
    for field in _raw_schemas()[name]["fields"]:
        fname = field["name"]
        if fname.endswith(_OFFSET_SUFFIX):
            ts: datetime = rec[fname.removesuffix(_OFFSET_SUFFIX)]
            offset = ts.utcoffset()
            rec[fname] = int(offset.total_seconds() // 60) if offset is not None else 0
    return rec


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


def from_record(name: str, rec: dict[str, Any]) -> Any:
    """The ``processors`` value for a record dict of schema ``name`` (the inverse of
    :func:`to_record`). Raises :class:`CodecError` when the record does not fit."""
    cls = _TYPES[name]
    kwargs: dict[str, Any] = {}
    try:
        for f in fields(cls):
            raw = rec[f.name]
            nested = _NESTED.get((name, f.name))
            if nested is not None:
                raw = tuple(nested(**_tuples(item)) for item in raw)
            elif f.name == "kind" and name == "CommissionDelta":
                raw = DeltaKind(raw)
            elif f.name == "modifiers":
                raw = tuple(raw)
            kwargs[f.name] = raw
        for key, minutes in rec.items():
            if key.endswith(_OFFSET_SUFFIX):
                ts_field = key.removesuffix(_OFFSET_SUFFIX)
                tz = timezone(timedelta(minutes=minutes))
                kwargs[ts_field] = kwargs[ts_field].astimezone(tz)
        return cls(**kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"{name}: record does not fit: {exc}") from exc


def _tuples(item: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in item.items()}


def encode(value: Encodable) -> bytes:
    """Confluent-framed Avro bytes of ``value``. Raises CodecError if it does not fit its
    schema (a decimal finer than the schema's scale, a naive datetime, ...)."""
    name = type_name(value)
    buf = io.BytesIO()
    buf.write(_HEADER.pack(_MAGIC, SCHEMA_IDS[name]))
    try:
        fastavro.schemaless_writer(buf, _parsed(name), to_record(value))
    except (ValueError, TypeError, InvalidOperation, OverflowError, AttributeError) as exc:
        raise CodecError(f"{name}: cannot encode: {exc}") from exc
    return buf.getvalue()


def peek_type(data: bytes) -> str:
    """The schema name in the framing header, without decoding the body."""
    if len(data) < _HEADER.size:
        raise CodecError("message shorter than the 5-byte schema header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise CodecError(f"unknown magic byte {magic}; expected 0 (Confluent framing)")
    try:
        return _NAME_BY_ID[schema_id]
    except KeyError:
        raise CodecError(f"unknown schema id {schema_id}") from None


def decode(data: bytes) -> Any:
    """The value encoded in ``data``; raises CodecError for anything else (short or
    truncated input, unknown schema id, a body that does not fit)."""
    name = peek_type(data)
    buf = io.BytesIO(data)
    buf.seek(_HEADER.size)
    try:
        rec = fastavro.schemaless_reader(buf, _parsed_id(_HEADER.unpack_from(data)[1]), None)
    except Exception as exc:  # fastavro raises many types on corrupt bodies
        raise CodecError(f"{name}: corrupt Avro body: {type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(data):
        raise CodecError(f"{name}: {len(data) - buf.tell()} trailing bytes after the record")
    if not isinstance(rec, dict):
        raise CodecError(f"{name}: body is not a record")
    return from_record(name, rec)


def decode_event(data: bytes) -> Event:
    """Like :func:`decode`, but only an input event is accepted."""
    name = peek_type(data)
    if name not in EVENT_TYPES:
        raise CodecError(f"schema {name} is not an input event")
    value: Event = decode(data)
    return value


def decode_delta(data: bytes) -> CommissionDelta:
    value = decode(data)
    if not isinstance(value, CommissionDelta):
        raise CodecError(f"expected CommissionDelta, got {type_name(value)}")
    return value


def decode_dead_letter(data: bytes) -> DeadLetterRecord:
    value = decode(data)
    if not isinstance(value, DeadLetterRecord):
        raise CodecError(f"expected DeadLetter, got {type_name(value)}")
    return value
