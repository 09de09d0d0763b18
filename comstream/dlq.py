"""``comstream dlq list`` and ``comstream dlq replay``: the dead-letter topic for humans.

A dead letter keeps the original key and bytes with the topic, partition and offset it
came from and a machine-readable reason. ``list`` shows them (optionally as JSON lines,
with the decoded event where the bytes decode, ready to be corrected and sent again with
``comstream publish``); ``replay`` re-publishes the original bytes of the selected ones to
their original topic, for when the cause was fixed on the worker's side (a plan or a
currency that is now known, a corrected CRM record). Replaying is safe to repeat: event ids
make a second copy of an applied event change nothing, and one that is still bad lands in
the dead-letter topic again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from schemas.codec import DeadLetterRecord, decode_dead_letter, decode_event
from schemas.errors import CodecError
from schemas.jsonl import to_json_obj
from streams.kafka import flush, make_producer, read_whole
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class StoredLetter:
    offset: int  # position in the dead-letter topic
    record: DeadLetterRecord


def read_letters(settings: Settings) -> Iterator[StoredLetter]:
    """Every dead letter, in topic order, repeats included (see :func:`distinct`)."""
    for msg in read_whole(settings.bootstrap, settings.topics.dlq):
        if msg.value is None:
            continue
        try:
            yield StoredLetter(msg.offset, decode_dead_letter(msg.value))
        except CodecError as exc:  # only the worker writes here; show, do not hide
            print(f"dlq offset {msg.offset}: unreadable record: {exc}", file=sys.stderr)


def distinct(letters: Iterable[StoredLetter]) -> list[StoredLetter]:
    """One letter per source message (topic, partition, offset): the first one written.

    The worker is at-least-once: killed after sending a dead letter and before committing
    the message's offset, it reads the message again on restart and sends the same letter
    a second time. Both name the same source position, so a person sees one."""
    seen: set[tuple[str, int, int]] = set()
    out: list[StoredLetter] = []
    for s in letters:
        r = s.record
        position = (r.topic, r.partition, r.offset)
        if position not in seen:
            seen.add(position)
            out.append(s)
    return out


def select(
    letters: Sequence[StoredLetter], reasons: Sequence[str], offsets: Sequence[int]
) -> list[StoredLetter]:
    """The letters whose reason starts with one of ``reasons`` (all when empty) and
    whose offset is in ``offsets`` (all when empty)."""
    return [
        s
        for s in letters
        if (not reasons or any(s.record.reason.startswith(r) for r in reasons))
        and (not offsets or s.offset in offsets)
    ]


def _as_json(s: StoredLetter) -> dict[str, Any]:
    r = s.record
    try:
        event: Any = to_json_obj(decode_event(r.value))
    except CodecError:
        event = None
    return {
        "dlq_offset": s.offset,
        "reason": r.reason,
        "detail": r.detail,
        "source": {"topic": r.topic, "partition": r.partition, "offset": r.offset},
        "event_id": r.event_id,
        "event_type": r.event_type,
        "dead_at": r.dead_at.isoformat(timespec="seconds"),
        "value_hex": r.value.hex() if event is None else None,
        "event": event,
    }


def list_command(settings: Settings, reasons: Sequence[str], as_json: bool) -> int:
    letters = select(distinct(read_letters(settings)), reasons, ())
    if as_json:
        for s in letters:
            print(json.dumps(_as_json(s), ensure_ascii=False))
        return 0
    table = Table(title=f"dead letters in {settings.topics.dlq}: {len(letters)}")
    for col in ("#", "reason", "from", "event", "detail"):
        table.add_column(col, overflow="fold")
    for s in letters:
        r = s.record
        table.add_row(
            str(s.offset),
            r.reason,
            f"{r.topic}[{r.partition}]@{r.offset}",
            f"{r.event_type or '?'} {r.event_id or ''}".strip(),
            r.detail,
        )
    Console().print(table)
    return 0


def replay_command(
    settings: Settings, reasons: Sequence[str], offsets: Sequence[int], dry_run: bool
) -> int:
    chosen = select(distinct(read_letters(settings)), reasons, offsets)
    if not chosen:
        print("no dead letters selected")
        return 0
    if not (reasons or offsets):
        print("select with --reason or --offset (or both); refusing to replay everything")
        return 2
    if dry_run:
        for s in chosen:
            print(f"would replay #{s.offset} to {s.record.topic}: {s.record.reason}")
        return 0
    producer = make_producer(settings.bootstrap)
    for s in chosen:
        producer.produce(s.record.topic, key=s.record.key, value=s.record.value)
        producer.poll(0)
    flush(producer)
    print(f"replayed {len(chosen)} dead letters to their original topics")
    return 0
