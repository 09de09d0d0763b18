"""The one exception root of comstream, and the engine's errors.

Every error comstream raises derives from :class:`ComstreamError`; third-party errors are
wrapped at the call site with ``raise ... from``. The pure engine (``processors``) raises
only :class:`EngineError` and its subclasses.
"""

from __future__ import annotations


class ComstreamError(Exception):
    """Root of every error comstream raises."""


class EngineError(ComstreamError):
    """An error of the pure commission engine."""


class PlanError(EngineError):
    """A plan document or plan book that is not valid; the message names the field path."""


class SerdeError(EngineError):
    """Bytes that :func:`processors.serde.loads` cannot turn back into a value, or a value
    :func:`processors.serde.dumps` does not know how to encode."""
