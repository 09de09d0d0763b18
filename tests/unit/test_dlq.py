"""The dead-letter view collapses the repeats an at-least-once worker writes."""

from __future__ import annotations

from datetime import UTC, datetime

from comstream.dlq import StoredLetter, distinct, select
from schemas.codec import DeadLetterRecord

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
