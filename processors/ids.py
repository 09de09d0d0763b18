"""Deterministic delta ids (ARCHITECTURE.md, exactly-once strategy)."""

from __future__ import annotations

from hashlib import sha256


def delta_id(cause: str, rep_id: str, component: str) -> str:
    """A 32-hex-digit id: the first 128 bits of SHA-256 over (cause, rep, component).

    ``cause`` is the id of what caused the delta (an event id, or for an accelerator the
    id of the delta or event that triggered it); ``component`` names what changed, e.g.
    ``commission:ord-1``, ``adjustment:ord-1`` or ``accelerator:2026-Q4:USD``. The same
    inputs always give the same id, so a re-emitted delta is recognised downstream.
    """
    return sha256(f"{cause}\x1f{rep_id}\x1f{component}".encode()).hexdigest()[:32]
