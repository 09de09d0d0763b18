"""Plan files: exact loading, validation with FILE:LINE: FIELD messages, canonical JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from comstream.errors import ComstreamError
from comstream.planfiles import (
    PlanFileError,
    PlanProblem,
    definition_to_doc,
    load_plan_file,
    parse_plan_text,
    plan_schema,
    plan_to_definition,
    validate_plan,
)

REPO = Path(__file__).resolve().parents[2]
FILE = "plans/standard.yaml"

# A valid plan; the line numbers in the expected messages below refer to this text.
BASE = """\
plan_id: standard
version: 3
effective_from: 2026-01-01
applies_to: {everyone: true}
period: month
timezone: Europe/Berlin
earn_on: payment
rules:
  - {id: hw, when: {category: hardware, discount: {gte: "0.30"}}, base: revenue, rate: "0.02"}
  - {id: setup-fee, when: {sku: SETUP}, base: revenue, fixed: "25.00"}
  - id: software
    when: {category: software}
    base: revenue
    rate: "0.05"
  - id: volume
    base: revenue
    table:
      scope: order_total
      method: marginal
      bands:
        - {from: "0", to: "10000", rate: "0.03"}
        - {from: "10000", rate: "0.05"}
modifiers:
  - id: loyal
    when: {customer_orders_365d: {gte: 5}}
    multiplier: "1.10"
tiers:
  quota: "100000"
  quota_overrides: {rep-7: "150000"}
  method: marginal
  bands:
    - {from: "0", to: "1.0", multiplier: "1.0"}
    - {from: "1.0", to: "1.5", multiplier: "1.5"}
    - {from: "1.5", multiplier: "2.0"}
caps: {per_order: "5000", per_period: "20000"}
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in an empty directory, so that messages name the relative FILE."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plans").mkdir()
    return tmp_path


def edited(*replacements: tuple[str, str]) -> str:
    text = BASE
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def problems_of(text: str) -> list[str]:
    """The problem lines reported for ``text`` saved as plans/standard.yaml."""
    Path(FILE).write_text(text, encoding="utf-8")
    with pytest.raises(PlanFileError) as info:
        load_plan_file(Path(FILE))
    assert all(isinstance(p, PlanProblem) for p in info.value.problems)
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    return str(info.value).splitlines()


def load(text: str) -> dict[str, Any]:
    Path(FILE).write_text(text, encoding="utf-8")
    return load_plan_file(Path(FILE))


def floats_in(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats_in(v)]
    if isinstance(value, list):
        return [f for v in value for f in floats_in(v)]
    return []


# ----------------------------------------------------------------- the example plans


@pytest.mark.parametrize("name", ["simple.yaml", "rich.yaml"])
def test_example_plans_load_and_validate(name: str) -> None:
    doc = load_plan_file(REPO / "plans" / name)
    assert floats_in(doc) == []
    # the definition is itself a valid plan, and the same plan
    assert definition_to_doc(plan_to_definition(doc)) == doc


def test_simple_plan_is_five_percent_of_revenue_for_everyone() -> None:
    doc = load_plan_file(REPO / "plans" / "simple.yaml")
    assert doc["applies_to"] == {"everyone": True}
    assert (doc["period"], doc["timezone"], doc["earn_on"]) == ("month", "UTC", "payment")
    assert doc["rules"] == [{"id": "flat-5-percent", "base": "revenue", "rate": Decimal("0.05")}]
    assert "modifiers" not in doc and "tiers" not in doc and "caps" not in doc


def test_rich_plan_uses_every_feature() -> None:
    doc = load_plan_file(REPO / "plans" / "rich.yaml")
    assert set(doc["applies_to"]) == {"teams"}
    assert doc["period"] in ("month", "quarter")
    assert doc["timezone"] == "Asia/Shanghai"
    assert doc["earn_on"] == "payment"
    rules = doc["rules"]
    whens = [r.get("when", {}) for r in rules] + [m.get("when", {}) for m in doc["modifiers"]]
    keys = {k for w in whens for k in w}
    assert keys == set(plan_schema()["$defs"]["when"]["properties"])
    operators = {op for w in whens for c in w.values() if isinstance(c, dict) for op in c}
    assert operators == {"eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in"}
    forms = {type(c).__name__ for w in whens for c in w.values()}
    assert {"str", "list", "dict"} <= forms
    assert {r["base"] for r in rules} == {"revenue", "margin", "quantity"}
    assert any("rate" in r for r in rules) and any("fixed" in r for r in rules)
    tables = [r["table"] for r in rules if "table" in r]
    assert {t["scope"] for t in tables} == {"line_base", "order_total", "quantity"}
    assert {t["method"] for t in tables} == {"whole", "marginal"}
    assert doc["modifiers"]
    assert doc["tiers"]["method"] == "marginal" and doc["tiers"]["quota_overrides"]
    assert set(doc["caps"]) == {"per_order", "per_period"}
    assert "when" not in rules[-1]  # the catch-all comes last


def test_base_plan_of_these_tests_is_valid(in_tmp: Path) -> None:
    doc = load(BASE)
    assert doc["rules"][2]["rate"] == Decimal("0.05")


# ----------------------------------------------------------------- the schema


def test_schema_is_draft_2020_12_and_describes_every_property() -> None:
    schema = plan_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert plan_schema() is schema  # loaded once

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" or "properties" in node:
                assert node.get("additionalProperties") is not True, where
                for name, sub in node.get("properties", {}).items():
                    assert sub.get("description"), f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "$")
    objects = [schema, *(d for d in schema["$defs"].values() if d.get("type") == "object")]
    assert all(o.get("additionalProperties") is False for o in objects)


# ----------------------------------------------------------------- one kind of mistake each


def test_rate_above_one_on_revenue(in_tmp: Path) -> None:
    text = edited(('    rate: "0.05"', "    rate: 1.5"))
    assert problems_of(text) == [
        "plans/standard.yaml:14: rules[2].rate: 1.5 is not a fraction between 0 and 1"
    ]


def test_rate_on_quantity_is_an_amount_per_unit(in_tmp: Path) -> None:
    doc = load(
        edited(('    base: revenue\n    rate: "0.05"', '    base: quantity\n    rate: "2.50"'))
    )
    assert doc["rules"][2]["rate"] == Decimal("2.50")
    assert problems_of(edited(('    rate: "0.05"', "    rate: -1"))) == [
        "plans/standard.yaml:14: rules[2].rate: -1 is not a fraction between 0 and 1"
    ]


def test_unknown_key_typo(in_tmp: Path) -> None:
    found = problems_of(edited(('    rate: "0.05"', '    rat: "0.05"')))
    assert found == [
        "plans/standard.yaml:11: rules[2]: needs one of rate, fixed, table",
        "plans/standard.yaml:14: rules[2].rat: unknown key 'rat' (did you mean 'rate'?)",
    ]
    assert problems_of(edited(("earn_on: payment", "earn_onn: payment"))) == [
        "plans/standard.yaml:7: earn_onn: unknown key 'earn_onn' (did you mean 'earn_on'?)"
    ]
    assert problems_of(edited(("{gte: 5}", "{gtee: 5}"))) == [
        "plans/standard.yaml:25: modifiers[0].when.customer_orders_365d.gtee: 'gtee' is not an "
        "operator here; use one of eq, ne, gt, gte, lt, lte, in, not_in"
    ]


def test_missing_rules(in_tmp: Path) -> None:
    start, end = BASE.index("rules:"), BASE.index("modifiers:")
    assert problems_of(BASE[:start] + BASE[end:]) == [
        "plans/standard.yaml:1: rules: is required but missing"
    ]
    assert problems_of(BASE[:start] + "rules: []\n" + BASE[end:]) == [
        "plans/standard.yaml:8: rules: must not be empty"
    ]


def test_two_of_rate_fixed_table(in_tmp: Path) -> None:
    found = problems_of(edited(('    rate: "0.05"', '    rate: "0.05"\n    fixed: "10.00"')))
    assert found == [
        "plans/standard.yaml:11: rules[2]: has rate and fixed; "
        "give exactly one of rate, fixed, table"
    ]
    found = problems_of(edited(("id: volume\n", 'id: volume\n    rate: "0.1"\n')))
    assert found == [
        "plans/standard.yaml:15: rules[3]: has rate and table; "
        "give exactly one of rate, fixed, table"
    ]


def test_applies_to_exactly_one(in_tmp: Path) -> None:
    found = problems_of(edited(("{everyone: true}", "{teams: [team-east], regions: [EMEA]}")))
    assert found == [
        "plans/standard.yaml:4: applies_to: has teams and regions; "
        "give exactly one of everyone, reps, teams, regions"
    ]
    assert problems_of(edited(("{everyone: true}", "{}"))) == [
        "plans/standard.yaml:4: applies_to: needs one of everyone, reps, teams, regions"
    ]


def test_bad_enum(in_tmp: Path) -> None:
    assert problems_of(edited(("period: month", "period: monthly"))) == [
        "plans/standard.yaml:5: period: 'monthly' is not one of month, quarter "
        "(did you mean 'month'?)"
    ]
    assert problems_of(
        edited(("method: marginal\n      bands", "method: tiered\n      bands"))
    ) == ["plans/standard.yaml:19: rules[3].table.method: 'tiered' is not one of whole, marginal"]
    assert problems_of(edited(("    base: revenue\n    rate", "    base: profit\n    rate"))) == [
        "plans/standard.yaml:13: rules[2].base: 'profit' is not one of revenue, margin, quantity"
    ]


def test_non_contiguous_bands(in_tmp: Path) -> None:
    assert problems_of(edited(('{from: "10000", rate', '{from: "12000", rate'))) == [
        "plans/standard.yaml:22: rules[3].table.bands[1].from: 12000 leaves a gap: the previous "
        "band ends at 10000, and each band must start where the previous one ends"
    ]
    assert problems_of(edited(('{from: "1.0", to: "1.5"', '{from: "0.9", to: "1.5"'))) == [
        "plans/standard.yaml:33: tiers.bands[1].from: 0.9 leaves an overlap: the previous "
        "band ends at 1.0, and each band must start where the previous one ends"
    ]


def test_first_band_not_from_zero(in_tmp: Path) -> None:
    assert problems_of(edited(('{from: "0", to: "10000"', '{from: "100", to: "10000"'))) == [
        "plans/standard.yaml:21: rules[3].table.bands[0].from: the first band must start at 0, "
        "not 100"
    ]
    assert problems_of(edited(('{from: "0", to: "1.0"', '{from: "0.5", to: "1.0"'))) == [
        "plans/standard.yaml:32: tiers.bands[0].from: the first band must start at 0, not 0.5"
    ]


def test_only_the_last_band_is_unbounded(in_tmp: Path) -> None:
    found = problems_of(
        edited(
            ('{from: "0", to: "1.0", multiplier: "1.0"}', '{from: "0", multiplier: "1.0"}'),
            ('{from: "1.5", multiplier', '{from: "1.5", to: "3", multiplier'),
        )
    )
    assert found == [
        "plans/standard.yaml:32: tiers.bands[0]: only the last band may leave out `to`; "
        "give this band's upper bound",
        "plans/standard.yaml:34: tiers.bands[2].to: the last band must have no `to` "
        "(unbounded), so that every amount falls in a band",
    ]


def test_bands_in_increasing_order(in_tmp: Path) -> None:
    found = problems_of(
        edited(('{from: "1.0", to: "1.5", multiplier: "1.5"}', '{from: "1.0", to: "0.8"}'))
    )
    assert "plans/standard.yaml:33: tiers.bands[1].to: 0.8 is not above this band's from 1.0" in (
        found
    )
    assert "plans/standard.yaml:33: tiers.bands[1].multiplier: is required but missing" in found


def test_duplicate_rule_id(in_tmp: Path) -> None:
    assert problems_of(edited(("  - id: software", "  - id: hw"))) == [
        "plans/standard.yaml:11: rules[2].id: duplicate rule id 'hw' (already used by rules[0])"
    ]


def test_bad_timezone(in_tmp: Path) -> None:
    assert problems_of(edited(("Europe/Berlin", "Europe/Berlinn"))) == [
        "plans/standard.yaml:6: timezone: 'Europe/Berlinn' is not an IANA time zone name "
        "(did you mean 'Europe/Berlin'?)"
    ]
    assert problems_of(edited(("Europe/Berlin", "Mars/Olympus"))) == [
        "plans/standard.yaml:6: timezone: 'Mars/Olympus' is not an IANA time zone name "
        "(e.g. UTC, Europe/Berlin, Asia/Shanghai)"
    ]


def test_effective_from_is_a_real_date(in_tmp: Path) -> None:
    assert problems_of(edited(("2026-01-01", "2026-02-30"))) == [
        "plans/standard.yaml:3: effective_from: 2026-02-30 is not a real date"
    ]
    assert problems_of(edited(("2026-01-01", "2026-1-1"))) == [
        "plans/standard.yaml:3: effective_from: '2026-1-1' is not a date written YYYY-MM-DD"
    ]


def test_quota_caps_multipliers_discounts(in_tmp: Path) -> None:
    found = problems_of(
        edited(
            ('quota: "100000"', "quota: 0"),
            ('{per_order: "5000"', '{per_order: "-1"'),
            ('multiplier: "1.10"', 'multiplier: "-0.5"'),
            ('{gte: "0.30"}', "{gte: 30}"),
        )
    )
    assert found == [
        "plans/standard.yaml:9: rules[0].when.discount.gte: 30 is not a fraction between 0 and 1 "
        '(a discount is a fraction: 30% off is written "0.30")',
        "plans/standard.yaml:26: modifiers[0].multiplier: -0.5 is negative; "
        "a multiplier is 0 or more",
        "plans/standard.yaml:28: tiers.quota: 0 is not more than 0",
        "plans/standard.yaml:35: caps.per_order: -1 is not more than 0",
    ]


def test_conditions_on_text_have_no_ordering_operators(in_tmp: Path) -> None:
    assert problems_of(edited(("{sku: SETUP}", "{sku: {gt: SETUP}}"))) == [
        "plans/standard.yaml:10: rules[1].when.sku.gt: 'gt' is not an operator here; "
        "use one of eq, ne, in, not_in"
    ]


def test_text_written_as_a_number_asks_for_quotes(in_tmp: Path) -> None:
    assert problems_of(edited(("{sku: SETUP}", "{sku: 1001}"))) == [
        "plans/standard.yaml:10: rules[1].when.sku: expected text, a list of texts, or a map of "
        'operators, got 1001 (put it in quotes: "1001")'
    ]


def test_unreachable_rules_after_a_catch_all(in_tmp: Path) -> None:
    found = problems_of(edited(("    when: {category: software}\n", "")))
    assert found == [
        "plans/standard.yaml:11: rules[2]: has no `when`, so it matches every line and the "
        "1 rule(s) after it can never apply; move it to the end of the list"
    ]


def test_duplicate_yaml_key(in_tmp: Path) -> None:
    assert problems_of(edited(("period: month\n", "period: month\nperiod: quarter\n"))) == [
        "plans/standard.yaml:6: period: duplicate key 'period' (first given on line 5)"
    ]


def test_every_problem_is_reported_in_file_order(in_tmp: Path) -> None:
    found = problems_of(
        edited(
            ("version: 3", "version: 0"),
            ("Europe/Berlin", "Europe/Nowhere"),
            ('    rate: "0.05"', "    rate: 2"),
            ('{from: "10000", rate', '{from: "9000", rate'),
            ("caps: {", "cap: {"),
        )
    )
    assert [line.split(": ")[0] for line in found] == [
        "plans/standard.yaml:2",
        "plans/standard.yaml:6",
        "plans/standard.yaml:14",
        "plans/standard.yaml:22",
        "plans/standard.yaml:35",
    ]
    assert found[0] == "plans/standard.yaml:2: version: must be at least 1, got 0"
    assert found[4] == "plans/standard.yaml:35: cap: unknown key 'cap' (did you mean 'caps'?)"


# ----------------------------------------------------------------- YAML itself


def test_yaml_syntax_error_names_file_and_line(in_tmp: Path) -> None:
    assert problems_of(edited(('    rate: "0.05"', '    rate: "0.05": x'))) == [
        "plans/standard.yaml:14: (yaml): mapping values are not allowed here"
    ]
    found = problems_of(edited(("{category: software}", "{category: software")))
    assert found == [
        "plans/standard.yaml:13: (yaml): expected ',' or '}', but got ':' "
        "(while parsing a flow mapping at line 12)"
    ]


def test_error_names_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "plan.yaml"
    path.parent.mkdir()
    path.write_text(edited(('    rate: "0.05"', "    rate: 1.5")), encoding="utf-8")
    with pytest.raises(PlanFileError) as info:
        load_plan_file(path)
    assert str(info.value) == f"{path}:14: rules[2].rate: 1.5 is not a fraction between 0 and 1"
    assert isinstance(info.value, ComstreamError)
    assert info.value.problems == [
        PlanProblem(str(path), 14, "rules[2].rate", "1.5 is not a fraction between 0 and 1")
    ]


def test_unreadable_and_empty_files(in_tmp: Path) -> None:
    with pytest.raises(PlanFileError) as info:
        load_plan_file(Path("plans/missing.yaml"))
    assert str(info.value).startswith("plans/missing.yaml: (file): ")
    assert problems_of("# nothing but a comment\n") == [
        "plans/standard.yaml:1: (document): the file is empty; expected a plan"
    ]
    assert problems_of("- just\n- a list\n") == [
        "plans/standard.yaml:1: (document): expected a mapping (key: value), got a list"
    ]


def test_numbers_keep_their_literal_text(in_tmp: Path) -> None:
    doc = load(edited(('    rate: "0.05"', "    rate: 0.1"), ('"1.10"', "1.10")))
    rate = doc["rules"][2]["rate"]
    assert isinstance(rate, Decimal) and rate == Decimal("0.1") and str(rate) == "0.1"
    assert str(doc["modifiers"][0]["multiplier"]) == "1.10"
    assert isinstance(doc["version"], int)
    assert doc["modifiers"][0]["when"] == {"customer_orders_365d": {"gte": 5}}
    assert doc["effective_from"] == "2026-01-01"  # a date stays its ISO text
    assert floats_in(doc) == []


def test_yes_and_no_stay_text_and_dates_stay_text() -> None:
    text = edited(("{sku: SETUP}", "{customer_industry: [no, on, 2026-05-01]}"))
    doc = parse_plan_text(text, "inline")
    assert doc["rules"][1]["when"] == {"customer_industry": ["no", "on", "2026-05-01"]}


@settings(max_examples=60, deadline=None)
@given(
    st.decimals(min_value=0, max_value=1, places=6, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
def test_any_rate_text_is_read_exactly(rate: Decimal, quoted: bool) -> None:
    literal = format(rate, "f")
    written = f'"{literal}"' if quoted else literal
    doc = parse_plan_text(edited(('    rate: "0.05"', f"    rate: {written}")), "inline")
    assert str(doc["rules"][2]["rate"]) == literal
    assert json.loads(plan_to_definition(doc))["rules"][2]["rate"] == literal


# ----------------------------------------------------------------- canonical definition


def test_definition_is_canonical_json(in_tmp: Path) -> None:
    doc = load(BASE)
    definition = plan_to_definition(doc)
    assert " " not in definition.replace("Europe/Berlin", "")
    parsed = json.loads(definition)
    assert json.dumps(parsed, sort_keys=True, separators=(",", ":")) == definition
    assert parsed["rules"][0]["rate"] == "0.02"
    assert parsed["tiers"]["bands"][0] == {"from": "0", "to": "1.0", "multiplier": "1.0"}
    assert parsed["version"] == 3
    assert parsed["modifiers"][0]["when"] == {"customer_orders_365d": {"gte": 5}}


def test_definition_round_trips(in_tmp: Path) -> None:
    doc = load(BASE)
    definition = plan_to_definition(doc)
    again = definition_to_doc(definition)
    assert again == doc
    assert plan_to_definition(again) == definition
    assert isinstance(again["rules"][0]["when"]["discount"]["gte"], Decimal)
    assert isinstance(again["tiers"]["quota_overrides"]["rep-7"], Decimal)


def test_same_plan_written_differently_gives_one_definition(in_tmp: Path) -> None:
    other = edited(
        ("period: month\n", ""),  # the default
        ("timezone: Europe/Berlin\n", "timezone: Europe/Berlin\n"),
        ("earn_on: payment\n", ""),  # the default
        ('    rate: "0.05"', "    rate: 0.05"),  # unquoted
        ('quota: "100000"', "quota: 100000"),  # an integer where a decimal goes
    )
    assert plan_to_definition(load(other)) == plan_to_definition(load(BASE))


def test_definition_to_doc_validates() -> None:
    doc = parse_plan_text(BASE, "inline")
    bad = json.loads(plan_to_definition(doc))
    bad["rules"][2]["rate"] = "1.5"
    with pytest.raises(PlanFileError) as info:
        definition_to_doc(json.dumps(bad))
    assert str(info.value) == ("<definition>: rules[2].rate: 1.5 is not a fraction between 0 and 1")
    with pytest.raises(PlanFileError):
        definition_to_doc("{not json")
    assert validate_plan(json.loads(plan_to_definition(doc))) == doc


def test_plan_to_definition_refuses_floats() -> None:
    doc = parse_plan_text(BASE, "inline")
    doc["rules"][2]["rate"] = 0.05
    with pytest.raises(PlanFileError, match=r"rules\[2\]\.rate: 0\.05 is a binary float"):
        plan_to_definition(doc)


# ---- hostile plan texts (issue 17, item 3) ----------------------------------------------


def alias_bomb(levels: int = 7) -> str:
    """A "billion laughs" plan text: each level refers 9 times to the one before (under
    400 bytes for 7 levels, 9**7 nodes once expanded)."""
    lines = [
        *BASE.splitlines()[:3],
        'x0: &x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ",".join([f"*x{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once() -> None:
    import time

    text = alias_bomb()
    assert len(text) < 500
    start = time.monotonic()
    with pytest.raises(PlanFileError) as refused:
        parse_plan_text(text, "bomb.yaml")
    assert time.monotonic() - start < 0.5
    assert "bomb.yaml:4: (yaml): anchors and aliases" in str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        BASE.replace("period: month", "period: &p month"),
        BASE + "name: *missing\n",
        BASE.replace("rules:", "rules: &r"),
    ],
)
def test_anchors_and_aliases_are_refused(text: str) -> None:
    with pytest.raises(PlanFileError, match="anchors and aliases"):
        parse_plan_text(text)


def test_deep_nesting_is_refused_with_a_problem_not_a_recursion_error() -> None:
    for deep in (
        "name: " + "[" * 50_000 + "]" * 50_000,
        "name: " + "{a: " * 20_000 + "1" + "}" * 20_000,
    ):
        with pytest.raises(PlanFileError, match="nested deeper than"):
            parse_plan_text(BASE + deep + "\n")
