"""The terminal leaderboard: reads the worker's HTTP API and renders it with rich."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

from rich.table import Table

from .errors import ComstreamError


class WorkerUnavailable(ComstreamError):
    """The worker's HTTP API did not answer."""


def get_json(base_url: str, path: str, timeout: float = 5.0) -> Any:
    """GET ``base_url + path`` and parse the JSON body; decimals stay exact."""
    req = urllib.request.Request(base_url + path)
    token = os.environ.get("COMSTREAM_TOKEN")
    if token:  # the worker's API asks for one once users exist (docs/payouts.md)
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read(), parse_float=Decimal)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WorkerUnavailable(f"{base_url}{path}: {exc}") from exc


def render(board: dict[str, Any], status: dict[str, Any] | None = None) -> Table:
    """A rich table of a ``/api/leaderboard`` answer."""
    period = board.get("period") or "-"
    title = f"comstream live leaderboard - period {period}"
    table = Table(title=title, title_style="bold", expand=False)
    table.add_column("#", justify="right")
    table.add_column("rep")
    table.add_column("name")
    table.add_column("team")
    table.add_column("commission", justify="right", style="bold green")
    table.add_column("revenue base", justify="right")
    table.add_column("deltas", justify="right")
    for row in board.get("rows", []):
        table.add_row(
            str(row["rank"]),
            row["rep_id"],
            row.get("name") or "",
            row.get("team_id") or "",
            f"{Decimal(row['commission']):,.2f} {row['currency']}",
            f"{Decimal(row['revenue_base']):,.2f}",
            str(row["deltas"]),
        )
    if status:
        table.caption = (
            f"events in {status.get('events_in', 0)} · dead letters {status.get('dead_letters', 0)}"
            f" · deltas stored {status.get('deltas_stored', 0)} · updated {status.get('now', '')}"
        )
    return table
