"""Plan files: load, validate and canonicalise commission plan documents (docs/plans.md).

A plan file is one YAML document. :func:`load_plan_file` reads it *exactly*: integers
become ``int``, every other number becomes ``Decimal`` built from its literal text (never a
float), and unquoted dates stay the text ``YYYY-MM-DD``. The document is then checked
against ``schemas/plan.schema.json`` and against what a schema cannot say (rates between 0
and 1, contiguous bands, unique ids, real dates and time zones...). Every problem in the
file is reported at once, each as ``FILE:LINE: FIELD_PATH: message``, the line being the
1-based line of the offending key or value in the YAML file::

    plans/standard.yaml:14: rules[2].rate: 1.5 is not a fraction between 0 and 1

A valid document is returned in its *loaded form*: every decimal field (rates, fixed
amounts, band bounds, multipliers, quotas, caps, ``discount`` and ``order_total``
condition values) is a ``Decimal``, whether the file wrote it as a string or a number, and
the defaults (``period: month``, ``timezone: UTC``, ``earn_on: payment``) are filled in.

:func:`plan_to_definition` turns a document into the canonical JSON text carried in the
``definition`` field of a PlanPublished event (sorted keys, no whitespace, decimals as
strings keeping their digits, e.g. ``"0.10"``); :func:`definition_to_doc` reads it back,
validated, into the loaded form.
"""

from __future__ import annotations

import difflib
import json
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from .errors import ComstreamError

__all__ = [
    "PlanFileError",
    "PlanProblem",
    "definition_to_doc",
    "load_plan_file",
    "parse_plan_text",
    "plan_schema",
    "plan_to_definition",
    "validate_plan",
]

JsonPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indices, from the root."""

_DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"  # the schema's pattern for decimal strings
_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DECIMAL_RE = re.compile(_DECIMAL_PATTERN)
_DATE_RE = re.compile(_DATE_PATTERN)
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_DEFINITION_SOURCE = "<definition>"


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class PlanProblem:
    """One problem in a plan document.

    ``line`` is the 1-based line in the YAML file of the offending key or value, or
    ``None`` when there is no line to name (a JSON definition, an unreadable file).
    ``field`` is the field path (``rules[2].rate``), ``(document)`` for the document as a
    whole, ``(yaml)`` for YAML syntax and ``(file)`` for reading the file.
    """

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


class PlanFileError(ComstreamError):
    """A plan document that cannot be used; ``problems`` lists every problem found.

    ``str(error)`` is one ``FILE:LINE: FIELD_PATH: message`` line per problem, in file
    order.
    """

    def __init__(self, problems: Sequence[PlanProblem]) -> None:
        self.problems: list[PlanProblem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- YAML


MAX_NESTING = 64
"""Lists and mappings nested deeper than this are refused (the composer recurses)."""


class _PlanLoader(yaml.SafeLoader):
    """A SafeLoader that never makes a float or a date, and takes no anchors, aliases or
    deep nesting.

    Resolution of plain scalars, replacing YAML 1.1's: ``true``/``false`` are booleans
    (but ``yes``, ``no``, ``on``, ``off`` stay text), decimal integers without leading
    zeros are ``int``, other numbers are ``Decimal`` from their literal text, and dates
    stay text. Explicit ``!!float`` / ``!!int`` / ``!!timestamp`` tags follow the same
    rules.

    Anchors (``&name``) and aliases (``*name``) are refused where they appear: a few
    hundred bytes of aliases to aliases ("billion laughs") expand to billions of nodes
    that every walk of the document would visit, and a plan needs no shared parts.
    Nesting deeper than :data:`MAX_NESTING` is refused too, before the recursive
    composer could exhaust the stack.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases (&name, *name) are not accepted in a plan: write the "
                "value out where it is used",
                event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"lists and mappings nested deeper than {MAX_NESTING} levels",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_REPLACED_TAGS = frozenset(
    {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
    }
)
_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PlanLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_PlanLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"),
    list("-+0123456789"),
)
_PlanLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^[-+]?(?:
              [0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            | \.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
            | [0-9][0-9_]*[eE][-+]?[0-9]+
            )$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def _scalar_text(loader: _PlanLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        found = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
        raise yaml.constructor.ConstructorError(
            None, None, f"expected a single value, found {found}", node.start_mark
        )
    return loader.construct_scalar(node)


def _construct_bool(loader: _PlanLoader, node: yaml.Node) -> bool:
    text = _scalar_text(loader, node)
    if text.lower() not in ("true", "false"):
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a boolean (true or false)", node.start_mark
        )
    return text.lower() == "true"


def _construct_int(loader: _PlanLoader, node: yaml.Node) -> int:
    text = _scalar_text(loader, node)
    try:
        return int(text, 10)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a decimal integer", node.start_mark
        ) from None


def _construct_decimal(loader: _PlanLoader, node: yaml.Node) -> Decimal:
    text = _scalar_text(loader, node)
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a finite decimal number", node.start_mark
        )
    return value


def _construct_text(loader: _PlanLoader, node: yaml.Node) -> str:
    return _scalar_text(loader, node)


_PlanLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_PlanLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_PlanLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_PlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)


def _line_of_offset(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1


def _yaml_problem(source: str, text: str, exc: yaml.YAMLError) -> PlanProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            ctx = exc.context_mark
            where = f" at line {ctx.line + 1}" if ctx is not None and ctx is not mark else ""
            message = f"{exc.problem} ({exc.context}{where})"
        line = mark.line + 1 if mark is not None else None
        return PlanProblem(source, line, "(yaml)", message)
    if isinstance(exc, yaml.reader.ReaderError):
        return PlanProblem(source, _line_of_offset(text, exc.position), "(yaml)", f"{exc.reason}")
    return PlanProblem(source, None, "(yaml)", str(exc))


def _node_key(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _structure_problems(root: yaml.Node) -> list[tuple[JsonPath, str, int]]:
    """Duplicate keys and recursive aliases, which construction would hide or choke on."""
    found: list[tuple[JsonPath, str, int]] = []
    active: set[int] = set()

    def walk(node: yaml.Node, path: JsonPath) -> None:
        if id(node) in active:
            found.append((path, "refers to itself through an alias", node.start_mark.line + 1))
            return
        active.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = _node_key(key_node)
                if key is not None and key != "<<":
                    line = key_node.start_mark.line + 1
                    if key in first_line:
                        found.append(
                            (
                                (*path, key),
                                f"duplicate key {key!r} (first given on line {first_line[key]})",
                                line,
                            )
                        )
                    else:
                        first_line[key] = line
                walk(value_node, (*path, key if key is not None else "?"))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))
        active.discard(id(node))

    walk(root, ())
    return found


def _mark_line(root: yaml.Node | None, path: JsonPath) -> int | None:
    """The 1-based line of the deepest node on ``path`` (a key's line for a mapping step)."""
    if root is None:
        return None
    node: yaml.Node = root
    line = root.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):  # the last one wins, as loaded
                if _node_key(key_node) == str(step):
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                break
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


# --------------------------------------------------------------------------- schema


@cache
def plan_schema() -> dict[str, Any]:
    """The plan JSON Schema (``schemas/plan.schema.json``), loaded once."""
    text = resources.files("schemas").joinpath("plan.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Any:
    schema = plan_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _resolve(schema: Any) -> dict[str, Any]:
    """Follow local ``$ref`` s ("#/$defs/...") to the schema they name."""
    defs: dict[str, Any] = plan_schema()["$defs"]
    current: Any = schema
    while isinstance(current, dict) and "$ref" in current:
        ref = str(current["$ref"])
        current = defs[ref.removeprefix("#/$defs/")]
    return current if isinstance(current, dict) else {}


def _show(value: Any) -> str:
    """A value as a reader wrote it: text quoted, numbers and booleans plain."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (nothing)"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "nothing",
}
_TYPE_PHRASES = {
    ("number", "string"): 'a decimal number such as "0.05"',
    ("array", "object", "string"): "text, a list of texts, or a map of operators",
    ("array", "number", "object", "string"): "a decimal, a list of decimals, or a map of operators",
    ("array", "integer", "object"): "a whole number, a list of them, or a map of operators",
}


def _expected(types: Any) -> str:
    if isinstance(types, str):
        return _TYPE_WORDS.get(types, types)
    key = tuple(sorted(str(t) for t in types))
    return _TYPE_PHRASES.get(key) or " or ".join(_TYPE_WORDS.get(t, t) for t in key)


def _did_you_mean(word: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _schema_problems(doc: Any) -> Iterator[tuple[JsonPath, str]]:
    for error in _validator().iter_errors(doc):
        yield from _render_schema_error(error)


def _render_schema_error(error: Any) -> Iterator[tuple[JsonPath, str]]:
    path: JsonPath = tuple(error.absolute_path)
    kind: str = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}

    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        for key in instance:
            if key in allowed:
                continue
            if "eq" in allowed:  # an operator map of a condition
                yield (
                    (*path, key),
                    f"{key!r} is not an operator here; use one of {', '.join(allowed)}",
                )
            else:
                hint = _did_you_mean(key, allowed) or f" (allowed: {', '.join(allowed)})"
                yield (*path, key), f"unknown key {key!r}{hint}"
    elif kind == "required" and isinstance(instance, dict):
        for key in value:
            if key not in instance:
                yield (*path, key), "is required but missing"
    elif kind == "oneOf" and isinstance(instance, dict):
        choices = [
            sub["required"][0]
            for sub in value
            if isinstance(sub, dict) and list(sub) == ["required"] and len(sub["required"]) == 1
        ]
        if len(choices) != len(value):
            yield path, str(error.message)
            return
        present = [k for k in choices if k in instance]
        listed = ", ".join(choices)
        if not present:
            yield path, f"needs one of {listed}"
        elif len(present) > 1:
            both = " and ".join(present)
            yield path, f"has {both}; give exactly one of {listed}"
    elif kind == "oneOf":
        return  # not a mapping: the type error says it
    elif kind == "type":
        hint = ""
        wants_text = value == "string" or (isinstance(value, list) and "string" in value)
        if wants_text and isinstance(instance, int | Decimal) and not isinstance(instance, bool):
            hint = f' (put it in quotes: "{instance}")'
        yield path, f"expected {_expected(value)}, got {_show(instance)}{hint}"
    elif kind == "enum":
        choices = [str(c) for c in value]
        yield (
            path,
            f"{_show(instance)} is not one of {', '.join(choices)}"
            + _did_you_mean(instance, choices),
        )
    elif kind == "const":
        if path and path[-1] == "everyone":
            yield (
                path,
                (
                    f"must be true, got {_show(instance)} "
                    "(to limit the plan, use reps, teams or regions instead)"
                ),
            )
        else:
            yield path, f"must be {_show(value)}, got {_show(instance)}"
    elif kind == "pattern":
        if value == _DECIMAL_PATTERN:
            yield path, f'{_show(instance)} is not a decimal number (write e.g. "0.05" or "1000")'
        elif value == _ID_PATTERN:
            yield path, f"{_show(instance)} may contain only letters, digits, '_', '.' and '-'"
        elif value == _DATE_PATTERN:
            yield path, f"{_show(instance)} is not a date written YYYY-MM-DD"
        else:
            yield path, f"{_show(instance)} does not match {value}"
    elif kind == "minimum":
        yield path, f"must be at least {value}, got {_show(instance)}"
    elif kind in ("minItems", "minLength", "minProperties"):
        if kind == "minProperties" and path and path[-1] == "caps":
            yield path, "must set at least one of per_order, per_period"
        else:
            yield path, "must not be empty"
    elif kind == "uniqueItems" and isinstance(instance, list):
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                yield path, f"lists {_show(item)} more than once"
                return
            seen.append(item)
    else:
        yield path, str(error.message)


# --------------------------------------------------------------------------- decimals


def _to_decimal(value: Any) -> Any:
    """A decimal field's value as ``Decimal``; anything unreadable is returned unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
        return Decimal(value)
    return value


def _is_decimal_schema(schema: dict[str, Any]) -> bool:
    return schema.get("pattern") == _DECIMAL_PATTERN


def _normalize(schema: Any, value: Any) -> Any:
    """A copy of ``value`` with decimal fields as ``Decimal`` and schema defaults filled."""
    node = _resolve(schema)
    if isinstance(value, dict):
        props: dict[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties")
        out: dict[Any, Any] = {}
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            out[key] = _normalize(sub, item) if sub is not None else item
        for key, sub in props.items():
            if key not in out and isinstance(sub, dict) and "default" in sub:
                out[key] = sub["default"]
        return out
    if isinstance(value, list):
        items = node.get("items")
        return [_normalize(items, item) if items is not None else item for item in value]
    if _is_decimal_schema(node):
        return _to_decimal(value)
    return value


# --------------------------------------------------------------------------- meaning


def _dec(value: Any) -> Decimal | None:
    return value if isinstance(value, Decimal) else None


def _is_timezone(name: str) -> bool:
    if name not in _timezone_names():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@cache
def _timezone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _rate_problem(path: JsonPath, rate: Any, base: Any) -> list[tuple[JsonPath, str]]:
    r = _dec(rate)
    if r is None:
        return []
    if base in ("revenue", "margin") and not Decimal(0) <= r <= Decimal(1):
        return [(path, f"{r} is not a fraction between 0 and 1")]
    if base == "quantity" and r < 0:
        return [(path, f"{r} is negative; a rate on quantity is an amount per unit, 0 or more")]
    return []


def _band_problems(
    path: JsonPath, bands: Any, value_key: str, base: Any
) -> list[tuple[JsonPath, str]]:
    found: list[tuple[JsonPath, str]] = []
    if not isinstance(bands, list):
        return found
    prev_from: Decimal | None = None
    prev_to: Decimal | None = None
    for j, band in enumerate(bands):
        if not isinstance(band, dict):
            prev_from = prev_to = None
            continue
        here: JsonPath = (*path, j)
        lo = _dec(band.get("from"))
        hi = _dec(band.get("to"))
        last = j == len(bands) - 1
        if lo is not None:
            if j == 0 and lo != 0:
                found.append(((*here, "from"), f"the first band must start at 0, not {lo}"))
            elif prev_from is not None and lo <= prev_from:
                found.append(
                    (
                        (*here, "from"),
                        f"{lo} is not above the previous band's from {prev_from}; "
                        "bands go in increasing order",
                    )
                )
            elif prev_to is not None and lo != prev_to:
                gap = "a gap" if lo > prev_to else "an overlap"
                found.append(
                    (
                        (*here, "from"),
                        f"{lo} leaves {gap}: the previous band ends at {prev_to}, "
                        "and each band must start where the previous one ends",
                    )
                )
        if "to" in band:
            if last:
                found.append(
                    (
                        (*here, "to"),
                        "the last band must have no `to` (unbounded), "
                        "so that every amount falls in a band",
                    )
                )
            if hi is not None and lo is not None and hi <= lo:
                found.append(((*here, "to"), f"{hi} is not above this band's from {lo}"))
        elif not last:
            found.append(
                (here, "only the last band may leave out `to`; give this band's upper bound")
            )
        if value_key == "rate":
            found += _rate_problem((*here, "rate"), band.get("rate"), base)
        else:
            m = _dec(band.get(value_key))
            if m is not None and m < 0:
                found.append(((*here, value_key), f"{m} is negative; a multiplier is 0 or more"))
        prev_from, prev_to = lo, hi
    return found


def _condition_values(path: JsonPath, cond: Any) -> Iterator[tuple[JsonPath, Any]]:
    if isinstance(cond, list):
        for i, item in enumerate(cond):
            yield (*path, i), item
    elif isinstance(cond, dict):
        for op, arg in cond.items():
            yield from _condition_values((*path, op), arg)
    else:
        yield path, cond


def _when_problems(path: JsonPath, when: Any) -> list[tuple[JsonPath, str]]:
    found: list[tuple[JsonPath, str]] = []
    if not isinstance(when, dict):
        return found
    for where, value in _condition_values((*path, "discount"), when.get("discount")):
        d = _dec(value)
        if d is not None and not Decimal(0) <= d <= Decimal(1):
            found.append(
                (
                    where,
                    f"{d} is not a fraction between 0 and 1 "
                    '(a discount is a fraction: 30% off is written "0.30")',
                )
            )
    for key in ("customer_tenure_days", "customer_orders_365d"):
        for where, value in _condition_values((*path, key), when.get(key)):
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                found.append((where, f"{value} is negative; a count is 0 or more"))
    return found


def _unique_ids(list_key: str, items: Any, what: str) -> list[tuple[JsonPath, str]]:
    found: list[tuple[JsonPath, str]] = []
    if not isinstance(items, list):
        return found
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        ident = item.get("id") if isinstance(item, dict) else None
        if not isinstance(ident, str):
            continue
        if ident in first:
            found.append(
                (
                    (list_key, i, "id"),
                    f"duplicate {what} id {ident!r} (already used by {list_key}[{first[ident]}])",
                )
            )
        else:
            first[ident] = i
    return found


def _meaning_problems(doc: Any) -> list[tuple[JsonPath, str]]:
    """What the schema cannot say, on a document whose decimals are already ``Decimal``."""
    found: list[tuple[JsonPath, str]] = []
    if not isinstance(doc, dict):
        return found

    effective = doc.get("effective_from")
    if isinstance(effective, str) and _DATE_RE.fullmatch(effective):
        try:
            date.fromisoformat(effective)
        except ValueError:
            found.append((("effective_from",), f"{effective} is not a real date"))

    tz = doc.get("timezone")
    if isinstance(tz, str) and tz and not _is_timezone(tz):
        found.append(
            (
                ("timezone",),
                f"{tz!r} is not an IANA time zone name"
                + (
                    _did_you_mean(tz, _timezone_names())
                    or " (e.g. UTC, Europe/Berlin, Asia/Shanghai)"
                ),
            )
        )

    rules = doc.get("rules")
    found += _unique_ids("rules", rules, "rule")
    if isinstance(rules, list):
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict):
                continue
            here: JsonPath = ("rules", i)
            base = rule.get("base")
            found += _rate_problem((*here, "rate"), rule.get("rate"), base)
            fixed = _dec(rule.get("fixed"))
            if fixed is not None and fixed < 0:
                found.append(
                    ((*here, "fixed"), f"{fixed} is negative; a fixed amount is 0 or more")
                )
            table = rule.get("table")
            if isinstance(table, dict):
                found += _band_problems((*here, "table", "bands"), table.get("bands"), "rate", base)
            found += _when_problems((*here, "when"), rule.get("when"))
        for i, rule in enumerate(rules[:-1]):
            if isinstance(rule, dict) and not rule.get("when"):
                later = len(rules) - i - 1
                found.append(
                    (
                        ("rules", i),
                        f"has no `when`, so it matches every line and the {later} rule(s) "
                        "after it can never apply; move it to the end of the list",
                    )
                )
                break

    modifiers = doc.get("modifiers")
    found += _unique_ids("modifiers", modifiers, "modifier")
    if isinstance(modifiers, list):
        for i, modifier in enumerate(modifiers):
            if not isinstance(modifier, dict):
                continue
            m = _dec(modifier.get("multiplier"))
            if m is not None and m < 0:
                found.append(
                    (("modifiers", i, "multiplier"), f"{m} is negative; a multiplier is 0 or more")
                )
            found += _when_problems(("modifiers", i, "when"), modifier.get("when"))

    tiers = doc.get("tiers")
    if isinstance(tiers, dict):
        quota = _dec(tiers.get("quota"))
        if quota is not None and quota <= 0:
            found.append((("tiers", "quota"), f"{quota} is not more than 0"))
        overrides = tiers.get("quota_overrides")
        if isinstance(overrides, dict):
            for rep, value in overrides.items():
                q = _dec(value)
                if q is not None and q <= 0:
                    found.append((("tiers", "quota_overrides", rep), f"{q} is not more than 0"))
        found += _band_problems(("tiers", "bands"), tiers.get("bands"), "multiplier", None)

    caps = doc.get("caps")
    if isinstance(caps, dict):
        for key in ("per_order", "per_period"):
            cap = _dec(caps.get(key))
            if cap is not None and cap <= 0:
                found.append((("caps", key), f"{cap} is not more than 0"))
    return found


# --------------------------------------------------------------------------- public API


def _field(path: JsonPath) -> str:
    out = ""
    for step in path:
        if isinstance(step, int) and not isinstance(step, bool):
            out += f"[{step}]"
        elif _PLAIN_KEY_RE.fullmatch(str(step)):
            out += f".{step}" if out else str(step)
        else:
            out += f"[{json.dumps(str(step), ensure_ascii=False)}]"
    return out or "(document)"


def _check(
    doc: Any,
    source: str,
    root: yaml.Node | None,
    early: Sequence[PlanProblem] = (),
) -> dict[str, Any]:
    """Validate ``doc``; return its loaded form or raise :class:`PlanFileError`."""
    found: list[tuple[JsonPath, str]] = list(_schema_problems(doc))
    normalized = _normalize(plan_schema(), doc)
    found += _meaning_problems(normalized)
    problems: list[PlanProblem] = list(early)
    seen: set[tuple[JsonPath, str]] = set()
    for path, message in found:
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append(PlanProblem(source, _mark_line(root, path), _field(path), message))
    if problems:
        problems.sort(key=lambda p: p.line or 0)  # stable: same line keeps finding order
        raise PlanFileError(problems)
    if not isinstance(normalized, dict):  # pragma: no cover - the schema requires a mapping
        raise PlanFileError([PlanProblem(source, None, "(document)", "not a mapping")])
    return normalized


def parse_plan_text(text: str, source: str = "<string>") -> dict[str, Any]:
    """Parse and validate the YAML text of a plan; ``source`` names it in problems."""
    loader = _PlanLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise PlanFileError(
                [PlanProblem(source, 1, "(document)", "the file is empty; expected a plan")]
            )
        structural = _structure_problems(root)
        early = [PlanProblem(source, line, _field(p), msg) for p, msg, line in structural]
        if any("alias" in p.message for p in early):
            raise PlanFileError(early)
        doc = loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise PlanFileError([_yaml_problem(source, text, exc)]) from None
    finally:
        loader.dispose()
    return _check(doc, source, root, early)


def load_plan_file(path: Path) -> dict[str, Any]:
    """Read, validate and return the plan document in ``path`` (its loaded form).

    Raises :class:`PlanFileError` listing every problem, each named by file, line and
    field path.
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PlanFileError(
            [PlanProblem(source, None, "(file)", exc.strerror or str(exc))]
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PlanFileError([PlanProblem(source, line, "(file)", "is not UTF-8 text")]) from None
    return parse_plan_text(text, source)


def validate_plan(doc: Any, source: str = _DEFINITION_SOURCE) -> dict[str, Any]:
    """Validate a plan document already in memory and return its loaded form.

    Decimal fields may be ``Decimal``, ``int`` or decimal strings; problems carry no line.
    """
    return _check(doc, source, None)


def _reject_floats(value: Any, path: JsonPath) -> None:
    if isinstance(value, float):
        raise PlanFileError(
            [
                PlanProblem(
                    _DEFINITION_SOURCE,
                    None,
                    _field(path),
                    f"{value!r} is a binary float; write decimals as Decimal or text",
                )
            ]
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_floats(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_floats(item, (*path, index))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def plan_to_definition(doc: dict[str, Any]) -> str:
    """The canonical JSON text of a plan document: the ``definition`` of a PlanPublished.

    Sorted keys, no whitespace, UTF-8 text as is, defaults filled in, decimal fields as
    strings keeping their digits (``"0.10"`` stays ``"0.10"``; ``1E+3`` becomes
    ``"1000"``), integers (``version``, day and order counts) as JSON integers.
    """
    _reject_floats(doc, ())
    normalized = _normalize(plan_schema(), doc)
    return json.dumps(
        normalized,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def definition_to_doc(definition: str) -> dict[str, Any]:
    """Read a canonical ``definition`` back into the loaded form, validated."""
    try:
        doc = json.loads(definition, parse_float=Decimal, parse_constant=_no_constant)
    except ValueError as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise PlanFileError([PlanProblem(_DEFINITION_SOURCE, line, "(json)", str(exc))]) from None
    return validate_plan(doc, _DEFINITION_SOURCE)
