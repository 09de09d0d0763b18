"""The stall watch's clock: how long the worker's movement signature has stayed the same,
and a reset after a look that found nothing waiting."""

from __future__ import annotations

from streams.continuity import StallWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_idle_time_counts_from_the_last_change() -> None:
    clock = Clock()
    watch = StallWatch(clock)
    assert watch.idle_for((0, 0)) == 0.0  # the first signature is a change
    clock.now += 30
    assert watch.idle_for((0, 0)) == 30.0
    clock.now += 5
    assert watch.idle_for((1, 0)) == 0.0  # a message handed over
    clock.now += 61
    assert watch.idle_for((1, 0)) == 61.0


def test_a_reset_waits_a_whole_threshold_again() -> None:
    clock = Clock()
    watch = StallWatch(clock)
    watch.idle_for("same")
    clock.now += 90
    assert watch.idle_for("same") == 90.0
    watch.reset()  # looked, nothing waiting: an idle worker is not stalled
    clock.now += 10
    assert watch.idle_for("same") == 10.0
