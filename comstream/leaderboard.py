"""The terminal leaderboard: reads the worker's HTTP API and renders it with rich."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.table import Table

from .api import ApiError, WorkerUnavailable, call

__all__ = ["ApiError", "WorkerUnavailable", "get_json", "render"]


def get_json(base_url: str, path: str, timeout: float = 5.0) -> Any:
    """GET ``base_url + path`` with ``$COMSTREAM_TOKEN`` and parse the JSON body;
    decimals stay exact. Errors as :func:`comstream.api.call` raises them."""
    return call(base_url, path, timeout=timeout)


def snapshot_time(board: dict[str, Any]) -> str:
    """When the worker made ``board`` (its ``generated_at``, else now), in this
    machine's timezone: ``2026-12-04 18:05:09 CET``."""
    try:
        at = datetime.fromisoformat(str(board["generated_at"]))
    except (KeyError, ValueError):
        at = datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def render(
    board: dict[str, Any], status: dict[str, Any] | None = None, snapshot: bool = False
) -> Table:
    """A rich table of a ``/api/leaderboard`` answer: titled "live" for the demo's
    refreshing view, or, with ``snapshot``, as the figures at the time the worker
    answered (``comstream leaderboard``, printed once)."""
    period = board.get("period") or "-"
    if snapshot:
        title = f"comstream leaderboard - period {period} - as of {snapshot_time(board)}"
    else:
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
