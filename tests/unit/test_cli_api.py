"""The command line's errors from the worker's API say what to do (issue 18, item 7).

A tiny HTTP server on 127.0.0.1 answers as the worker's API answers a refusal (status
and ``{"error": ..., "code": ...}``); the commands read it through
:func:`comstream.api.call`, the one place that turns HTTP errors into messages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from comstream import cli
from comstream.api import ApiError, call
from comstream.leaderboard import render

BOARD = {
    "period": "2026-11",
    "generated_at": "2026-11-20T10:15:00.000+00:00",
    "rows": [
        {
            "rank": 1,
            "rep_id": "rep-001",
            "name": "Ann",
            "team_id": "team-east",
            "commission": "1234.50",
            "currency": "USD",
            "revenue_base": "24690.00",
            "deltas": 3,
        }
    ],
}


class Api(BaseHTTPRequestHandler):
    """``/api/leaderboard``: 401 without ``Bearer good``; ``/api/performance``: 400 with
    the server's message, as ``sinks.bi`` words a bad ``--by``."""

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        if self.path.startswith("/api/performance"):
            self._send(400, {"error": "cannot group by 'colour': expected rep, team, day"})
        elif auth != "Bearer good":
            message = "a valid bearer token is required" if auth else "authentication required"
            self._send(401, {"error": message, "code": "unauthenticated", "audit_id": "x"})
        else:
            self._send(200, BOARD)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    monkeypatch.setenv("COMSTREAM_WEB_HOST", "127.0.0.1")
    monkeypatch.setenv("COMSTREAM_WEB_PORT", str(port))
    monkeypatch.delenv("COMSTREAM_TOKEN", raising=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_no_token_says_to_set_comstream_token_and_how_to_get_one(
    api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["leaderboard"]) == 1
    err = capsys.readouterr().err
    assert "HTTP Error 401" not in err
    assert "set COMSTREAM_TOKEN=" in err
    assert "comstream users add" in err and "./run demo" in err
    with pytest.raises(ApiError) as caught:
        call(api, "/api/leaderboard")
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")


def test_a_token_the_worker_refuses_is_named_as_such(
    api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMSTREAM_TOKEN", "stale")
    assert cli.main(["leaderboard"]) == 1
    err = capsys.readouterr().err
    assert "refused the token" in err and "a valid bearer token is required" in err
    assert "active user" in err


def test_a_bad_by_prints_the_servers_message(api: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["report", "performance", "--by", "colour", "--period", "2026-11"])
    assert code == 1
    err = capsys.readouterr().err
    assert "HTTP Error 400" not in err and "Bad Request: " not in err
    assert "cannot group by 'colour': expected rep, team, day" in err


def test_the_one_shot_leaderboard_is_a_snapshot_with_its_time(
    api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMSTREAM_TOKEN", "good")
    assert cli.main(["leaderboard"]) == 0
    out = capsys.readouterr().out
    assert "live" not in out
    assert "as of 2026-11-2" in out and "rep-001" in out  # the worker's time, local zone
    # the demo's refreshing view is the live one
    assert "live" in str(render(BOARD, {}).title)


def test_no_worker_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)  # a free port, then closed
    port = server.server_address[1]
    server.server_close()
    monkeypatch.setenv("COMSTREAM_WEB_PORT", str(port))
    assert cli.main(["leaderboard"]) == 1
    err = capsys.readouterr().err
    assert "is the worker running?" in err and "comstream worker" in err
