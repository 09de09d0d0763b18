"""The pure commission domain: plans and rules, crediting, earning, tiers, deltas, and the
state each keyed stage keeps (SEMANTICS.md sections 1-6 and 8).

Standard library only, no I/O. Every state and message is an immutable record
(:func:`processors.records.record`: a slotted dataclass that mypy treats as frozen) that
:mod:`processors.serde` turns into bytes and back; money is ``Decimal``; times are
timezone-aware.

- :mod:`processors.events` — input events and :class:`~processors.events.CommissionDelta`
- :mod:`processors.validation` — ``validate_event(event) -> DeadLetter | None``
- :mod:`processors.plans` — ``parse_plan``, ``plan_from_event``, :class:`PlanBook`
- :mod:`processors.rules` — the commission C of one (order, rep), with its trace
- :mod:`processors.customers` — customer stage: crediting and snapshots
- :mod:`processors.orders` — order stage: earning, clawbacks, plan adjustments
- :mod:`processors.reps` / :mod:`processors.tiers` — rep-period stage: tiers, period caps
- :mod:`processors.stages` — routing: which stage and key each input and output goes to
- :mod:`processors.engine` — :class:`Engine`, the stages composed in memory (batch replay)
- :mod:`processors.serde` — bytes for states and stage messages
- :mod:`processors.storage` — how a keyed store holds the states that grow with history
  (a head plus entries), applied with ``get``/``put`` callables (no I/O of its own)
"""
