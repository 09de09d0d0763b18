"""The exception root, re-exported for the shell (CLI, broker, settings)."""

from processors.errors import ComstreamError

__all__ = ["ComstreamError"]
