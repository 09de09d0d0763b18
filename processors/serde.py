"""Bytes for stage states and stage-to-stage messages (RocksDB tables, Kafka topics).

``dumps(obj) -> bytes`` and ``loads(data) -> obj`` for every event, every stage message
and state dataclass, :class:`CommissionDelta` and :class:`DeadLetter`. The format is
compact JSON (UTF-8): a dataclass is a list ``["TypeName", field1, field2, ...]`` in field
order; ``Decimal`` is its exact string, ``datetime`` ISO 8601 with its offset, ``date``
ISO 8601, a tuple a list, a :class:`PMap` a list of ``[key, value]`` pairs. Encoding and
decoding are generated per class from the dataclasses' type annotations, so the round trip
is exact: ``loads(dumps(x)) == x``, with the same Decimal exponents and the same offsets (a
``ZoneInfo`` becomes the fixed offset it had at that instant). Raises :class:`SerdeError`
for anything else.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from . import customers, events, facts, messages, orders, payouts, reps
from .errors import SerdeError
from .pmap import PMap

__all__ = ["REGISTRY", "dumps", "loads"]

_CLASSES: tuple[type[Any], ...] = (
    # events
    events.RepChanged,
    events.CustomerChanged,
    events.Credit,
    events.OrderLine,
    events.OrderPlaced,
    events.OrderCancelled,
    events.PaymentReceived,
    events.RefundIssued,
    events.PlanPublished,
    events.PeriodClosed,
    events.LineTrace,
    events.CommissionDelta,
    events.DeadLetter,
    # stage messages
    messages.RepFacts,
    messages.CustomerSnapshot,
    messages.OrderAccepted,
    messages.CreditResolved,
    messages.SnapshotRestated,
    messages.OrderCancelledNotice,
    # states
    customers.CustomerOrder,
    customers.CustomerState,
    customers.Placements,
    orders.Movement,
    orders.RepLedger,
    orders.OrderState,
    reps.PeriodSums,
    reps.RepState,
    reps.Applied,
    # BI facts (processors.facts)
    facts.FactLine,
    facts.FactCredit,
    facts.OrderFact,
    facts.CustomerFact,
    facts.RepFact,
    # the statement lifecycle (processors.payouts)
    payouts.Actor,
    payouts.StatementCommand,
    payouts.AuditRecord,
    payouts.StatementState,
)
REGISTRY: dict[str, type[Any]] = {cls.__name__: cls for cls in _CLASSES}

_GROWN: dict[type[Any], int] = {
    # class: how many fields its records had before fields (with defaults) were added
    customers.CustomerState: 6,  # + versions, latest_us, cancelled_pairs (business time)
    customers.CustomerOrder: 8,  # + placed_on, restated, cancelled_at_us, touched
    customers.Placements: 3,  # + cancelled_ids, cancelled_us, cancelled_at_us
    orders.OrderState: 11,  # + restated_version
    payouts.StatementCommand: 10,  # + force
}
"""Every type :func:`dumps` accepts, by the tag it writes."""

# Each registered class gets an encoder and a decoder generated from its type annotations
# (like dataclasses generate __init__): straight-line code, no per-field dispatch.
_ENCODE: dict[type[Any], Callable[[Any], list[Any]]] = {}
_DECODE: dict[str, Callable[[list[Any]], Any]] = {}


def _bad(kind: str, value: Any) -> Any:
    raise SerdeError(f"expected {kind}, got {value!r}")


def _enc_record(value: Any) -> list[Any]:
    encode = _ENCODE.get(type(value))
    if encode is None:
        raise SerdeError(f"cannot encode a {type(value).__name__}: not a registered type")
    return encode(value)


def _dec_record(value: Any) -> Any:
    if type(value) is not list or not value:
        raise SerdeError(f"expected a tagged record, got {value!r}")
    decode = _DECODE.get(value[0])
    if decode is None:
        raise SerdeError(f"unknown record type {value[0]!r}")
    return decode(value)


class _Gen:
    """Generates encode/decode expressions for a type annotation."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {
            "_bad": _bad,
            "_enc_record": _enc_record,
            "_dec_record": _dec_record,
            "_Decimal": Decimal,
            "_dt": datetime.fromisoformat,
            "_date": date.fromisoformat,
            "_PMap": PMap,
        }
        self.counter = 0

    def var(self) -> str:
        self.counter += 1
        return f"_v{self.counter}"

    def name(self, value: Any) -> str:
        self.counter += 1
        key = f"_n{self.counter}"
        self.names[key] = value
        return key

    @staticmethod
    def _registered(tp: Any) -> bool:
        return isinstance(tp, type) and tp in _CLASSES

    def encode(self, tp: Any, x: str) -> str:
        if tp in (str, int, bool, type(None)):
            return x
        if tp is Decimal:
            return f"str({x})"
        if tp is datetime or tp is date:
            return f"{x}.isoformat()"
        if isinstance(tp, type) and issubclass(tp, Enum):
            return f"{x}.value"
        if self._registered(tp):
            return f"_enc_record({x})"
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is types.UnionType or origin is typing.Union:
            options = [a for a in args if a is not type(None)]
            if all(self._registered(a) for a in options):
                inner = f"_enc_record({x})"
            elif len(options) == 1:
                inner = self.encode(options[0], x)
            else:
                raise SerdeError(f"cannot encode the union {tp!r}")
            return inner if len(options) == len(args) else f"(None if {x} is None else {inner})"
        if origin is tuple:
            y = self.var()
            if len(args) == 2 and args[1] is Ellipsis:
                return f"[{self.encode(args[0], y)} for {y} in {x}]"
            parts = ", ".join(self.encode(a, f"{y}[{i}]") for i, a in enumerate(args))
            return f"(lambda {y}: [{parts}])({x})"
        if origin is PMap:
            k, w = self.var(), self.var()
            return (
                f"[[{self.encode(args[0], k)}, {self.encode(args[1], w)}] "
                f"for {k}, {w} in {x}.items()]"
            )
        raise SerdeError(f"no encoder for {tp!r}")

    def decode(self, tp: Any, x: str) -> str:
        if tp in (str, int, bool):
            return f"({x} if type({x}) is {tp.__name__} else _bad({tp.__name__!r}, {x}))"
        if tp is type(None):
            return f"({x} if {x} is None else _bad('null', {x}))"
        if tp is Decimal:
            return f"_Decimal({x})"
        if tp is datetime:
            return f"_dt({x})"
        if tp is date:
            return f"_date({x})"
        if isinstance(tp, type) and issubclass(tp, Enum):
            return f"{self.name(tp)}({x})"
        if self._registered(tp):
            return f"_dec_record({x})"
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is types.UnionType or origin is typing.Union:
            options = [a for a in args if a is not type(None)]
            if all(self._registered(a) for a in options):
                inner = f"_dec_record({x})"
            elif len(options) == 1:
                inner = self.decode(options[0], x)
            else:
                raise SerdeError(f"cannot decode the union {tp!r}")
            return inner if len(options) == len(args) else f"(None if {x} is None else {inner})"
        if origin is tuple:
            y = self.var()
            if len(args) == 2 and args[1] is Ellipsis:
                return f"tuple([{self.decode(args[0], y)} for {y} in {x}])"
            parts = "".join(f"{self.decode(a, f'{y}[{i}]')}, " for i, a in enumerate(args))
            return f"(lambda {y}: ({parts}) if len({y}) == {len(args)} else _bad('pair', {y}))({x})"
        if origin is PMap:
            k, w = self.var(), self.var()
            return (
                f"_PMap([({self.decode(args[0], k)}, {self.decode(args[1], w)}) "
                f"for {k}, {w} in {x}])"
            )
        raise SerdeError(f"no decoder for {tp!r}")


def _generate(cls: type[Any]) -> None:
    gen = _Gen()
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    # A record written before trailing fields were added to its class is shorter: it
    # decodes with those fields' defaults (stored states outlive code versions).
    required = _GROWN.get(cls, len(names))
    assert all(_has_default(f) for f in fields[required:]), cls
    tag = cls.__name__
    cls_ref = gen.name(cls)
    enc_parts = ", ".join(gen.encode(hints[n], f"o.{n}") for n in names)
    dec_parts = ", ".join(gen.decode(hints[n], f"v[{i + 1}]") for i, n in enumerate(names))
    dec_short = ", ".join(
        gen.decode(hints[n], f"v[{i + 1}]") for i, n in enumerate(names[:required])
    )
    source = (
        f"def encode(o):\n    return [{tag!r}, {enc_parts}]\n"
        f"def decode(v):\n"
        f"    if len(v) == {len(names) + 1}:\n"
        f"        return {cls_ref}({dec_parts})\n"
        f"    if {required + 1} <= len(v) < {len(names) + 1}:\n"
        f"        return _short({cls_ref}, ({dec_short},), v)\n"
        f"    _bad('a {tag} record of {len(names)} fields', v)\n"
    )
    gen.names["_short"] = _short
    scope: dict[str, Any] = dict(gen.names)
    exec(compile(source, f"<serde {tag}>", "exec"), scope)
    _ENCODE[cls] = scope["encode"]
    _DECODE[tag] = scope["decode"]


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _short(cls: type[Any], required: tuple[Any, ...], v: list[Any]) -> Any:
    """Decode a record with fewer fields than ``cls`` has: its required fields are
    decoded in ``required``; the optional ones it holds are decoded again in full (the
    slow path, taken only by records older than their class)."""
    full = _ENCODE[cls](cls(*required))
    full[: len(v)] = v
    return _DECODE[cls.__name__](full)


for _cls in _CLASSES:
    _generate(_cls)


def dumps(obj: Any) -> bytes:
    """The bytes of a registered dataclass value (see :data:`REGISTRY`)."""
    encode = _ENCODE.get(type(obj))
    if encode is None:
        raise SerdeError(f"cannot encode a {type(obj).__name__}: not a registered type")
    try:
        record = encode(obj)
    except (AttributeError, TypeError) as exc:
        raise SerdeError(f"cannot encode {type(obj).__name__}: {exc}") from exc
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The value :func:`dumps` wrote. Raises :class:`SerdeError` for anything else."""
    try:
        raw = json.loads(bytes(data) if not isinstance(data, str) else data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerdeError(f"not a serialized value: {exc}") from exc
    try:
        return _dec_record(raw)
    except SerdeError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, ArithmeticError, AttributeError) as exc:
        raise SerdeError(f"malformed record: {exc}") from exc
