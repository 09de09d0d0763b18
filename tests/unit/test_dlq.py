"""The dead-letter view collapses the repeats an at-least-once worker writes; its events
go back through ``publish`` once corrected."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from comstream.dlq import StoredLetter, _as_json, distinct, event_of, export_lines, select
from comstream.publish import Rejected, parse_lines
from processors import serde
from processors.events import PaymentReceived
from schemas.codec import DeadLetterRecord, encode
from schemas.jsonl import parse_event

AT = datetime(2026, 11, 2, tzinfo=UTC)


def letter(dlq_offset: int, topic: str, offset: int, reason: str) -> StoredLetter:
    record = DeadLetterRecord(
        reason=reason,
        detail="",
        topic=topic,
        partition=0,
        offset=offset,
        key=None,
        value=b"\x01",
        event_id=None,
        event_type=None,
        dead_at=AT,
    )
    return StoredLetter(dlq_offset, record)


def test_a_letter_written_again_after_a_crash_is_shown_once() -> None:
    letters = [
        letter(0, "orders", 5, "decode.error"),
        letter(1, "payments", 5, "invalid.amount_negative"),
        letter(2, "orders", 5, "decode.error"),  # the same source message, re-sent
        letter(3, "orders", 6, "decode.error"),
    ]
    assert [s.offset for s in distinct(letters)] == [0, 1, 3]
    assert [s.offset for s in select(distinct(letters), ["invalid."], ())] == [1]


# ---- correct and publish again (issue 18, item 8) ----------------------------------------


def stored(dlq_offset: int, value: bytes, reason: str) -> StoredLetter:
    s = letter(dlq_offset, "payments", dlq_offset, reason)
    return StoredLetter(s.offset, replace(s.record, value=value))


FINE = PaymentReceived("fine-1", AT, "o-1", "p-1", Decimal("10.001"), AT)


def test_export_writes_the_events_publish_reads_and_names_the_rest() -> None:
    good = stored(7, encode(FINE), "invalid.amount_precision")
    junk = stored(8, b"\x07junk", "decode.error")
    lines, undecodable = export_lines([good, junk])
    assert [s.offset for s in undecodable] == [8]
    assert len(lines) == 1
    assert json.loads(lines[0])["amount"] == "10.0010"  # as decoded: 4 places
    corrected = lines[0].replace('"10.0010"', '"10.00"')
    [(number, event)] = list(parse_lines([corrected]))
    assert number == 1 and event == replace(FINE, amount=Decimal("10.00"))


def test_a_letter_a_stage_wrote_exports_the_event_it_holds() -> None:
    """The order stage refuses a payment finer than its currency in the stage's own
    message (processors.serde), not the upstream Avro bytes."""
    lines, undecodable = export_lines([stored(3, serde.dumps(FINE), "invalid.amount_precision")])
    assert not undecodable
    assert parse_event(lines[0]) == FINE
    # a letter naming another event than the message it holds: nothing to export
    s = stored(4, serde.dumps(replace(FINE, event_id="another")), "invalid.amount_precision")
    about_fine = StoredLetter(4, replace(s.record, event_id="fine-1"))
    assert event_of(about_fine.record) is None
    assert export_lines([about_fine]) == ([], [about_fine])


def test_publish_reads_a_corrected_dlq_list_line_as_its_event() -> None:
    listed = json.dumps(_as_json(stored(7, encode(FINE), "invalid.amount_precision")))
    assert json.loads(listed)["event"]["type"] == "PaymentReceived"
    corrected = listed.replace('"10.0010"', '"10.00"')
    [(_, event)] = list(parse_lines([corrected]))
    assert event == replace(FINE, amount=Decimal("10.00"))
    # a letter whose bytes were no event: said so, not "type None"
    junk = json.dumps(_as_json(stored(8, b"\x07junk", "decode.error")))
    [(_, rejected)] = list(parse_lines([junk]))
    assert isinstance(rejected, Rejected) and rejected.reason == "format.dead_letter"
    assert "#8" in rejected.detail
    # any other line without a type is refused as before
    [(_, other)] = list(parse_lines(['{"event_id": "x"}']))
    assert isinstance(other, Rejected) and other.reason == "format.unknown_type"
