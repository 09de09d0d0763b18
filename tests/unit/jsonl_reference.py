"""A frozen copy of ``schemas/jsonl.py`` as it was before its compiled fast paths
were added: the reference the fast parser and formatter are compared against
(tests/unit/test_jsonl_fast.py). Do not change it to follow schemas/jsonl.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from processors.events import EVENT_TYPES, CommissionDelta, Event
from schemas.codec import _OFFSET_SUFFIX, from_record, schema_json, to_record, type_name
from schemas.errors import CodecError, EventFormatError

_MISSING = object()
_WIDE = Context(prec=200)  # a decimal's places are checked exactly, however long it is


def parse_event(line: str | bytes) -> Event:
    """Parse one JSON line into an event, checking it against the event's Avro schema."""
    try:
        obj = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, _NonFinite) as exc:
        raise EventFormatError("format.json", f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EventFormatError("format.json", "a line must be a JSON object")
    return event_from_dict(obj)


def event_from_dict(obj: dict[str, Any]) -> Event:
    """An event from its JSON object (with ``"type"``); see :func:`parse_event`."""
    name = obj.get("type")
    if not isinstance(name, str) or name not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventFormatError("format.unknown_type", f"type {name!r} is not one of {known}")
    body = {k: v for k, v in obj.items() if k != "type"}
    try:
        rec = _convert_record(schema_json(name), body, path="")
    except EventFormatError as exc:
        event_id = obj.get("event_id")
        exc.event_id = event_id if isinstance(event_id, str) else None
        exc.event_type = name
        raise
    try:
        event: Event = from_record(name, rec)
    except CodecError as exc:
        raise EventFormatError("format.bad_value", str(exc)) from exc
    return event


class _NonFinite(ValueError):
    pass


def _reject_constant(text: str) -> Any:
    raise _NonFinite(f"{text} is not a number")


def _convert_record(schema: dict[str, Any], obj: Any, path: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise EventFormatError("format.bad_value", f"{path or 'event'}: expected an object")
    out: dict[str, Any] = {}
    known = set()
    for field in schema["fields"]:
        fname = field["name"]
        known.add(fname)
        if fname.endswith(_OFFSET_SUFFIX):
            continue  # derived from the timestamp's own offset
        fpath = f"{path}.{fname}" if path else fname
        raw = obj.get(fname, _MISSING)
        if raw is _MISSING:
            if "default" not in field:
                raise EventFormatError("format.missing_field", f"{fpath}: required field missing")
            out[fname] = _default(field)
            continue
        out[fname] = _convert(field["type"], raw, fpath)
    extra = sorted(set(obj) - known)
    if extra:
        raise EventFormatError(
            "format.unknown_field", f"{path or 'event'}: unknown field {extra[0]!r}"
        )
    return out


def _default(field: dict[str, Any]) -> Any:
    ftype = field["type"]
    if isinstance(ftype, dict) and ftype.get("logicalType") == "decimal":
        return Decimal(0)
    return field["default"]


def _convert(ftype: Any, raw: Any, path: str) -> Any:
    if isinstance(ftype, list):  # union: only ["null", T] is used
        if raw is None:
            return None
        return _convert(next(t for t in ftype if t != "null"), raw, path)
    if isinstance(ftype, dict):
        logical = ftype.get("logicalType")
        if logical == "decimal":
            return _decimal(raw, int(ftype["scale"]), int(ftype["precision"]), path)
        if logical == "timestamp-millis":
            return _timestamp(raw, path)
        if logical == "date":
            return _date(raw, path)
        if ftype.get("type") == "array":
            if not isinstance(raw, list):
                raise EventFormatError("format.bad_value", f"{path}: expected a list")
            return [_convert(ftype["items"], item, f"{path}[{i}]") for i, item in enumerate(raw)]
        if ftype.get("type") == "record":
            return _convert_record(ftype, raw, path)
        return _convert(ftype["type"], raw, path)
    if ftype == "string":
        if not isinstance(raw, str):
            raise EventFormatError("format.bad_value", f"{path}: expected a string")
        return raw
    if ftype in ("int", "long"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise EventFormatError("format.bad_value", f"{path}: expected an integer")
        if ftype == "int" and not -(2**31) <= raw < 2**31:
            raise EventFormatError("format.bad_value", f"{path}: {raw} is out of range")
        return raw
    if ftype == "boolean":
        if not isinstance(raw, bool):
            raise EventFormatError("format.bad_value", f"{path}: expected true or false")
        return raw
    raise EventFormatError("format.bad_value", f"{path}: unsupported schema type {ftype!r}")


def _decimal(raw: Any, scale: int, precision: int, path: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise EventFormatError("format.bad_value", f"{path}: expected a decimal string")
    try:
        value = Decimal(raw) if not isinstance(raw, Decimal) else raw
    except InvalidOperation:
        raise EventFormatError("format.bad_value", f"{path}: {raw!r} is not a decimal") from None
    if not value.is_finite():
        raise EventFormatError("format.bad_value", f"{path}: {raw!r} is not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > scale:
        exact = value.quantize(Decimal(1).scaleb(-scale), context=_WIDE)
        if exact != value:
            raise EventFormatError(
                "invalid.amount_precision", f"{path}: {raw} has more than {scale} decimal places"
            )
        value = exact  # only zeros beyond the scale
    if value.adjusted() + 1 + scale > precision:
        raise EventFormatError("format.bad_value", f"{path}: {raw} is too large")
    return value


def _timestamp(raw: Any, path: str) -> datetime:
    if not isinstance(raw, str):
        raise EventFormatError("format.bad_value", f"{path}: expected an ISO 8601 time string")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise EventFormatError("format.bad_value", f"{path}: {raw!r} is not ISO 8601") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise EventFormatError("format.bad_value", f"{path}: {raw!r} has no UTC offset")
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _date(raw: Any, path: str) -> date:
    if not isinstance(raw, str):
        raise EventFormatError("format.bad_value", f"{path}: expected a YYYY-MM-DD string")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise EventFormatError("format.bad_value", f"{path}: {raw!r} is not a date") from None


def to_json_obj(value: Event | CommissionDelta) -> dict[str, Any]:
    """The JSON object of an event (with ``"type"``) or a delta."""
    rec = to_record(value)
    out: dict[str, Any] = {"type": type_name(value)}
    for key, val in rec.items():
        if key.endswith(_OFFSET_SUFFIX):
            continue
        out[key] = _jsonable(val)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def jsonable(value: Any) -> Any:
    """``value`` ready for ``json.dumps``: Decimals as strings (exact), dates and
    datetimes in ISO 8601, mappings and sequences converted inside. For API answers
    and reports; events use their own wire format (:func:`format_event`)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def format_event(value: Event | CommissionDelta) -> str:
    """One JSON line (no newline) for an event or a delta."""
    return json.dumps(to_json_obj(value), ensure_ascii=False, separators=(",", ":"))
