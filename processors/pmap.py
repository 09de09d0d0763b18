"""A persistent (copy-on-write) hash map for stage states that grow large.

States are immutable values: a stage returns a new state and never mutates the old one.
Copying a whole dict on every update is O(n); :class:`PMap` spreads its entries over
16 × 16 buckets, so an update copies two 16-slot tuples and one small dict. (16 × 16
rather than 32 × 32: a map of a few hundred entries then holds a quarter of the row
slots, which the cyclic GC walks on every full collection.) Iteration order is not
defined; equality is that of mappings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

_BITS = 4
_N = 1 << _BITS
_MASK = _N - 1
_EMPTY: dict[Any, Any] = {}
_EMPTY_ROW: tuple[dict[Any, Any], ...] = (_EMPTY,) * _N
_EMPTY_ROWS: tuple[tuple[dict[Any, Any], ...], ...] = (_EMPTY_ROW,) * _N
_new = object.__new__


class PMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping with cheap :meth:`set` and :meth:`remove` (each returns a
    new map and leaves this one unchanged)."""

    __slots__ = ("_len", "_rows")

    _rows: tuple[tuple[dict[K, V], ...], ...]
    _len: int

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        if items == ():
            self._rows = _EMPTY_ROWS
            self._len = 0
            return
        rows: list[list[dict[K, V]]] = [[_EMPTY] * _N for _ in range(_N)]
        pairs = items.items() if isinstance(items, Mapping) else items
        count = 0
        for key, value in pairs:
            h = hash(key)
            row = rows[h & _MASK]
            j = (h >> _BITS) & _MASK
            bucket = row[j]
            if bucket is _EMPTY:
                bucket = row[j] = {}
            if key not in bucket:
                count += 1
            bucket[key] = value
        self._rows = tuple(tuple(row) for row in rows)
        self._len = count

    @classmethod
    def _make(cls, rows: tuple[tuple[dict[K, V], ...], ...], length: int) -> PMap[K, V]:
        new: PMap[K, V] = cls.__new__(cls)
        new._rows = rows
        new._len = length
        return new

    def set(self, key: K, value: V) -> PMap[K, V]:
        """A new map with ``key`` mapped to ``value``."""
        h = hash(key)
        i = h & _MASK
        j = (h >> _BITS) & _MASK
        rows = self._rows
        row = list(rows[i])
        old = row[j]
        bucket = old.copy()
        bucket[key] = value
        row[j] = bucket
        new_rows = list(rows)
        new_rows[i] = tuple(row)
        new: PMap[K, V] = _new(type(self))
        new._rows = tuple(new_rows)
        new._len = self._len if key in old else self._len + 1
        return new

    def remove(self, key: K) -> PMap[K, V]:
        """A new map without ``key`` (this map when it has no such key)."""
        h = hash(key)
        i = h & _MASK
        j = (h >> _BITS) & _MASK
        rows = self._rows
        row = rows[i]
        old = row[j]
        if key not in old:
            return self
        bucket = old.copy()
        del bucket[key]
        return PMap._make(
            (*rows[:i], (*row[:j], bucket, *row[j + 1 :]), *rows[i + 1 :]), self._len - 1
        )

    def __getitem__(self, key: K) -> V:
        h = hash(key)
        return self._rows[h & _MASK][(h >> _BITS) & _MASK][key]

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | T, /) -> V | T: ...
    def get(self, key: K, default: object = None, /) -> object:
        h = hash(key)
        return self._rows[h & _MASK][(h >> _BITS) & _MASK].get(key, default)

    def __contains__(self, key: object) -> bool:
        try:
            h = hash(key)
        except TypeError:
            return False
        return key in self._rows[h & _MASK][(h >> _BITS) & _MASK]

    def __iter__(self) -> Iterator[K]:
        for row in self._rows:
            for bucket in row:
                yield from bucket

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"
