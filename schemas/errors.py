"""Errors of the codec layer."""

from __future__ import annotations

from processors.errors import ComstreamError


class CodecError(ComstreamError):
    """Bytes that are not a valid framed Avro record of a known schema."""


class EventFormatError(ComstreamError):
    """A JSON-lines event that does not fit its schema.

    ``reason`` is machine-readable (``format.json``, ``format.unknown_type``,
    ``format.missing_field``, ``format.unknown_field``, ``format.bad_value``), ``detail``
    names the field and the problem.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
