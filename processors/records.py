"""``@record``: the dataclass every state, message and event of the engine is.

A record is a slotted dataclass with value equality and a hash over its fields, and it is
immutable by contract: mypy treats it as frozen (``dataclass_transform(frozen_default=
True)``), so an assignment to a field is a type error, and the engine never changes a
record it has handed out; ``dataclasses.replace`` makes changed copies.

It is not ``frozen=True`` at run time on purpose: a frozen dataclass's ``__init__`` sets
each field through ``object.__setattr__``, which made constructing one 11x slower
(2.7 µs against 0.24 µs for a 21-field delta, measured here) and was 18% of the engine's
CPU (bench/RESULTS.md, issue 15).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

__all__ = ["record"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """``cls`` as a slotted dataclass with ``__eq__`` and ``__hash__`` over its fields."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
