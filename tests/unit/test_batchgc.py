"""The batch-run GC policy: long-lived objects frozen every N events, nothing leaked."""

from __future__ import annotations

import gc
import weakref

import pytest

from comstream.batchgc import LongLivedGC, PausedGC


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_freezes_every_n_ticks_and_unfreezes_on_exit() -> None:
    gc.unfreeze()
    kept = []
    with LongLivedGC(every=3) as collector:
        after_enter = gc.get_freeze_count()
        kept.append([Node() for _ in range(100)])  # state built after the first freeze
        collector.tick()
        collector.tick()
        assert gc.get_freeze_count() == after_enter  # 2 of 3 ticks: not yet
        collector.tick()
        assert gc.get_freeze_count() >= after_enter + 100  # the new state is frozen
    assert gc.get_freeze_count() == 0


def test_a_cycle_made_during_the_run_is_collected() -> None:
    with LongLivedGC(every=1) as collector:
        a, b = Node(), Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        collector.tick()  # the cycle is frozen while still referenced
        del a, b
        gc.collect()
    gc.collect()
    assert probe() is None


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LongLivedGC(every=0)


def test_paused_gc_pauses_the_collector_and_restores_it() -> None:
    assert gc.isenabled()
    with PausedGC():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with PausedGC():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()
    assert gc.get_freeze_count() == 0  # nothing is left frozen


def test_a_cycle_made_while_paused_is_collected_after() -> None:
    with PausedGC():
        a, b = Node(), Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
        assert probe() is not None  # no collection while paused
    gc.collect()
    assert probe() is None
