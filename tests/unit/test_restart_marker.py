"""The clean-stop marker that lets a worker keep its local tables (streams/restart.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.restart import MARKER, ChangelogTally, mark_clean_stop, take_clean_stop
from streams.settings import Settings


def tally_of(outcomes: list[str]) -> ChangelogTally:
    """A tally of records whose futures end as given: ok, failed, cancelled or pending."""

    async def main() -> ChangelogTally:
        tally = ChangelogTally()
        loop = asyncio.get_running_loop()
        for outcome in outcomes:
            fut: asyncio.Future[int] = loop.create_future()
            tally.track(fut)
            if outcome == "ok":
                fut.set_result(1)
            elif outcome == "failed":
                fut.set_exception(RuntimeError("broker gone"))
            elif outcome == "cancelled":
                fut.cancel()
        await asyncio.sleep(0)  # done callbacks run on the next loop turn
        return tally

    return asyncio.run(main())


def test_the_tally_is_settled_only_when_every_record_was_acknowledged() -> None:
    assert tally_of([]).settled
    assert tally_of(["ok", "ok", "ok"]).settled
    for bad in ("failed", "cancelled", "pending"):
        tally = tally_of(["ok", bad, "ok"])
        assert not tally.settled, bad
        assert tally.issued == 3 and tally.acknowledged == 2


def test_a_clean_stop_is_kept_once_and_only_by_the_same_deployment(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, app_id="cs-a", partitions=3)
    assert not take_clean_stop(settings)  # a first start: nothing to keep
    assert mark_clean_stop(settings, tally_of(["ok", "ok"]))
    assert take_clean_stop(settings)
    # taken away: a run that then dies leaves no marker behind
    assert not (tmp_path / "worker" / MARKER).exists()
    assert not take_clean_stop(settings)

    assert mark_clean_stop(settings, tally_of(["ok"]))
    other = Settings(data_dir=tmp_path, app_id="cs-a", partitions=4)
    assert not take_clean_stop(other)
    assert not (tmp_path / "worker" / MARKER).exists()


def test_no_marker_when_a_record_was_not_acknowledged(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, app_id="cs-b")
    assert not mark_clean_stop(settings, tally_of(["ok", "pending"]))
    assert not mark_clean_stop(settings, tally_of(["failed"]))
    assert not take_clean_stop(settings)


def test_an_unreadable_marker_means_rebuild(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, app_id="cs-c")
    path = tmp_path / "worker" / MARKER
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert not take_clean_stop(settings)
    assert not path.exists()
