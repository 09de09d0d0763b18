"""The clean-stop marker that lets a worker keep its local tables (streams/restart.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from streams.restart import MARKER, ChangelogTally, Marks, mark_clean_stop, take_clean_stop
from streams.settings import Settings

AT_STOP: Marks = {
    "cs-a-orders-changelog": {"id": "t1", "ends": [10, 0, 7]},
    "cs-a-customers-changelog": {"id": "t2", "ends": [3, 3, 3]},
}


def reads(marks: Marks) -> Callable[[Settings], Marks]:
    """What the broker says about the changelogs (``streams.restart.changelog_marks``)."""
    return lambda settings: marks


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
    assert not take_clean_stop(settings, reads(AT_STOP))  # a first start: nothing to keep
    assert mark_clean_stop(settings, tally_of(["ok", "ok"]), reads(AT_STOP))
    assert take_clean_stop(settings, reads(AT_STOP))
    # taken away: a run that then dies leaves no marker behind
    assert not (tmp_path / "worker" / MARKER).exists()
    assert not take_clean_stop(settings, reads(AT_STOP))

    assert mark_clean_stop(settings, tally_of(["ok"]), reads(AT_STOP))
    other = Settings(data_dir=tmp_path, app_id="cs-a", partitions=4)
    assert not take_clean_stop(other, reads(AT_STOP))
    assert not (tmp_path / "worker" / MARKER).exists()


def test_the_tables_are_kept_only_over_the_same_changelogs(tmp_path: Path) -> None:
    """Other workers may have added records; a topic created again, with other
    partitions, or ending earlier (a cluster reset) means the tables are rebuilt."""
    settings = Settings(data_dir=tmp_path, app_id="cs-a", partitions=3)
    grown: Marks = {**AT_STOP, "cs-a-orders-changelog": {"id": "t1", "ends": [12, 5, 7]}}
    recreated: Marks = {**AT_STOP, "cs-a-orders-changelog": {"id": "t9", "ends": [10, 0, 7]}}
    shorter: Marks = {**AT_STOP, "cs-a-customers-changelog": {"id": "t2", "ends": [3, 2, 3]}}
    wider: Marks = {**AT_STOP, "cs-a-customers-changelog": {"id": "t2", "ends": [3, 3, 3, 0]}}
    gone: Marks = {"cs-a-orders-changelog": AT_STOP["cs-a-orders-changelog"]}
    for now, keep in ((grown, True), (recreated, False), (shorter, False), (wider, False)):
        assert mark_clean_stop(settings, tally_of(["ok"]), reads(AT_STOP))
        assert take_clean_stop(settings, reads(now)) is keep, now
    assert mark_clean_stop(settings, tally_of(["ok"]), reads(AT_STOP))
    assert not take_clean_stop(settings, reads(gone))


def test_a_broker_that_cannot_answer_means_rebuild(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, app_id="cs-a")

    def unreachable(settings: Settings) -> Marks:
        raise RuntimeError("no broker")

    assert not mark_clean_stop(settings, tally_of(["ok"]), unreachable)
    assert not (tmp_path / "worker" / MARKER).exists()
    assert mark_clean_stop(settings, tally_of(["ok"]), reads(AT_STOP))
    assert not take_clean_stop(settings, unreachable)


def test_no_marker_when_a_record_was_not_acknowledged(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, app_id="cs-b")
    assert not mark_clean_stop(settings, tally_of(["ok", "pending"]), reads(AT_STOP))
    assert not mark_clean_stop(settings, tally_of(["failed"]), reads(AT_STOP))
    assert not take_clean_stop(settings, reads(AT_STOP))


def test_an_unreadable_marker_means_rebuild(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, app_id="cs-c")
    path = tmp_path / "worker" / MARKER
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert not take_clean_stop(settings, reads(AT_STOP))
    assert not path.exists()
    # a marker that does not say which changelogs it saw
    path.write_text('{"identity": {"app_id": "cs-c", "partitions": 4}}')
    assert not take_clean_stop(settings, reads(AT_STOP))
    assert not path.exists()
