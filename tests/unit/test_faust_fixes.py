"""The recovery correction (streams/faust_fixes.py): the stream partitions are resumed only
after the seek to the committed offsets and after the flow control has cleared the
queues, with nothing awaited in between; it is installed on the Faust version it was
written for."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
from faust.tables.recovery import Recovery

from streams import faust_fixes


class Recorder:
    """Records the order of the calls the method makes; awaits yield to the loop, and a
    "deliver" task running meanwhile records whether the partitions were resumed then."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.resumed = False

    def call(self, name: str, result: Any = None) -> Any:
        def f(*_a: Any, **_k: Any) -> Any:
            self.calls.append(name)
            if name == "resume_partitions":
                self.resumed = True
            return result

        return f

    def coro(self, name: str) -> Any:
        async def f(*_a: Any, **_k: Any) -> None:
            self.calls.append(name)
            await asyncio.sleep(0)

        return f


def recovery(rec: Recorder) -> Any:
    changelog = ("cs-orders-changelog", 0)
    stream = ("t.orders", 0)
    consumer = SimpleNamespace(
        assignment=rec.call("assignment", {changelog, stream}),
        perform_seek=rec.coro("perform_seek"),
        resume_partitions=rec.call("resume_partitions"),
        resume_flow=rec.call("resume_flow"),
    )

    async def wait(coro: Any, timeout: float | None = None) -> None:
        await coro

    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=7,
        conf=SimpleNamespace(broker_request_timeout=30),
        on_rebalance_complete=SimpleNamespace(send=rec.coro("on_rebalance_complete")),
        flow_control=SimpleNamespace(resume=rec.call("flow_control.resume")),
        _fetcher=SimpleNamespace(maybe_start=rec.coro("fetcher.maybe_start")),
        assignor=SimpleNamespace(assigned_standbys=rec.call("assigned_standbys", set())),
        on_rebalance_end=rec.call("on_rebalance_end"),
    )
    return SimpleNamespace(
        app=app,
        log=SimpleNamespace(info=rec.call("log"), warning=rec.call("warning")),
        _set_recovery_ended=rec.call("recovery_ended"),
        tables=SimpleNamespace(
            values=lambda: [],
            on_actives_ready=rec.call("actives_ready"),
            on_standbys_ready=rec.call("standbys_ready"),
        ),
        actives_for_table={},
        standbys_for_table={},
        _wait=wait,
        completed=SimpleNamespace(set=rec.call("completed")),
        _is_changelog_tp=lambda tp: tp[0].endswith("-changelog"),
    )


def test_partitions_resume_after_the_seek_and_the_queue_clearing() -> None:
    rec = Recorder()
    resumed_while_awaiting: list[bool] = []

    async def run() -> None:
        async def deliver() -> None:  # stands for the fetcher delivering into queues
            for _ in range(20):
                resumed_while_awaiting.append(rec.resumed)
                await asyncio.sleep(0)

        task = asyncio.ensure_future(deliver())
        await faust_fixes.on_recovery_completed(recovery(rec), generation_id=7)
        await task

    asyncio.run(run())
    order = [c for c in rec.calls if c != "log"]
    seek, clear, resume = (
        order.index("perform_seek"),
        order.index("flow_control.resume"),
        order.index("resume_partitions"),
    )
    assert seek < clear < resume < order.index("resume_flow")
    # no await between the clearing and the resume: nothing could be queued in between
    assert order[clear + 1] == "resume_partitions"
    # while the seek was awaited, the stream partitions were still paused
    assert resumed_while_awaiting[:2] == [False, False]


def test_a_new_rebalance_during_recovery_resumes_nothing() -> None:
    rec = Recorder()
    r = recovery(rec)
    asyncio.run(faust_fixes.on_recovery_completed(r, generation_id=6))
    assert "resume_partitions" not in rec.calls and "warning" in rec.calls


def test_installed_on_the_version_it_was_written_for() -> None:
    assert faust.__version__ == faust_fixes.FIXED_VERSION
    assert faust_fixes.apply()
    assert Recovery.on_recovery_completed is faust_fixes.on_recovery_completed


def test_an_empty_set_of_active_partitions_drains_nothing() -> None:
    """aiokafka's fetched_records reads ``if partitions and tp not in partitions``: an
    empty set of active partitions meant every partition."""
    live: set[tuple[str, int]] = {("cs-orders-changelog", 0)}
    partitions = faust_fixes.NeverAll(live)
    stream = ("t.payments", 1)

    def drained(tp: tuple[str, int]) -> bool:  # aiokafka's test, verbatim
        return not (partitions and tp not in partitions)

    assert drained(("cs-orders-changelog", 0)) and not drained(stream)
    live.clear()  # the recovery paused the changelog partitions while a fetch waited
    assert not drained(stream) and not drained(("cs-orders-changelog", 0))
    live.add(stream)  # resumed: the live set is read, not a copy
    assert drained(stream)
    assert faust_fixes.apply()
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert AIOKafkaConsumerThread._fetch_records is faust_fixes.fetch_records
