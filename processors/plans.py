"""Commission plans (提成规则): parsing a plan document and choosing a plan for a rep.

:func:`parse_plan` turns a loaded plan document (docs/plans.md; a mapping of ``str``,
``int``, ``bool``, ``Decimal``, ``date``, lists and mappings) into an immutable
:class:`PlanVersion`. It trusts nothing: every problem raises :class:`PlanError` whose
message starts with the field path, e.g. ``rules[2].rate: 1.5 is not a fraction between 0
and 1``. Numbers may be written as ``str``, ``int`` or ``Decimal``; a ``float`` is refused
(it has already lost the literal's exact value).

:class:`PlanBook` holds every plan version known. It is immutable: :meth:`PlanBook.with_version`
returns a new book, refusing a version that would make two plans equally specific for one
rep on one date (SEMANTICS.md section 3). :meth:`PlanBook.select` chooses the plan version
for a rep on a date.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import PlanError
from .events import PlanPublished
from .messages import RepFacts
from .money import ONE, ZERO
from .periods import MONTH, PERIOD_KINDS
from .records import record

__all__ = [
    "BOOKING",
    "CONDITION_KEYS",
    "EARN_MODES",
    "FULL_PAYMENT",
    "LEVELS",
    "PAYMENT",
    "AppliesTo",
    "Band",
    "Caps",
    "Modifier",
    "PlanBook",
    "PlanRef",
    "PlanVersion",
    "RateTable",
    "Rule",
    "Test",
    "TierBand",
    "Tiers",
    "parse_plan",
    "plan_from_event",
    "plan_from_json",
]

BOOKING = "booking"
PAYMENT = "payment"
FULL_PAYMENT = "full_payment"
EARN_MODES = (BOOKING, PAYMENT, FULL_PAYMENT)

BASES = ("revenue", "margin", "quantity")
SCOPES = ("line_base", "order_total", "quantity")
METHODS = ("whole", "marginal")
TIER_METHODS = ("marginal", "retroactive")

# applies_to levels, most specific first
LEVELS = ("reps", "teams", "regions", "everyone")

_STR = "text"
_DEC = "decimal"
_INT = "integer"
CONDITION_KEYS: dict[str, str] = {
    "sku": _STR,
    "category": _STR,
    "discount": _DEC,
    "customer_tier": _STR,
    "customer_region": _STR,
    "customer_industry": _STR,
    "customer_tenure_days": _INT,
    "customer_orders_365d": _INT,
    "rep_team": _STR,
    "rep_region": _STR,
    "order_total": _DEC,
}
LINE_KEYS = frozenset({"sku", "category", "discount"})
_ORDERED_OPS = ("gt", "gte", "lt", "lte")
_OPS_BY_KIND = {
    _STR: ("eq", "ne", "in", "not_in"),
    _DEC: ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in"),
    _INT: ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in"),
}
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_DECIMAL_TEXT_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TOP_KEYS = frozenset(
    {
        "plan_id",
        "version",
        "effective_from",
        "name",
        "applies_to",
        "period",
        "timezone",
        "earn_on",
        "rules",
        "modifiers",
        "tiers",
        "caps",
    }
)

PlanRef = tuple[str, int]
"""(plan_id, version)."""


# --------------------------------------------------------------------------- model


@record
class Test:
    """One condition test: the fact ``key`` compared by ``op`` with ``value``.

    ``check`` is the compiled test applied to a known fact; a fact that is unknown (None)
    never satisfies a test, whatever the operator."""

    key: str
    op: str
    value: Any
    check: Callable[[Any], bool] = field(compare=False, repr=False)


@record
class Band:
    """A rate-table band ``[lo, hi)``; ``hi`` None is unbounded."""

    lo: Decimal
    hi: Decimal | None
    rate: Decimal


@record
class RateTable:
    scope: str  # line_base | order_total | quantity
    method: str  # whole | marginal
    bands: tuple[Band, ...]


@record
class Rule:
    """A rule: ``when`` (all tests), ``base``, and exactly one of rate, fixed, table.

    ``order_tests``/``line_tests`` split ``when`` into tests on facts that are the same for
    every line of an (order, rep) and tests on the line itself."""

    id: str
    base: str
    rate: Decimal | None
    fixed: Decimal | None
    table: RateTable | None
    when: tuple[Test, ...]
    order_tests: tuple[Test, ...]
    line_tests: tuple[Test, ...]
    rate_text: str  # as traces show it: "0.05", "2.50 per unit", "25.00 per line", "table"


@record
class Modifier:
    id: str
    multiplier: Decimal
    when: tuple[Test, ...]
    order_tests: tuple[Test, ...]
    line_tests: tuple[Test, ...]


@record
class TierBand:
    lo: Decimal
    hi: Decimal | None
    multiplier: Decimal


@record
class Tiers:
    quota: Decimal
    quota_overrides: tuple[tuple[str, Decimal], ...]
    method: str  # marginal | retroactive
    bands: tuple[TierBand, ...]

    def quota_for(self, rep_id: str) -> Decimal:
        """The rep's quota: its override, else the plan's quota."""
        for rid, quota in self.quota_overrides:
            if rid == rep_id:
                return quota
        return self.quota


@record
class Caps:
    per_order: Decimal | None
    per_period: Decimal | None


@record
class AppliesTo:
    """Whom a plan version applies to: ``level`` is one of :data:`LEVELS`; ``values`` the
    rep ids, team ids or regions (empty for ``everyone``)."""

    level: str
    values: frozenset[str]

    @property
    def rank(self) -> int:
        """0 for reps (most specific) .. 3 for everyone."""
        return LEVELS.index(self.level)

    def matches(self, rep_id: str, team_id: str | None, region: str | None) -> bool:
        if self.level == "everyone":
            return True
        if self.level == "reps":
            return rep_id in self.values
        if self.level == "teams":
            return team_id is not None and team_id in self.values
        return region is not None and region in self.values

    def overlaps(self, other: AppliesTo) -> bool:
        """Whether some rep could match both (only meaningful on the same level)."""
        return self.level == "everyone" or bool(self.values & other.values)


@record
class PlanVersion:
    """One parsed plan version (docs/plans.md). Equality compares the meaning, not the
    text: two documents that parse to the same plan are equal."""

    plan_id: str
    version: int
    effective_from: date
    name: str
    applies_to: AppliesTo
    period: str
    timezone: str
    earn_on: str
    rules: tuple[Rule, ...]
    modifiers: tuple[Modifier, ...]
    tiers: Tiers | None
    caps: Caps
    tz: tzinfo = field(compare=False, repr=False)
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Rule-matching results by line facts (a cache: it never changes an answer)."""

    @property
    def ref(self) -> PlanRef:
        return (self.plan_id, self.version)


# --------------------------------------------------------------------------- parsing


def _fail(path: str, message: str) -> PlanError:
    return PlanError(f"{path}: {message}" if path else message)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise _fail(path, f"{value!r} is not a number")
    if isinstance(value, float):
        raise _fail(
            path,
            f"{value!r} is a binary float; write it as a string or decimal so it is read exactly",
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _fail(path, f"{value} is not a finite number")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT_RE.match(text):
            raise _fail(path, f"{value!r} is not a decimal number")
        try:
            return Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the pattern excludes it
            raise _fail(path, f"{value!r} is not a decimal number") from exc
    raise _fail(path, f"expected a decimal number, got {_show(value)}")


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise _fail(path, f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise _fail(path, f"{_show(value)} is not an integer")


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, f"expected a non-empty string, got {_show(value)}")
    return value


def _ident(value: Any, path: str) -> str:
    text = _text(value, path)
    if not _ID_RE.match(text):
        raise _fail(path, f"{value!r} may contain only letters, digits, '_', '.' and '-'")
    return text


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a mapping, got {_show(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _fail(path, f"key {key!r} is not a string")
    return value


def _sequence(value: Any, path: str) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _fail(path, f"expected a list, got {_show(value)}")
    return value


def _only_keys(doc: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    allowed_set = set(allowed)
    for key in doc:
        if key not in allowed_set:
            where = f"{path}.{key}" if path else key
            raise _fail(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed_set))})")


def _choice(value: Any, choices: Sequence[str], path: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(path, f"{_show(value)} is not one of {', '.join(choices)}")
    return value


def _date(value: Any, path: str) -> date:
    if isinstance(value, datetime):
        raise _fail(path, f"{value!r} is a timestamp, not a date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise _fail(path, f"{value!r} is not a real date") from exc
    raise _fail(path, f"{_show(value)} is not a date written YYYY-MM-DD")


def _compile(op: str, value: Any) -> Callable[[Any], bool]:
    if op == "eq":
        return partial(operator.eq, value)
    if op == "ne":
        return partial(operator.ne, value)
    if op == "gt":  # fact > value  <=>  value < fact
        return partial(operator.lt, value)
    if op == "gte":
        return partial(operator.le, value)
    if op == "lt":
        return partial(operator.gt, value)
    if op == "lte":
        return partial(operator.ge, value)
    if op == "in":
        return frozenset(value).__contains__
    if op == "not_in":
        members = frozenset(value)
        return lambda fact: fact not in members
    raise AssertionError(op)  # pragma: no cover


def _condition_value(kind: str, value: Any, path: str) -> Any:
    if kind == _STR:
        return _text(value, path)
    if kind == _DEC:
        return _decimal(value, path)
    return _integer(value, path)


def _condition_list(kind: str, value: Any, path: str) -> frozenset[Any]:
    items = _sequence(value, path)
    if not items:
        raise _fail(path, "an empty list matches nothing; give at least one value")
    parsed = [_condition_value(kind, item, f"{path}[{i}]") for i, item in enumerate(items)]
    return frozenset(parsed)


def _parse_when(value: Any, path: str) -> tuple[Test, ...]:
    if value is None:
        return ()
    when = _mapping(value, path)
    tests: list[Test] = []
    for key, cond in when.items():
        here = f"{path}.{key}"
        kind = CONDITION_KEYS.get(key)
        if kind is None:
            raise _fail(
                here, f"unknown condition {key!r} (known: {', '.join(sorted(CONDITION_KEYS))})"
            )
        if isinstance(cond, Mapping):
            if not cond:
                raise _fail(here, "an empty operator map; give at least one operator")
            for op, operand in cond.items():
                allowed = _OPS_BY_KIND[kind]
                if op not in allowed:
                    raise _fail(
                        f"{here}.{op}",
                        f"{op!r} is not an operator for a {kind} condition "
                        f"(use one of {', '.join(allowed)})",
                    )
                opath = f"{here}.{op}"
                if op in ("in", "not_in"):
                    parsed: Any = _condition_list(kind, operand, opath)
                else:
                    parsed = _condition_value(kind, operand, opath)
                tests.append(Test(key, op, parsed, _compile(op, parsed)))
        elif isinstance(cond, list | tuple):
            members = _condition_list(kind, cond, here)
            tests.append(Test(key, "in", members, _compile("in", members)))
        else:
            scalar = _condition_value(kind, cond, here)
            tests.append(Test(key, "eq", scalar, _compile("eq", scalar)))
    return tuple(tests)


def _split(tests: tuple[Test, ...]) -> tuple[tuple[Test, ...], tuple[Test, ...]]:
    order = tuple(t for t in tests if t.key not in LINE_KEYS)
    line = tuple(t for t in tests if t.key in LINE_KEYS)
    return order, line


def _rate(value: Any, base: str, path: str) -> Decimal:
    rate = _decimal(value, path)
    if base == "quantity":
        if rate < 0:
            raise _fail(
                path, f"{rate} is negative; a rate on quantity is an amount per unit, 0 or more"
            )
    elif not ZERO <= rate <= ONE:
        raise _fail(path, f"{rate} is not a fraction between 0 and 1")
    return rate


def _bands(
    value: Any, path: str, value_key: str, parse_value: Callable[[Any, str], Decimal]
) -> list[tuple[Decimal, Decimal | None, Decimal]]:
    items = _sequence(value, path)
    if not items:
        raise _fail(path, "needs at least one band")
    out: list[tuple[Decimal, Decimal | None, Decimal]] = []
    prev_hi: Decimal | None = None
    for i, raw in enumerate(items):
        here = f"{path}[{i}]"
        band = _mapping(raw, here)
        _only_keys(band, ("from", "to", value_key), here)
        if "from" not in band:
            raise _fail(here, "missing 'from'")
        if value_key not in band:
            raise _fail(here, f"missing {value_key!r}")
        lo = _decimal(band["from"], f"{here}.from")
        if i == 0 and lo != 0:
            raise _fail(f"{here}.from", f"the first band must start at 0, not {lo}")
        if i > 0:
            if prev_hi is None:  # pragma: no cover - caught below for the previous band
                raise _fail(here, "follows an unbounded band")
            if lo != prev_hi:
                raise _fail(
                    f"{here}.from",
                    f"{lo} does not continue the previous band, which ends at {prev_hi}",
                )
        hi: Decimal | None = None
        if "to" in band and band["to"] is not None:
            hi = _decimal(band["to"], f"{here}.to")
            if hi <= lo:
                raise _fail(f"{here}.to", f"{hi} is not above this band's from {lo}")
        elif i != len(items) - 1:
            raise _fail(here, "only the last band may be unbounded (no 'to')")
        out.append((lo, hi, parse_value(band[value_key], f"{here}.{value_key}")))
        prev_hi = hi
    return out


def _parse_table(value: Any, base: str, path: str) -> RateTable:
    table = _mapping(value, path)
    _only_keys(table, ("scope", "method", "bands"), path)
    for key in ("scope", "method", "bands"):
        if key not in table:
            raise _fail(path, f"missing {key!r}")
    scope = _choice(table["scope"], SCOPES, f"{path}.scope")
    method = _choice(table["method"], METHODS, f"{path}.method")
    bands = _bands(table["bands"], f"{path}.bands", "rate", lambda v, p: _rate(v, base, p))
    return RateTable(scope, method, tuple(Band(lo, hi, rate) for lo, hi, rate in bands))


def _parse_rule(value: Any, path: str) -> Rule:
    doc = _mapping(value, path)
    _only_keys(doc, ("id", "when", "base", "rate", "fixed", "table"), path)
    if "id" not in doc:
        raise _fail(path, "missing 'id'")
    rule_id = _ident(doc["id"], f"{path}.id")
    if "base" not in doc:
        raise _fail(path, "missing 'base' (revenue, margin or quantity)")
    base = _choice(doc["base"], BASES, f"{path}.base")
    given = [k for k in ("rate", "fixed", "table") if k in doc]
    if len(given) != 1:
        if not given:
            raise _fail(path, "needs one of 'rate', 'fixed' or 'table'")
        raise _fail(path, f"has {' and '.join(given)}; give exactly one of rate, fixed, table")
    rate = fixed = None
    table = None
    if "rate" in doc:
        rate = _rate(doc["rate"], base, f"{path}.rate")
    elif "fixed" in doc:
        fixed = _decimal(doc["fixed"], f"{path}.fixed")
        if fixed < 0:
            raise _fail(f"{path}.fixed", f"{fixed} is negative; a fixed amount is 0 or more")
    else:
        table = _parse_table(doc["table"], base, f"{path}.table")
    when = _parse_when(doc.get("when"), f"{path}.when")
    order_tests, line_tests = _split(when)
    if rate is not None:
        text = f"{rate} per unit" if base == "quantity" else str(rate)
    elif fixed is not None:
        text = f"{fixed} per line"
    else:
        text = "table"
    return Rule(rule_id, base, rate, fixed, table, when, order_tests, line_tests, text)


def _parse_modifier(value: Any, path: str) -> Modifier:
    doc = _mapping(value, path)
    _only_keys(doc, ("id", "when", "multiplier"), path)
    if "id" not in doc:
        raise _fail(path, "missing 'id'")
    mod_id = _ident(doc["id"], f"{path}.id")
    if "multiplier" not in doc:
        raise _fail(path, "missing 'multiplier'")
    multiplier = _decimal(doc["multiplier"], f"{path}.multiplier")
    if multiplier < 0:
        raise _fail(f"{path}.multiplier", f"{multiplier} is negative; a multiplier is 0 or more")
    when = _parse_when(doc.get("when"), f"{path}.when")
    order_tests, line_tests = _split(when)
    return Modifier(mod_id, multiplier, when, order_tests, line_tests)


def _positive(value: Any, path: str) -> Decimal:
    amount = _decimal(value, path)
    if amount <= 0:
        raise _fail(path, f"{amount} is not more than 0")
    return amount


def _parse_tiers(value: Any, path: str) -> Tiers:
    doc = _mapping(value, path)
    _only_keys(doc, ("quota", "quota_overrides", "method", "bands"), path)
    for key in ("quota", "method", "bands"):
        if key not in doc:
            raise _fail(path, f"missing {key!r}")
    quota = _positive(doc["quota"], f"{path}.quota")
    overrides: list[tuple[str, Decimal]] = []
    raw_overrides = doc.get("quota_overrides")
    if raw_overrides is not None:
        for rep_id, amount in _mapping(raw_overrides, f"{path}.quota_overrides").items():
            here = f"{path}.quota_overrides.{rep_id}"
            overrides.append((_text(rep_id, here), _positive(amount, here)))
    method = _choice(doc["method"], TIER_METHODS, f"{path}.method")

    def multiplier(v: Any, p: str) -> Decimal:
        m = _decimal(v, p)
        if m < 0:
            raise _fail(p, f"{m} is negative; a multiplier is 0 or more")
        return m

    bands = _bands(doc["bands"], f"{path}.bands", "multiplier", multiplier)
    return Tiers(
        quota,
        tuple(sorted(overrides)),
        method,
        tuple(TierBand(lo, hi, m) for lo, hi, m in bands),
    )


def _parse_caps(value: Any, path: str) -> Caps:
    doc = _mapping(value, path)
    _only_keys(doc, ("per_order", "per_period"), path)
    if not doc:
        raise _fail(path, "give per_order, per_period or both")
    per_order = doc.get("per_order")
    per_period = doc.get("per_period")
    return Caps(
        None if per_order is None else _positive(per_order, f"{path}.per_order"),
        None if per_period is None else _positive(per_period, f"{path}.per_period"),
    )


def _parse_applies_to(value: Any, path: str) -> AppliesTo:
    doc = _mapping(value, path)
    _only_keys(doc, LEVELS, path)
    if len(doc) != 1:
        raise _fail(path, "give exactly one of everyone, reps, teams, regions")
    ((level, raw),) = doc.items()
    if level == "everyone":
        if raw is not True:
            raise _fail(f"{path}.everyone", f"must be true, got {_show(raw)}")
        return AppliesTo("everyone", frozenset())
    items = _sequence(raw, f"{path}.{level}")
    if not items:
        raise _fail(f"{path}.{level}", "an empty list applies to nobody")
    names = [_text(v, f"{path}.{level}[{i}]") for i, v in enumerate(items)]
    if len(set(names)) != len(names):
        raise _fail(f"{path}.{level}", "lists a name more than once")
    return AppliesTo(level, frozenset(names))


@lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def parse_plan(doc: Mapping[str, Any]) -> PlanVersion:
    """Parse a loaded plan document (docs/plans.md) into a :class:`PlanVersion`.

    Defaults: ``period: month``, ``timezone: UTC``, ``earn_on: payment``. Raises
    :class:`PlanError` naming the field path for anything invalid: unknown keys, missing
    fields, wrong types, floats, rates outside [0, 1] on revenue or margin, negative
    amounts, bands that do not start at 0 or are not contiguous, duplicate ids, unknown
    time zones, conditions on unknown facts or with operators their type does not allow.
    """
    root = _mapping(doc, "")
    _only_keys(root, _TOP_KEYS, "")
    for key in ("plan_id", "version", "effective_from", "applies_to", "rules"):
        if key not in root:
            raise _fail(key, "is required")
    plan_id = _ident(root["plan_id"], "plan_id")
    version = _integer(root["version"], "version")
    if version < 1:
        raise _fail("version", f"{version} is not 1 or more")
    effective_from = _date(root["effective_from"], "effective_from")
    name = root.get("name", "")
    if not isinstance(name, str):
        raise _fail("name", f"expected text, got {_show(name)}")
    applies_to = _parse_applies_to(root["applies_to"], "applies_to")
    period = _choice(root.get("period", MONTH), PERIOD_KINDS, "period")
    tz_name = root.get("timezone", "UTC")
    if not isinstance(tz_name, str) or not tz_name:
        raise _fail("timezone", f"{_show(tz_name)} is not a time zone name")
    try:
        tz = _zone(tz_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _fail("timezone", f"{tz_name!r} is not a known IANA time zone") from exc
    earn_on = _choice(root.get("earn_on", PAYMENT), EARN_MODES, "earn_on")

    raw_rules = _sequence(root["rules"], "rules")
    if not raw_rules:
        raise _fail("rules", "needs at least one rule")
    rules = tuple(_parse_rule(r, f"rules[{i}]") for i, r in enumerate(raw_rules))
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.id in seen:
            raise _fail(
                f"rules[{i}].id", f"{rule.id!r} is already the id of rules[{seen[rule.id]}]"
            )
        seen[rule.id] = i

    modifiers: tuple[Modifier, ...] = ()
    if root.get("modifiers") is not None:
        raw_mods = _sequence(root["modifiers"], "modifiers")
        modifiers = tuple(_parse_modifier(m, f"modifiers[{i}]") for i, m in enumerate(raw_mods))
        seen = {}
        for i, mod in enumerate(modifiers):
            if mod.id in seen:
                raise _fail(
                    f"modifiers[{i}].id",
                    f"{mod.id!r} is already the id of modifiers[{seen[mod.id]}]",
                )
            seen[mod.id] = i

    tiers = None if root.get("tiers") is None else _parse_tiers(root["tiers"], "tiers")
    caps = Caps(None, None) if root.get("caps") is None else _parse_caps(root["caps"], "caps")
    return PlanVersion(
        plan_id=plan_id,
        version=version,
        effective_from=effective_from,
        name=name,
        applies_to=applies_to,
        period=period,
        timezone=tz_name,
        earn_on=earn_on,
        rules=rules,
        modifiers=modifiers,
        tiers=tiers,
        caps=caps,
        tz=tz,
    )


@lru_cache(maxsize=512)
def plan_from_json(definition: str) -> PlanVersion:
    """Parse a plan document given as JSON text (numbers are read as ``Decimal``, never
    as floats). Raises :class:`PlanError` for text that is not JSON or not a valid plan."""
    try:
        doc = json.loads(definition, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        raise PlanError(f"definition: not valid JSON: {exc}") from exc
    return parse_plan(doc)


def plan_from_event(event: PlanPublished) -> PlanVersion:
    """The plan version a :class:`PlanPublished` event carries.

    Raises :class:`PlanError` when the definition does not parse, or when its plan_id,
    version or effective_from differ from the event's own fields."""
    plan = plan_from_json(event.definition)
    if plan.plan_id != event.plan_id:
        raise PlanError(
            f"plan_id: the definition says {plan.plan_id!r}, the event {event.plan_id!r}"
        )
    if plan.version != event.version:
        raise PlanError(f"version: the definition says {plan.version}, the event {event.version}")
    if plan.effective_from != event.effective_from:
        raise PlanError(
            f"effective_from: the definition says {plan.effective_from}, "
            f"the event {event.effective_from}"
        )
    return plan


# --------------------------------------------------------------------------- plan book


def _in_effect(versions: Sequence[PlanVersion], on: date) -> PlanVersion | None:
    """The latest version (highest number) whose effective_from is not after ``on``;
    ``versions`` sorted by version, descending."""
    for plan in versions:
        if plan.effective_from <= on:
            return plan
    return None


class PlanBook:
    """Every plan version known; immutable (operations return a new book).

    Invariant: no two plans are equally specific for one rep on one date. Selection
    results are cached per book (a cache is not state: it never changes an answer).
    """

    __slots__ = ("_by_plan", "_cache", "_count_tests", "_refs", "_versions")

    def __init__(self, versions: Iterable[PlanVersion] = ()) -> None:
        by_plan: dict[str, list[PlanVersion]] = {}
        refs: dict[PlanRef, PlanVersion] = {}
        for plan in versions:
            if plan.ref in refs:
                raise PlanError(f"plan {plan.plan_id} version {plan.version} given twice")
            refs[plan.ref] = plan
            by_plan.setdefault(plan.plan_id, []).append(plan)
        self._refs = refs
        self._by_plan = {
            pid: tuple(sorted(vs, key=lambda p: p.version, reverse=True))
            for pid, vs in by_plan.items()
        }
        self._versions = tuple(refs.values())
        self._cache: dict[tuple[str, str | None, str | None, date], PlanVersion | None] = {}
        self._count_tests: tuple[Test, ...] | None = None

    def count_matters(self, before: int, after: int) -> bool:
        """Whether some rule or modifier of some version tells a customer with ``before``
        earlier orders in 365 days from one with ``after`` (a count restatement that no
        condition can see changes no amount)."""
        tests = self._count_tests
        if tests is None:
            whens = [r.when for p in self._versions for r in p.rules]
            whens += [m.when for p in self._versions for m in p.modifiers]
            tests = self._count_tests = tuple(
                t for when in whens for t in when if t.key == "customer_orders_365d"
            )
        return any(t.check(before) != t.check(after) for t in tests)

    @property
    def versions(self) -> tuple[PlanVersion, ...]:
        """Every version, in the order they were added."""
        return self._versions

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, ref: object) -> bool:
        return ref in self._refs

    def get(self, plan_id: str, version: int) -> PlanVersion | None:
        """The version ``(plan_id, version)``, or None when unknown."""
        return self._refs.get((plan_id, version))

    def with_version(self, plan: PlanVersion) -> PlanBook:
        """A book that also holds ``plan``.

        Publishing the same version again with the same meaning returns this book.
        Raises :class:`PlanError` when the version was published with a different
        definition, or when it makes two plans equally specific for one rep on one date.
        """
        existing = self._refs.get(plan.ref)
        if existing is not None:
            if existing == plan:
                return self
            raise PlanError(
                f"plan {plan.plan_id} version {plan.version} was already published "
                "with a different definition; publish a new version instead"
            )
        book = PlanBook((*self._versions, plan))
        book._check_conflicts(plan.plan_id)
        return book

    def _check_conflicts(self, plan_id: str) -> None:
        mine = self._by_plan[plan_id]
        for other_id, theirs in self._by_plan.items():
            if other_id == plan_id:
                continue
            start = max(min(p.effective_from for p in mine), min(p.effective_from for p in theirs))
            dates = sorted(
                {p.effective_from for p in (*mine, *theirs) if p.effective_from >= start} | {start}
            )
            for on in dates:
                a = _in_effect(mine, on)
                b = _in_effect(theirs, on)
                if a is None or b is None:
                    continue
                if a.applies_to.level == b.applies_to.level and a.applies_to.overlaps(b.applies_to):
                    shared = sorted(a.applies_to.values & b.applies_to.values)
                    who = f" ({', '.join(shared)})" if shared else ""
                    raise PlanError(
                        f"applies_to: plan {a.plan_id} version {a.version} and plan "
                        f"{b.plan_id} version {b.version} are equally specific "
                        f"({a.applies_to.level}{who}) on {on.isoformat()}; "
                        "a rep would have two plans"
                    )

    def select(self, rep: RepFacts, on: date) -> PlanVersion | None:
        """The plan version for a rep on date ``on`` (SEMANTICS.md section 3).

        For each plan, the version in effect on ``on`` is its highest version whose
        effective_from is not after ``on``; among those whose ``applies_to`` matches the
        rep, the most specific wins (rep, team, region, everyone). None when no plan
        applies."""
        rep_id, team_id, region = rep.rep_id, rep.team_id, rep.region
        key = (rep_id, team_id, region, on)
        cache = self._cache
        if key in cache:
            return cache[key]
        best: PlanVersion | None = None
        best_rank = len(LEVELS)
        for versions in self._by_plan.values():
            plan = _in_effect(versions, on)
            if plan is None or not plan.applies_to.matches(rep_id, team_id, region):
                continue
            rank = plan.applies_to.rank
            if rank < best_rank or (
                rank == best_rank and best is not None and plan.plan_id < best.plan_id
            ):
                best, best_rank = plan, rank
        cache[key] = best
        return best
