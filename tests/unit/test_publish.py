"""``comstream publish`` refuses an over-precise line alone (SEMANTICS.md section 2,
"Precision") and still produces every good line; the producer is replaced by a recorder
(the real broker is exercised by the integration tests)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from comstream import publish
from schemas.codec import decode_event
from streams.settings import Topics

from .test_replay_cli import CASES, order, pay


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def produce(self, topic: str, key: bytes | None, value: bytes, on_delivery: Any) -> None:
        self.sent.append((topic, key, value))

    def poll(self, timeout: float) -> int:
        return 0


def test_an_over_precise_line_is_rejected_and_the_good_lines_produced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(publish, "make_producer", lambda bootstrap: recorder)
    monkeypatch.setattr(publish, "flush", lambda producer: None)
    _, events, _ = CASES["thirds-to-28-places"]
    bad = [
        pay("p-fine", "o2", "100.00001", "2026-11-04T10:00:00Z"),
        order(
            "o9",
            "2026-11-06T09:00:00Z",
            [("1", "10.0000000000001", "0")],
        ),
    ]
    lines = [*events[:5], bad[0], *events[5:], bad[1]]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))

    report = publish.publish_file(path, "unused:9092", Topics())

    assert [(r.line, r.reason) for r in report.rejected] == [
        (6, "invalid.amount_precision"),
        (len(lines), "invalid.amount_precision"),
    ]
    assert "amount: 100.00001 has more than 4 decimal places" in report.rejected[0].detail
    assert "unit_price: 10.0000000000001 has more than 12" in report.rejected[1].detail
    assert report.produced == len(events) == len(recorder.sent)
    produced = [decode_event(value).event_id for _, _, value in recorder.sent]
    assert produced == [e["event_id"] for e in events]
    placed = decode_event(recorder.sent[4][2])
    shares = [str(c.share) for c in placed.credits]  # type: ignore[attr-defined]
    assert shares == [c["share"] for c in events[4]["credits"]]  # 28 places, exactly
    assert not report.ok

    out = io.StringIO()
    publish.print_report(report, path, out)
    assert f"produced {len(events)} events" in out.getvalue()
