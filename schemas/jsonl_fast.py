"""Compiled fast paths of :mod:`schemas.jsonl`, generated once per record from its Avro
schema: a parser per event type and a formatter per event, delta and nested record.

Why: the generic JSON-lines path (``json.loads`` into dicts, then a walk of the schema per
field) cost ~50 µs per event of the bench mix and the formatter ~30 µs, as much as the
engine itself (issue 15, item 4); compiled, ~10 µs and ~5 µs. The compiled forms do the
same work for the canonical shape of a line, the one :func:`schemas.jsonl.format_event`
writes (keys in the dataclass's order, no spaces, every field present, strings without
escapes, figures as plain decimal strings within their field's scale and precision), with
one regular expression per type and straight-line code per field.

Contract: a compiled parser returns ``None`` (or raises anything) for a line that is not of
that exact shape, and :mod:`schemas.jsonl` then takes the generic path, which gives every
result and every error as before; when it returns an event, that event is equal, field by
field and representation by representation (Decimal exponents, time zones), to what the
generic path gives. A compiled formatter returns the very string the generic path
writes, or raises (a field of an unexpected type), and the generic path answers instead.
A record the generator does not know how to compile simply has no fast path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) uses
from typing import Any

from processors.events import EVENT_TYPES, CommissionDelta, DeltaKind

from .codec import (
    _NESTED,
    _OFFSET_SUFFIX,
    _WIDE,
    _line_trace_scales,
    _scales,
    schema_json,
)

__all__ = ["Fallback", "compile_formatters", "compile_parsers"]

# A JSON string that decodes to itself: no quote, no backslash (no escapes), no control
# character (which strict JSON refuses). Anything else goes the generic way.
_RAW = r'[^"\\\x00-\x1f]*'
_WS = r"[ \t\n\r]*"  # JSON whitespace, allowed after the object (a line's newline)
_INT_DIGITS = 9  # "int" fields: at most 10 digits here, the range is checked in code
_LONG_DIGITS = 17  # "long" fields: at most 18 digits, always within a long


class Fallback(Exception):
    """A value the compiled code does not handle; the generic path answers instead."""


class _Unsupported(Exception):
    """A schema the generator does not compile."""


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # string int long boolean decimal timestamp date enum records strings
    optional: bool = False
    scale: int = 0
    precision: int = 0
    item: _Record | None = None


@dataclass(frozen=True)
class _Record:
    name: str
    cls: type[Any]
    fields: tuple[_Field, ...]


def _record(name: str, schema: dict[str, Any], cls: type[Any]) -> _Record:
    """The fields of ``cls`` (in its order, the order lines are written in), typed from
    the schema; derived ``*_offset_minutes`` fields are not in lines."""
    by_name = {f["name"]: f for f in schema["fields"] if not f["name"].endswith(_OFFSET_SUFFIX)}
    names = [f.name for f in fields(cls)]
    if not all(n.isidentifier() for n in [name, *names]):  # pasted into code as they are
        raise _Unsupported(f"{name}: a name that is not an identifier")
    if set(names) != set(by_name):
        raise _Unsupported(f"{name}: the dataclass and the schema differ")
    return _Record(name, cls, tuple(_field(name, by_name[n]["type"], n) for n in names))


def _field(record: str, ftype: Any, fname: str, optional: bool = False) -> _Field:
    if isinstance(ftype, list):
        rest = [t for t in ftype if t != "null"]
        if optional or len(ftype) != 2 or len(rest) != 1:
            raise _Unsupported(f"{record}.{fname}: union {ftype!r}")
        return _field(record, rest[0], fname, optional=True)
    if isinstance(ftype, dict):
        logical = ftype.get("logicalType")
        if logical == "decimal":
            scale, precision = int(ftype["scale"]), int(ftype["precision"])
            if precision - scale < 1:
                raise _Unsupported(f"{record}.{fname}: no integer digit")
            return _Field(fname, "decimal", optional, scale, precision)
        if logical == "timestamp-millis":
            return _Field(fname, "timestamp", optional)
        if logical == "date":
            return _Field(fname, "date", optional)
        if logical is not None:
            raise _Unsupported(f"{record}.{fname}: logical type {logical}")
        if ftype.get("type") == "enum":
            return _Field(fname, "enum", optional)
        if ftype.get("type") == "array" and not optional:
            items = ftype["items"]
            if items == "string":
                return _Field(fname, "strings")
            if isinstance(items, dict) and items.get("type") == "record":
                nested = _NESTED.get((record, fname))
                if nested is None:
                    raise _Unsupported(f"{record}.{fname}: no nested type")
                return _Field(fname, "records", item=_record(items["name"], items, nested))
        if isinstance(ftype.get("type"), str) and ftype["type"] in _PRIMITIVE:
            return _field(record, ftype["type"], fname, optional)
        raise _Unsupported(f"{record}.{fname}: {ftype!r}")
    if ftype in _PRIMITIVE:
        return _Field(fname, ftype, optional)
    raise _Unsupported(f"{record}.{fname}: {ftype!r}")


_PRIMITIVE = ("string", "int", "long", "boolean")


# --- parsers -------------------------------------------------------------------------


def _pattern(field: _Field, capture: bool) -> str:
    """The regular expression of a field's value as format_event writes it."""
    g = "(" if capture else "(?:"
    kind = field.kind
    if kind in ("string", "timestamp", "date"):
        body = f'"{g}{_RAW})"'
    elif kind == "decimal":
        whole = field.precision - field.scale
        body = f'"{g}-?[0-9]{{1,{whole}}}(?:\\.[0-9]{{1,{field.scale}}})?)"'
    elif kind in ("int", "long"):
        digits = _INT_DIGITS if kind == "int" else _LONG_DIGITS
        body = f"{g}-?(?:0|[1-9][0-9]{{0,{digits}}}))"
    elif kind == "boolean":
        body = f"{g}true|false)"
    elif kind == "records":
        assert field.item is not None
        item = _record_pattern(field.item, capture=False)
        body = f"\\[{g}(?:{item}(?:,{item})*)?)\\]"
    else:  # enum, strings: parsed by no event
        raise _Unsupported(f"{field.name}: {kind} is not parsed")
    if field.optional:
        if kind == "records":
            raise _Unsupported(f"{field.name}: optional array")
        body = f"(?:null|{body})"
    return f'"{re.escape(field.name)}":{body}'


def _record_pattern(record: _Record, capture: bool) -> str:
    return "\\{" + ",".join(_pattern(f, capture) for f in record.fields) + "\\}"


class _Source:
    """Python source being generated, with the constants it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "Decimal": Decimal,
            "Fallback": Fallback,
            "_fromiso": datetime.fromisoformat,
            "_date": date.fromisoformat,
            "_Q": '"',
        }

    def const(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.env)}"
        self.env[name] = value
        return name

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)

    def build(self, name: str) -> Callable[..., Any]:
        code = "\n".join(self.lines)
        exec(compile(code, f"<jsonl_fast {name}>", "exec"), self.env)
        fn: Callable[..., Any] = self.env[name]
        return fn


def _decimal_expr(var: str) -> str:
    # exact, whatever the context: the string is a plain decimal within the field's
    # scale and precision (its pattern), so the generic path keeps it as it is too
    return f"Decimal({var})"


def _nested_parser(src: _Source, record: _Record) -> str:
    """A function (name) turning the text of an array, already matched against the
    records' pattern, into a tuple of records.

    Every field of these records is a quoted string without quotes inside (a string or a
    decimal), so splitting the text at the quotes puts the values at 3, 7, 11...:
    ``{"k":"v","k2":"v2"},{...`` -> ``{ k : v , k2 : v2 },{ ...``; four pieces a field,
    the item boundary ``},{`` standing for the ``,`` between fields."""
    if any(f.optional or f.kind not in ("string", "decimal") for f in record.fields):
        raise _Unsupported(f"{record.name}: a nested field that is not a quoted string")
    cls = src.const("cls", record.cls)
    names = [f"_a{i}" for i in range(len(record.fields))]
    args = [
        _decimal_expr(n) if f.kind == "decimal" else n
        for n, f in zip(names, record.fields, strict=True)
    ]
    target = ", ".join(names) + ("," if len(names) == 1 else "")
    iters = ", ".join(["_it"] * len(names))
    fn = f"_items_{record.name}"
    src.emit(f"def {fn}(text):", 0)
    src.emit("_it = iter(text.split(_Q)[3::4])")
    src.emit(f"return tuple([{cls}({', '.join(args)}) for {target} in zip({iters})])")
    return fn


def _compile_parser(record: _Record) -> Callable[[str], Any]:
    src = _Source()
    nested = {
        f.name: _nested_parser(src, f.item)
        for f in record.fields
        if f.kind == "records" and f.item is not None
    }
    head = '\\{"type":' + f'"{re.escape(record.name)}"'
    body = "".join("," + _pattern(f, capture=True) for f in record.fields)
    fullmatch = src.const("match", re.compile(head + body + "\\}" + _WS).fullmatch)
    cls = src.const("cls", record.cls)
    fn = f"parse_{record.name}"
    src.emit(f"def {fn}(line):", 0)
    src.emit(f"m = {fullmatch}(line)")
    src.emit("if m is None:")
    src.emit("return None", 2)
    groups = [f"g{i}" for i in range(len(record.fields))]
    src.emit(f"{', '.join(groups)}{',' if len(groups) == 1 else ''} = m.groups()")
    values: list[str] = []
    stamps: list[str] = []  # the timestamp strings already converted
    for i, f in enumerate(record.fields):
        g, v = groups[i], f"v{i}"
        if f.kind == "string":  # the group is the string (or None for null) itself
            values.append(g)
            continue
        ind = 1
        if f.optional:
            src.emit(f"if {g} is None:")
            src.emit(f"{v} = None", 2)
            src.emit("else:")
            ind = 2
        if f.kind == "timestamp":
            if stamps and not f.optional:  # the same text twice (occurred_at, placed_at)
                src.emit(f"if {g} == {stamps[0]}:", ind)
                src.emit(f"{v} = v{groups.index(stamps[0])}", ind + 1)
                src.emit("else:", ind)
                ind += 1
            src.emit(f"{v} = _fromiso({g})", ind)
            # fromisoformat gives a datetime.timezone or no tzinfo at all
            src.emit(f"if {v}.tzinfo is None:", ind)
            src.emit("return None", ind + 1)
            src.emit(f"_u = {v}.microsecond", ind)
            src.emit("if _u % 1000:", ind)
            src.emit(f"{v} = {v}.replace(microsecond=_u - _u % 1000)", ind + 1)
            if not f.optional:
                stamps.append(g)
        elif f.kind == "date":
            src.emit(f"{v} = _date({g})", ind)
        elif f.kind == "decimal":
            src.emit(f"{v} = {_decimal_expr(g)}", ind)
        elif f.kind in ("int", "long"):
            src.emit(f"{v} = int({g})", ind)
            if f.kind == "int":
                src.emit(f"if not -2147483648 <= {v} <= 2147483647:", ind)
                src.emit("return None", ind + 1)
        elif f.kind == "boolean":
            src.emit(f'{v} = {g} == "true"', ind)
        elif f.kind == "records":
            src.emit(f"{v} = {nested[f.name]}({g})", ind)
        else:
            raise _Unsupported(f"{record.name}.{f.name}: {f.kind}")
        values.append(v)
    src.emit(f"return {cls}({', '.join(values)})")
    return src.build(fn)


def compile_parsers() -> dict[str, Callable[[str], Any]]:
    """Event type name -> compiled parser of its canonical line (None: not that shape)."""
    out: dict[str, Callable[[str], Any]] = {}
    for name, cls in EVENT_TYPES.items():
        try:
            out[name] = _compile_parser(_record(name, schema_json(name), cls))
        except _Unsupported:
            continue
    return out


# --- formatters ----------------------------------------------------------------------


_QUOTES = {"": "", '"': "_Q + ", "[": "_LB + "}
_CLOSES = {"": "", '"': " + _Q", "]": " + _RB"}


def _value_code(
    src: _Source, f: _Field, var: str, scale: int | None, nested: dict[str, str]
) -> tuple[str, str]:
    """(guard, fragment): the guard is true when ``var`` has the type the fragment
    formats exactly as the generic path would; the fragment is the field's JSON text as
    part of an f-string (triple single quotes), literal text and ``{expressions}``."""
    kind = f.kind
    opening = closing = ""
    if kind == "string":
        guard, expr = f"{var}.__class__ is str", f"_str({var})"
    elif kind == "decimal":
        guard, opening, closing = f"{var}.__class__ is Decimal", '"', '"'
        if scale is None:
            expr = f"str({var})"
        else:  # deltas are written rounded to their schema's scale: codec._quantize inlined
            quantum = src.const("quantum", Decimal(1).scaleb(-scale))
            expr = f"str({var}.quantize({quantum}, context=_wide))"
    elif kind == "timestamp":
        guard, opening, closing = f"{var}.__class__ is _datetime", '"', '"'
        expr = f'{var}.isoformat(timespec="milliseconds")'
    elif kind == "date":
        guard, opening, closing = f"{var}.__class__ is _date_cls", '"', '"'
        expr = f"{var}.isoformat()"
    elif kind in ("int", "long"):
        guard, expr = f"{var}.__class__ is int", f"int.__repr__({var})"
    elif kind == "boolean":
        guard, expr = f"({var} is True or {var} is False)", f'("true" if {var} else "false")'
    elif kind == "enum":
        guard, expr = f"{var}.__class__ is _DeltaKind", f"_str({var}._value_)"
    elif kind == "strings":
        guard, opening, closing = f"{var}.__class__ is tuple", "[", "]"
        expr = f'",".join([_str(_s) for _s in {var}])'
    elif kind == "records":
        guard, opening, closing = f"{var}.__class__ is tuple", "[", "]"
        expr = f'",".join([{nested[f.name]}(_r) for _r in {var}])'
    else:
        raise _Unsupported(f"{f.name}: {kind}")
    if not f.optional:
        return guard, f"{opening}{{{expr}}}{closing}"
    whole = f"{_QUOTES[opening]}{expr}{_CLOSES[closing]}"
    return f"({var} is None or {guard})", f'{{("null" if {var} is None else {whole})}}'


def _formatter_source(
    src: _Source, record: _Record, scales: dict[str, int], type_key: bool, fn: str
) -> None:
    nested: dict[str, str] = {}
    for f in record.fields:
        if f.kind == "records" and f.item is not None:
            inner = f"format_{f.item.name}"
            item_scales = _line_trace_scales() if record.name == "CommissionDelta" else {}
            _formatter_source(src, f.item, item_scales, False, inner)
            nested[f.name] = inner
    cls = src.const("cls", record.cls)
    src.emit(f"def {fn}(v):", 0)
    src.emit(f"if v.__class__ is not {cls}:")
    src.emit("raise Fallback", 2)
    guards: list[str] = []
    parts: list[str] = []
    for i, f in enumerate(record.fields):
        var = f"a{i}"
        src.emit(f"{var} = v.{f.name}")
        guard, fragment = _value_code(src, f, var, scales.get(f.name), nested)
        guards.append(guard)
        parts.append(f"{encode_basestring(f.name)}:{fragment}")
    src.emit(f"if not ({' and '.join(guards)}):")
    src.emit("raise Fallback", 2)
    prefix = f'"type":{encode_basestring(record.name)},' if type_key else ""
    # field and record names are identifiers: no brace, quote or backslash to escape
    src.emit("return f'''{{" + prefix + ",".join(parts) + "}}'''")


def _compile_formatter(record: _Record, scales: dict[str, int]) -> Callable[[Any], str]:
    src = _Source()
    src.env.update(
        _str=encode_basestring,
        _wide=_WIDE,
        _datetime=datetime,
        _date_cls=date,
        _DeltaKind=DeltaKind,
        _LB="[",
        _RB="]",
    )
    fn = f"format_{record.name}"
    _formatter_source(src, record, scales, True, fn)
    return src.build(fn)


def compile_formatters() -> dict[type[Any], Callable[[Any], str]]:
    """Class -> compiled formatter of its JSON line (raises for a value of unexpected
    field types)."""
    out: dict[type[Any], Callable[[Any], str]] = {}
    named: dict[str, type[Any]] = {**EVENT_TYPES, "CommissionDelta": CommissionDelta}
    for name, cls in named.items():
        scales = _scales(name) if name == "CommissionDelta" else {}
        try:
            out[cls] = _compile_formatter(_record(name, schema_json(name), cls), scales)
        except _Unsupported:
            continue
    return out
