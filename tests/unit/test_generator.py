"""The demo generator is deterministic and produces valid, schema-conforming events."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from comstream.generator import DemoStream, simulated_clock
from schemas.codec import decode, encode

START = datetime(2026, 11, 1, tzinfo=UTC)


def _events(seed: int) -> list[object]:
    stream = DemoStream(seed=seed)
    return [*stream.dimensions(START), *stream.events(simulated_clock(START), orders=500)]


def test_same_seed_same_events() -> None:
    assert _events(3) == _events(3)
    assert _events(3) != _events(4)


def test_realistic_mix_that_round_trips_the_codec() -> None:
    events = _events(1)
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["RepChanged"] == 24 and kinds["OrderPlaced"] == 500
    for kind in ("PaymentReceived", "RefundIssued", "OrderCancelled", "CustomerChanged"):
        assert kinds[kind] > 0, kind
    for event in events:
        assert decode(encode(event)) == event  # type: ignore[arg-type]
