"""Avro object container files of events (``comstream replay`` reads them).

A file's schema is either one event record or a union of event records; with a union,
each datum says which event it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fastavro

from processors.events import EVENT_TYPES, Event, event_type

from .codec import from_record, schema_json, to_record
from .errors import CodecError


def _union_schema() -> list[dict[str, Any]]:
    return [schema_json(name) for name in EVENT_TYPES]


def write_events(path: Path, events: Iterable[Event]) -> int:
    """Write events to a container file with the union schema; returns the count."""
    schema = fastavro.parse_schema(_union_schema())
    records = [(f"comstream.events.{event_type(e)}", to_record(e)) for e in events]
    with path.open("wb") as fh:
        fastavro.writer(fh, schema, records)
    return len(records)


def read_events(path: Path) -> Iterator[Event]:
    """Every event in a container file, in order. Raises CodecError for a file that is
    not an Avro container or holds something other than events."""
    with path.open("rb") as fh:
        try:
            reader = fastavro.reader(fh, return_record_name=True)
            for item in reader:
                if isinstance(item, tuple):
                    full_name, rec = item
                else:  # a single-record schema
                    schema: Any = reader.writer_schema
                    full_name, rec = schema["name"], item
                name = str(full_name).rsplit(".", 1)[-1]
                if name not in EVENT_TYPES:
                    raise CodecError(f"{path}: record {full_name} is not an event")
                if not isinstance(rec, dict):
                    raise CodecError(f"{path}: a datum is not a record")
                yield from_record(name, rec)
        except (ValueError, EOFError, StopIteration, TypeError) as exc:
            raise CodecError(f"{path}: not a readable Avro container file: {exc}") from exc
