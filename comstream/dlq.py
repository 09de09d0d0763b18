"""``comstream dlq list``, ``export`` and ``replay``: the dead-letter topic for humans.

A dead letter keeps the original key and bytes with the topic, partition and offset it
came from and a machine-readable reason. ``list`` shows them (optionally as JSON lines,
with the decoded event where the bytes decode); ``export`` writes just the decoded
events, one JSON line each, in the form ``comstream publish`` reads, for a person to
correct and publish again (``publish`` also reads the lines of ``list --json``);
``replay`` re-publishes the original bytes of the selected ones to their original topic,
for when the cause was fixed on the worker's side (a plan or a currency that is now known,
a corrected CRM record). Replaying is safe to repeat: event ids make a second copy of an
applied event change nothing, and one that is still bad lands in the dead-letter topic
again."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from processors import serde
from processors.errors import SerdeError
from processors.events import Event, OrderPlaced
from schemas.codec import DeadLetterRecord, decode_dead_letter, decode_event
from schemas.errors import CodecError
from schemas.jsonl import format_event, to_json_obj
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


def event_of(record: DeadLetterRecord) -> Event | None:
    """The event a dead letter holds: its bytes as an upstream event (Avro), or, for a
    letter a stage wrote, the stage's message when that message is the event itself (a
    payment, refund or cancellation at the order stage) or carries it (the order of an
    ``OrderAccepted`` whose event id the letter names). None when the bytes are no
    event (``decode.error``) or a message about another event (a payment refused when
    its order arrived holds the order's message)."""
    try:
        return decode_event(record.value)
    except CodecError:
        pass
    try:
        message = serde.loads(record.value)
    except SerdeError:
        return None
    if not isinstance(message, Event):
        message = getattr(message, "order", None)
        if not isinstance(message, OrderPlaced):
            return None
    return message if record.event_id in (None, message.event_id) else None


def _as_json(s: StoredLetter) -> dict[str, Any]:
    r = s.record
    found = event_of(r)
    event: Any = None if found is None else to_json_obj(found)
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


def export_lines(letters: Iterable[StoredLetter]) -> tuple[list[str], list[StoredLetter]]:
    """(one JSON line per letter whose bytes decode to an event, in the form ``comstream
    publish`` reads; the letters whose bytes are not an event)."""
    lines: list[str] = []
    undecodable: list[StoredLetter] = []
    for s in letters:
        event = event_of(s.record)
        if event is None:
            undecodable.append(s)
        else:
            lines.append(format_event(event))
    return lines, undecodable


def export_command(
    settings: Settings, reasons: Sequence[str], offsets: Sequence[int], out: str | None
) -> int:
    """Write the selected dead letters' events as JSON lines (to ``out``, else stdout),
    ready to be corrected and sent again with ``comstream publish``. A letter that
    holds no event (:func:`event_of`) has nothing to correct here: it is named on stderr
    and left out. Exit 0, or 1 when letters were selected and none could be exported."""
    chosen = select(distinct(read_letters(settings)), reasons, offsets)
    lines, undecodable = export_lines(chosen)
    text = "".join(line + "\n" for line in lines)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {len(lines)} events to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if undecodable:
        shown = ", ".join(f"#{s.offset}" for s in undecodable[:20])
        more = f" and {len(undecodable) - 20} more" if len(undecodable) > 20 else ""
        print(
            f"left out {len(undecodable)} dead letters that hold no event to correct "
            f"({shown}{more}: `dlq list --json` shows their bytes); the system that sent "
            "the events must send them again",
            file=sys.stderr,
        )
    if not chosen:
        print("no dead letters selected", file=sys.stderr)
    return 1 if chosen and not lines else 0


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
