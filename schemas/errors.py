"""Errors of the codec layer."""

from __future__ import annotations

from processors.errors import ComstreamError


class CodecError(ComstreamError):
    """Bytes that are not a valid framed Avro record of a known schema."""


class EventFormatError(ComstreamError):
    """A JSON-lines event that does not fit its schema.

    ``reason`` is machine-readable (``format.json``, ``format.unknown_type``,
    ``format.missing_field``, ``format.unknown_field``, ``format.bad_value``, and
    ``invalid.amount_precision`` for a decimal with more places than its field carries:
    that event alone is refused, SEMANTICS.md section 2), ``detail`` names the field and
    the problem; ``event_id`` and ``event_type`` are the line's when it names them.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        event_id: str | None = None,
        event_type: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.event_id = event_id
        self.event_type = event_type
