"""``Engine.process_batch``: the same outputs and states as one ``process`` per event,
the collector paused only inside a batch, and no garbage cycles left behind (the reason
pausing it is safe)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.engine_bench import START, Mix, plan_event
from processors import serde
from processors.engine import Engine
from processors.events import Event

from .test_properties import World, worlds


def _stream(seed: int, events: int) -> list[Event]:
    mix = Mix(seed=seed)
    return [*mix.dimensions(), *mix.events(events)]


def _states(engine: Engine) -> list[bytes]:
    found: list[Any] = [
        *(engine.customer_state(k) for k in sorted(engine.customer_states())),
        *(engine.order_state(k) for k in sorted(engine.order_states())),
    ]
    return [serde.dumps(s) for s in found]


def test_a_batch_gives_what_one_call_per_event_gives() -> None:
    events = _stream(3, 4_000)
    one_by_one = Engine()
    expected = [o for e in events for o in one_by_one.process(e)]
    batched = Engine()
    got = [
        o for i in range(0, len(events), 700) for o in batched.process_batch(events[i : i + 700])
    ]
    assert [serde.dumps(o) for o in got] == [serde.dumps(o) for o in expected]
    assert batched.totals() == one_by_one.totals()
    assert _states(batched) == _states(one_by_one)
    assert len(got) > 1_000  # the stream exercised the engine


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(max_orders=4), cut=st.integers(min_value=0, max_value=40))
def test_any_cut_into_batches_gives_the_same_outputs(world: World, cut: int) -> None:
    events = world.events()
    expected = Engine().process_all(events)
    engine = Engine()
    got = engine.process_batch(events[:cut]) + engine.process_batch(events[cut:])
    assert [serde.dumps(o) for o in got] == [serde.dumps(o) for o in expected]


def test_the_engine_leaves_no_garbage_cycles() -> None:
    """Why pausing the collector inside a batch is safe: everything the engine drops is
    freed by reference counting, so a collection after a whole run finds nothing."""
    events = _stream(5, 6_000)
    engine = Engine()
    gc.collect()
    engine.process_batch(events)
    assert gc.collect() == 0
    assert len(engine.deltas) > 1_000


def test_the_collector_is_paused_in_a_batch_and_restored_after() -> None:
    engine = Engine()
    seen: list[bool] = []

    def events() -> Any:
        yield plan_event(
            {
                "plan_id": "p",
                "version": 1,
                "effective_from": "2026-01-01",
                "applies_to": {"everyone": True},
                "rules": [{"id": "all", "base": "revenue", "rate": "0.1"}],
            },
            START,
        )
        seen.append(gc.isenabled())

    assert gc.isenabled()
    engine.process_batch(events())
    assert seen == [False]
    assert gc.isenabled()

    def failing() -> Any:
        yield from ()
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        engine.process_batch(failing())
    assert gc.isenabled()
    gc.disable()
    try:
        engine.process_batch([])
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
