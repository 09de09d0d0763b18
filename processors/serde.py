"""Bytes for stage states and stage-to-stage messages (RocksDB tables, Kafka topics).

``dumps(obj) -> bytes`` and ``loads(data) -> obj`` for every event, every stage message
and state dataclass, :class:`CommissionDelta` and :class:`DeadLetter`. The format is
compact JSON (UTF-8): a dataclass is a list ``["TypeName", field1, field2, ...]`` in field
order; ``Decimal`` is its exact string, ``datetime`` ISO 8601 with its offset, ``date``
ISO 8601, a tuple a list, a :class:`PMap` a list of ``[key, value]`` pairs. Decoding is
driven by the dataclasses' type annotations, so the round trip is exact: ``loads(dumps(x))
== x``, with the same Decimal exponents and the same offsets (a ``ZoneInfo`` becomes the
fixed offset it had at that instant). Raises :class:`SerdeError` for anything else.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from . import customers, events, messages, orders, reps
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
    messages.OrderCancelledNotice,
    # states
    customers.CustomerOrder,
    customers.CustomerState,
    orders.Movement,
    orders.RepLedger,
    orders.OrderState,
    reps.PeriodSums,
    reps.RepState,
)
REGISTRY: dict[str, type[Any]] = {cls.__name__: cls for cls in _CLASSES}
"""Every type :func:`dumps` accepts, by the tag it writes."""

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_FIELDS: dict[type[Any], tuple[str, ...]] = {}
_DECODERS: dict[type[Any], Decoder] = {}


# --------------------------------------------------------------------------- encoding


def _enc(value: Any) -> Any:
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    if isinstance(value, Enum):
        return value.value
    names = _FIELDS.get(type(value))
    if names is None:
        raise SerdeError(f"cannot encode a {type(value).__name__}")
    return [type(value).__name__, *[_enc(getattr(value, n)) for n in names]]


def _same(value: Any) -> Any:
    return value


def _enc_tuple(value: tuple[Any, ...]) -> list[Any]:
    return [_enc(v) for v in value]


def _enc_pmap(value: PMap[Any, Any]) -> list[Any]:
    return [[_enc(k), _enc(v)] for k, v in value.items()]


_ENCODERS: dict[type[Any], Encoder] = {
    str: _same,
    int: _same,
    bool: _same,
    type(None): _same,
    Decimal: str,
    datetime: datetime.isoformat,
    date: date.isoformat,
    tuple: _enc_tuple,
    PMap: _enc_pmap,
}


def dumps(obj: Any) -> bytes:
    """The bytes of a registered dataclass value (see :data:`REGISTRY`)."""
    if type(obj) not in _FIELDS:
        raise SerdeError(f"cannot encode a {type(obj).__name__}: not a registered type")
    return json.dumps(_enc(obj), ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- decoding


def _dec_decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise SerdeError(f"expected a decimal string, got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise SerdeError(f"not a decimal: {value!r}") from exc


def _dec_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise SerdeError(f"expected a timestamp string, got {value!r}")
    return datetime.fromisoformat(value)


def _dec_date(value: Any) -> date:
    if not isinstance(value, str):
        raise SerdeError(f"expected a date string, got {value!r}")
    return date.fromisoformat(value)


def _checked(kind: type[Any]) -> Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not kind:
            raise SerdeError(f"expected {kind.__name__}, got {value!r}")
        return value

    return decode


def _dec_tagged(value: Any) -> Any:
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise SerdeError(f"expected a tagged record, got {value!r}")
    cls = REGISTRY.get(value[0])
    if cls is None:
        raise SerdeError(f"unknown record type {value[0]!r}")
    return _DECODERS[cls](value)


def _decoder_for(tp: Any) -> Decoder:
    if tp is str or tp is int or tp is bool:
        return _checked(tp)
    if tp is Decimal:
        return _dec_decimal
    if tp is datetime:
        return _dec_datetime
    if tp is date:
        return _dec_date
    if tp is type(None):
        return _checked(type(None))
    if isinstance(tp, type) and issubclass(tp, Enum):
        enum_type = tp
        return lambda v: enum_type(v)
    if isinstance(tp, type) and tp in REGISTRY.values():
        return _dec_tagged
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is types.UnionType or origin is typing.Union:
        options = [a for a in args if a is not type(None)]
        optional = len(options) < len(args)
        if all(isinstance(a, type) and a in REGISTRY.values() for a in options):
            inner: Decoder = _dec_tagged
        elif len(options) == 1:
            inner = _decoder_for(options[0])
        else:
            raise SerdeError(f"cannot decode the union {tp!r}")
        if not optional:
            return inner
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder_for(args[0])

            def dec_tuple(value: Any) -> tuple[Any, ...]:
                if not isinstance(value, list):
                    raise SerdeError(f"expected a list, got {value!r}")
                return tuple([item(v) for v in value])

            return dec_tuple
        parts = [_decoder_for(a) for a in args]

        def dec_fixed(value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list) or len(value) != len(parts):
                raise SerdeError(f"expected a list of {len(parts)}, got {value!r}")
            return tuple([p(v) for p, v in zip(parts, value, strict=True)])

        return dec_fixed
    if origin is PMap:
        key_dec, val_dec = (_decoder_for(a) for a in args)

        def dec_pmap(value: Any) -> PMap[Any, Any]:
            if not isinstance(value, list):
                raise SerdeError(f"expected a list of pairs, got {value!r}")
            return PMap([(key_dec(k), val_dec(v)) for k, v in value])

        return dec_pmap
    raise SerdeError(f"no decoder for {tp!r}")


def _record_decoder(cls: type[Any]) -> Decoder:
    hints = typing.get_type_hints(cls)
    names = _FIELDS[cls]
    decoders = [_decoder_for(hints[n]) for n in names]
    width = len(names) + 1
    name = cls.__name__

    def decode(value: Any) -> Any:
        if len(value) != width or value[0] != name:
            raise SerdeError(f"expected a {name} record of {width - 1} fields, got {value!r}")
        return cls(*[d(v) for d, v in zip(decoders, value[1:], strict=True)])

    return decode


for _cls in _CLASSES:
    _FIELDS[_cls] = tuple(f.name for f in dataclasses.fields(_cls))
for _cls in _CLASSES:
    _DECODERS[_cls] = _record_decoder(_cls)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The value :func:`dumps` wrote. Raises :class:`SerdeError` for anything else."""
    try:
        raw = json.loads(bytes(data) if not isinstance(data, str) else data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerdeError(f"not a serialized value: {exc}") from exc
    try:
        return _dec_tagged(raw)
    except SerdeError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise SerdeError(f"malformed record: {exc}") from exc
