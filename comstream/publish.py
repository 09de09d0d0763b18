"""``comstream publish``: the upstream systems' entry point.

Reads JSON-lines events, checks each against its Avro schema, and produces the good ones
(Avro, Confluent framing) keyed by their entity. Every rejected line is reported with its
line number and reason; the good lines are produced all the same. A line of
``comstream dlq list --json`` is read as the event it holds (``"event"``), so dead
letters can be corrected and published again as listed (``comstream dlq export`` writes
the bare events).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO

from confluent_kafka import KafkaError, Message
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from processors.events import Event, event_type
from schemas.codec import encode
from schemas.errors import CodecError, EventFormatError
from schemas.jsonl import parse_event
from streams.kafka import KafkaUnavailable, flush, make_producer
from streams.routing import event_key, event_topic
from streams.settings import Topics


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str
    detail: str


@dataclass
class PublishReport:
    produced: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)
    failed_deliveries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed_deliveries


def parse_lines(lines: Iterable[str]) -> Iterator[tuple[int, Event | Rejected]]:
    """(line number, event or rejection) for each non-blank line, numbered from 1."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            yield number, parse_event(text)
        except EventFormatError as exc:
            try:
                yield number, _dead_letter_event(text, exc)
            except EventFormatError as final:
                yield number, Rejected(number, final.reason, final.detail)


def _dead_letter_event(text: str, error: EventFormatError) -> Event:
    """The event of a ``comstream dlq list --json`` line (its ``"event"``), so that the
    listing, once corrected, can be published as it is; re-raises ``error`` for any
    other line that is not an event."""
    if error.reason != "format.unknown_type":
        raise error
    try:
        obj = json.loads(text, parse_float=Decimal)
    except ValueError:
        raise error from None
    if not (isinstance(obj, dict) and "dlq_offset" in obj and "event" in obj):
        raise error
    event = obj["event"]
    if not isinstance(event, dict):
        raise EventFormatError(
            "format.dead_letter",
            f"dead letter #{obj['dlq_offset']} holds no event to correct (its bytes are "
            "in value_hex): the system that sent the event must send it again",
        )
    return parse_event(json.dumps(event, default=str, ensure_ascii=False))


def publish_events(
    events: Iterable[Event], bootstrap: str, topics: Topics, topic: str | None = None
) -> PublishReport:
    """Produce events (already parsed) and wait for every acknowledgement."""
    report = PublishReport()
    producer = make_producer(bootstrap)

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            report.failed_deliveries.append(f"{msg.topic()}: {err}")

    for event in events:
        _produce(producer, event, topics, topic, report, on_delivery)
    flush(producer)
    return report


def _produce(producer, event, topics, topic, report, on_delivery) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            producer.produce(
                topic or event_topic(event, topics),
                key=event_key(event),
                value=encode(event),
                on_delivery=on_delivery,
            )
            break
        except BufferError:
            producer.poll(0.5)
    producer.poll(0)
    report.produced += 1
    report.by_type[event_type(event)] += 1


def publish_file(
    path: Path,
    bootstrap: str,
    topics: Topics,
    topic: str | None = None,
    console: Console | None = None,
) -> PublishReport:
    """Publish a JSON-lines file; see the module docstring. ``topic`` overrides the
    topic each event type belongs on."""
    console = console or Console(stderr=True)
    report = PublishReport()
    producer = make_producer(bootstrap)

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            report.failed_deliveries.append(f"{msg.topic()}: {err}")

    size = path.stat().st_size
    with path.open("r", encoding="utf-8") as fh, _progress(console, size) as progress:
        task = progress.add_task("publishing", total=size)
        for number, item in parse_lines(_counting(fh, progress, task)):
            if isinstance(item, Rejected):
                report.rejected.append(item)
                continue
            try:
                _produce(producer, item, topics, topic, report, on_delivery)
            except CodecError as exc:
                report.rejected.append(Rejected(number, "format.encode", str(exc)))
    try:
        flush(producer)
    except KafkaUnavailable as exc:
        report.failed_deliveries.append(str(exc))
    return report


def _counting(fh: IO[str], progress: Progress, task: TaskID) -> Iterator[str]:
    for line in fh:
        progress.advance(task, len(line.encode("utf-8")))
        yield line


def _progress(console: Console, size: int) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=size < 1_000_000 or not console.is_terminal,
    )


def print_report(report: PublishReport, path: Path, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(report.by_type.items()))
    print(f"produced {report.produced} events ({kinds or 'none'})", file=out)
    for r in report.rejected:
        print(f"{path}:{r.line}: rejected: {r.reason}: {r.detail}", file=sys.stderr)
    for f in report.failed_deliveries:
        print(f"delivery failed: {f}", file=sys.stderr)
    if report.rejected:
        print(f"rejected {len(report.rejected)} lines", file=out)
