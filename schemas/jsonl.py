"""The JSON-lines form of the events: for files, for humans, for ``comstream publish``.

One object per line; ``"type"`` names the event (``"OrderPlaced"``...); the other keys
are the Avro schema's fields. Money and every other decimal is a string (``"12.50"``; a
plain JSON number is read exactly too, never through float); instants are ISO 8601 with an
offset (``"2026-11-26T09:30:00+08:00"``), kept to the millisecond as on the wire; dates are
``YYYY-MM-DD``. ``placed_at_offset_minutes`` is not written: it is the offset of
``placed_at``.

Contract: :func:`parse_event` returns the event or raises :class:`EventFormatError` with a
machine-readable reason and the field at fault; :func:`format_event` is its inverse. A
decimal with more places than its field's Avro scale (12 for line figures, 28 for shares,
4 for payments and refunds) is refused with ``invalid.amount_precision``, the reason the
engine gives such an event (SEMANTICS.md section 2, "Precision"), with the line's
``event_id`` and type, so that a reader can dead-letter that event alone. A line longer
than :data:`MAX_LINE` characters, or nested deeper than JSON can be read, is refused with
``format.json``; no input makes the parser hang or fail with anything else.

Speed: a line in the canonical shape :func:`format_event` writes is parsed by code
compiled once per event type (:mod:`schemas.jsonl_fast`), every other line (other key
order, escapes, JSON numbers, omitted optional fields, and every malformed line) by the
generic path below, which alone decides every error; both give equal events. Formatting
is compiled the same way, byte for byte what the generic path writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from processors.events import EVENT_TYPES, CommissionDelta, Event

from .codec import _OFFSET_SUFFIX, from_record, schema_json, to_record, type_name
from .errors import CodecError, EventFormatError
from .jsonl_fast import compile_formatters, compile_parsers

_MISSING = object()
_WIDE = Context(prec=200)  # a decimal's places are checked exactly, however long it is
MAX_LINE = 1 << 20
"""The longest line read, in characters (bytes for a ``bytes`` line): 1 MiB, Kafka's
default largest message; a plan definition, the longest field, is far shorter."""
_SHOWN = 80  # characters of an offending value quoted in an error

_FAST_PARSE = compile_parsers()
_FAST_FORMAT = compile_formatters()
_TYPE_AT = len('{"type":"')


def parse_event(line: str | bytes) -> Event:
    """Parse one JSON line into an event, checking it against the event's Avro schema."""
    if len(line) > MAX_LINE:
        raise EventFormatError(
            "format.json", f"line of {len(line)} characters; at most {MAX_LINE} are read"
        )
    if isinstance(line, str) and line.startswith('{"type":"'):
        fast = _FAST_PARSE.get(line[_TYPE_AT : line.find('"', _TYPE_AT)])
        if fast is not None:
            try:
                event = fast(line)
            except Exception:  # not the canonical shape after all: the generic path says
                event = None
            if event is not None:
                return event  # type: ignore[no-any-return]
    return _parse_generic(line)


def _parse_generic(line: str | bytes) -> Event:
    try:
        obj = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, _NonFinite) as exc:
        raise EventFormatError("format.json", f"not valid JSON: {exc}") from exc
    except RecursionError:
        raise EventFormatError("format.json", "not valid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise EventFormatError("format.json", "a line must be a JSON object")
    return event_from_dict(obj)


def _shown(value: Any, quoted: bool = True) -> str:
    """``value`` as an error quotes it (its repr, or its str), cut short if long."""
    text = repr(value) if quoted else str(value)
    if len(text) <= _SHOWN:
        return text
    return f"{text[: _SHOWN - 20]}...{text[-12:]} ({len(text)} characters)"


def event_from_dict(obj: dict[str, Any]) -> Event:
    """An event from its JSON object (with ``"type"``); see :func:`parse_event`."""
    name = obj.get("type")
    if not isinstance(name, str) or name not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventFormatError("format.unknown_type", f"type {_shown(name)} is not one of {known}")
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
            "format.unknown_field", f"{path or 'event'}: unknown field {_shown(extra[0])}"
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
            raise EventFormatError(
                "format.bad_value", f"{path}: {_shown(raw, False)} is out of range"
            )
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
        raise EventFormatError(
            "format.bad_value", f"{path}: {_shown(raw)} is not a decimal"
        ) from None
    if not value.is_finite():
        raise EventFormatError("format.bad_value", f"{path}: {_shown(raw)} is not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > scale:
        try:
            exact = value.quantize(Decimal(1).scaleb(-scale), context=_WIDE)
        except InvalidOperation:  # more than _WIDE's 200 digits at the scale
            exact = None
        if exact != value and (exact is not None or _finer_than(value, scale)):
            raise EventFormatError(
                "invalid.amount_precision",
                f"{path}: {_shown(raw, False)} has more than {scale} decimal places",
            )
        if exact is None:  # only zeros beyond the scale, and hundreds of digits before
            raise EventFormatError("format.bad_value", f"{path}: {_shown(raw, False)} is too large")
        value = exact  # only zeros beyond the scale
    if value.adjusted() + 1 + scale > precision:
        raise EventFormatError("format.bad_value", f"{path}: {_shown(raw, False)} is too large")
    return value


def _finer_than(value: Decimal, scale: int) -> bool:
    """Whether a finite ``value`` has a non-zero digit beyond ``scale`` places."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    beyond = -exponent - scale
    return beyond > 0 and any(digits[-beyond:])


def _timestamp(raw: Any, path: str) -> datetime:
    if not isinstance(raw, str):
        raise EventFormatError("format.bad_value", f"{path}: expected an ISO 8601 time string")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise EventFormatError(
            "format.bad_value", f"{path}: {_shown(raw)} is not ISO 8601"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise EventFormatError("format.bad_value", f"{path}: {_shown(raw)} has no UTC offset")
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _date(raw: Any, path: str) -> date:
    if not isinstance(raw, str):
        raise EventFormatError("format.bad_value", f"{path}: expected a YYYY-MM-DD string")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise EventFormatError("format.bad_value", f"{path}: {_shown(raw)} is not a date") from None


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
    fast = _FAST_FORMAT.get(value.__class__)
    if fast is not None:
        try:
            return fast(value)
        except Exception:  # a field of an unexpected type: the generic path says
            pass
    return json.dumps(to_json_obj(value), ensure_ascii=False, separators=(",", ":"))
