"""Plan parsing (field paths in errors), plan selection and the plan book's conflicts."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from processors.errors import PlanError
from processors.messages import RepFacts
from processors.plans import PlanBook, parse_plan, plan_from_event, plan_from_json

from .test_scenarios_kit import plan_doc, publish

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_types() -> None:
    doc = plan_doc()
    del doc["period"], doc["timezone"], doc["earn_on"]
    plan = parse_plan(doc)
    assert (plan.period, plan.timezone, plan.earn_on) == ("month", "UTC", "payment")
    assert plan.effective_from == date(2026, 1, 1)
    assert plan.rules[0].rate == Decimal("0.05")
    assert plan.caps.per_order is None and plan.tiers is None


def test_numbers_as_int_str_decimal_and_date_objects() -> None:
    doc = plan_doc(
        effective_from=date(2026, 1, 1),
        rules=[
            {"id": "a", "base": "quantity", "rate": 2},
            {"id": "b", "base": "revenue", "rate": Decimal("0.10")},
        ],
    )
    plan = parse_plan(doc)
    assert plan.rules[0].rate == Decimal(2)
    assert plan.rules[1].rate == Decimal("0.10")


def test_rich_plan_file_parses() -> None:
    yaml = pytest.importorskip("yaml")
    path = REPO / "plans" / "rich.yaml"
    if not path.exists():
        pytest.skip("plans/rich.yaml not present")
    doc = yaml.safe_load(path.read_text())
    doc = json.loads(json.dumps(doc, default=str), parse_float=Decimal)
    plan = parse_plan(doc)
    assert plan.period == "quarter" and plan.tiers is not None
    assert plan.tiers.quota_for("rep-001") == Decimal("450000")
    assert plan.tiers.quota_for("rep-999") == Decimal("300000")


def _bad(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(base or plan_doc())
    target: Any = doc
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


_DELETE = object()

BAD_DOCS = [
    ("rules.0.rate", "1.5", "rules[0].rate: 1.5 is not a fraction between 0 and 1"),
    ("rules.0.rate", 0.05, "rules[0].rate: 0.05 is a binary float"),
    ("rules.0.rate", "abc", "rules[0].rate: 'abc' is not a decimal number"),
    ("rules.0.rate", "-0.1", "rules[0].rate: -0.1 is not a fraction between 0 and 1"),
    ("rules.0.base", "profit", "rules[0].base: 'profit' is not one of revenue, margin, quantity"),
    ("rules.0.id", "a b", "rules[0].id: 'a b' may contain only"),
    ("rules.0.when", {"colour": "red"}, "rules[0].when.colour: unknown condition 'colour'"),
    ("rules.0.when", {"sku": {"gt": "A"}}, "rules[0].when.sku.gt: 'gt' is not an operator"),
    ("rules.0.when", {"discount": {"gte": 0.3}}, "rules[0].when.discount.gte: 0.3 is a binary"),
    (
        "rules.0.when",
        {"customer_tenure_days": {"lt": "x"}},
        "rules[0].when.customer_tenure_days.lt: 'x' is not an integer",
    ),
    ("rules.0.when", {"category": []}, "rules[0].when.category: an empty list matches nothing"),
    ("rules.0.extra", 1, "rules[0].extra: unknown key 'extra'"),
    ("rules", [], "rules: needs at least one rule"),
    ("plan_id", _DELETE, "plan_id: is required"),
    ("version", 0, "version: 0 is not 1 or more"),
    ("version", True, "version: True is not an integer"),
    ("effective_from", "2026-02-30", "effective_from: '2026-02-30' is not a real date"),
    ("effective_from", "Jan 1", "effective_from: 'Jan 1' is not a date written YYYY-MM-DD"),
    ("period", "week", "period: 'week' is not one of month, quarter"),
    ("timezone", "Mars/Olympus", "timezone: 'Mars/Olympus' is not a known IANA time zone"),
    ("earn_on", "invoice", "earn_on: 'invoice' is not one of booking, payment, full_payment"),
    ("applies_to", {"everyone": True, "teams": ["a"]}, "applies_to: give exactly one of"),
    ("applies_to", {"teams": []}, "applies_to.teams: an empty list applies to nobody"),
    ("applies_to", {"everyone": False}, "applies_to.everyone: must be true"),
    ("colour", "red", "colour: unknown key 'colour'"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_DOCS, ids=[b[2][:40] for b in BAD_DOCS])
def test_invalid_field_names_its_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(_bad(path, value))
    assert str(err.value).startswith(message), str(err.value)


def test_rule_needs_exactly_one_of_rate_fixed_table() -> None:
    with pytest.raises(PlanError, match=r"rules\[0\]: has rate and fixed"):
        parse_plan(plan_doc(rules=[{"id": "a", "base": "revenue", "rate": "0.1", "fixed": "1"}]))
    with pytest.raises(PlanError, match=r"rules\[0\]: needs one of"):
        parse_plan(plan_doc(rules=[{"id": "a", "base": "revenue"}]))


def test_duplicate_rule_and_modifier_ids() -> None:
    rule = {"id": "a", "base": "revenue", "rate": "0.1"}
    with pytest.raises(PlanError, match=r"rules\[1\]\.id: 'a' is already the id of rules\[0\]"):
        parse_plan(plan_doc(rules=[rule, rule]))
    mod = {"id": "m", "multiplier": "1.1"}
    with pytest.raises(PlanError, match=r"modifiers\[1\]\.id"):
        parse_plan(plan_doc(modifiers=[mod, mod]))


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ([{"from": "1", "rate": "0.1"}], r"bands\[0\]\.from: the first band must start at 0"),
        (
            [{"from": "0", "to": "10", "rate": "0.1"}, {"from": "11", "rate": "0.2"}],
            r"bands\[1\]\.from: 11 does not continue the previous band, which ends at 10",
        ),
        (
            [{"from": "0", "rate": "0.1"}, {"from": "10", "rate": "0.2"}],
            r"bands\[0\]: only the last band may be unbounded",
        ),
        ([{"from": "0", "to": "0", "rate": "0.1"}], r"bands\[0\]\.to: 0 is not above"),
        ([{"from": "0", "rate": "2"}], r"bands\[0\]\.rate: 2 is not a fraction"),
        ([], r"bands: needs at least one band"),
    ],
)
def test_table_band_errors(bands: list[dict[str, str]], message: str) -> None:
    rule = {
        "id": "t",
        "base": "revenue",
        "table": {"scope": "line_base", "method": "whole", "bands": bands},
    }
    with pytest.raises(PlanError, match=r"rules\[0\]\.table\." + message):
        parse_plan(plan_doc(rules=[rule]))


def test_tiers_and_caps_errors() -> None:
    tiers = {"quota": "0", "method": "marginal", "bands": [{"from": "0", "multiplier": "1"}]}
    with pytest.raises(PlanError, match=r"tiers\.quota: 0 is not more than 0"):
        parse_plan(plan_doc(tiers=tiers))
    tiers = {"quota": "10", "method": "marginal", "bands": [{"from": "0", "multiplier": "-1"}]}
    with pytest.raises(PlanError, match=r"tiers\.bands\[0\]\.multiplier: -1 is negative"):
        parse_plan(plan_doc(tiers=tiers))
    tiers = {
        "quota": "10",
        "method": "marginal",
        "bands": [{"from": "0", "multiplier": "1"}],
        "quota_overrides": {"rep-1": "-5"},
    }
    with pytest.raises(PlanError, match=r"tiers\.quota_overrides\.rep-1: -5 is not more than 0"):
        parse_plan(plan_doc(tiers=tiers))
    with pytest.raises(PlanError, match=r"caps: give per_order, per_period or both"):
        parse_plan(plan_doc(caps={}))
    with pytest.raises(PlanError, match=r"caps\.per_order: -1 is not more than 0"):
        parse_plan(plan_doc(caps={"per_order": "-1"}))


def test_quantity_rate_may_exceed_one_but_not_be_negative() -> None:
    assert parse_plan(plan_doc(rules=[{"id": "u", "base": "quantity", "rate": "8.00"}]))
    with pytest.raises(PlanError, match=r"rules\[0\]\.rate: -1 is negative"):
        parse_plan(plan_doc(rules=[{"id": "u", "base": "quantity", "rate": "-1"}]))


def test_not_a_mapping() -> None:
    with pytest.raises(PlanError, match="expected a mapping"):
        parse_plan(["not", "a", "plan"])  # type: ignore[arg-type]


def test_plan_from_json_and_event() -> None:
    with pytest.raises(PlanError, match="definition: not valid JSON"):
        plan_from_json("{nope")
    event = publish(plan_doc())
    assert plan_from_event(event).ref == ("std", 1)
    wrong = publish(plan_doc(), event_id="x")
    wrong = type(wrong)(
        wrong.event_id, wrong.occurred_at, "other", 1, wrong.effective_from, wrong.definition
    )
    with pytest.raises(PlanError, match="plan_id: the definition says 'std'"):
        plan_from_event(wrong)
    json_floats = json.dumps(plan_doc(rules=[{"id": "a", "base": "revenue", "rate": 0.1}]))
    assert plan_from_json(json_floats).rules[0].rate == Decimal("0.1")  # read exactly


def _book(*docs: dict[str, Any]) -> PlanBook:
    book = PlanBook()
    for doc in docs:
        book = book.with_version(parse_plan(doc))
    return book


def test_select_specificity_and_versions() -> None:
    book = _book(
        plan_doc(),
        plan_doc(version=2, effective_from="2026-06-01"),
        plan_doc(plan_id="east", applies_to={"teams": ["east"]}),
        plan_doc(plan_id="r1", applies_to={"reps": ["r1"]}, effective_from="2026-03-01"),
        plan_doc(plan_id="apac", applies_to={"regions": ["APAC"]}),
    )
    on = date(2026, 7, 1)
    assert book.select(RepFacts("r1", "east", "APAC", True), on).plan_id == "r1"  # type: ignore[union-attr]
    assert book.select(RepFacts("r1", "east", "APAC", True), date(2026, 2, 1)).plan_id == "east"  # type: ignore[union-attr]
    assert book.select(RepFacts("r2", "west", "APAC", True), on).plan_id == "apac"  # type: ignore[union-attr]
    std = book.select(RepFacts("r3"), on)
    assert std is not None and std.ref == ("std", 2)
    std = book.select(RepFacts("r3"), date(2026, 5, 31))
    assert std is not None and std.ref == ("std", 1)
    assert book.select(RepFacts("r3"), date(2025, 12, 31)) is None


def test_conflicts_refused_when_published() -> None:
    book = _book(plan_doc(), plan_doc(plan_id="east", applies_to={"teams": ["east", "west"]}))
    with pytest.raises(PlanError, match=r"equally specific \(everyone\)"):
        book.with_version(parse_plan(plan_doc(plan_id="other")))
    with pytest.raises(PlanError, match=r"equally specific \(teams \(west\)\)"):
        book.with_version(parse_plan(plan_doc(plan_id="w", applies_to={"teams": ["west"]})))
    # disjoint teams, or a different level, are fine
    book.with_version(parse_plan(plan_doc(plan_id="n", applies_to={"teams": ["north"]})))
    book.with_version(parse_plan(plan_doc(plan_id="r", applies_to={"regions": ["west"]})))


def test_conflict_depends_on_time() -> None:
    # 'east' v1 covers team east until 2026-06-01, when v2 moves it to team north:
    # a second plan for team east from 2026-07-01 overlaps nothing.
    book = _book(
        plan_doc(plan_id="east", applies_to={"teams": ["east"]}),
        plan_doc(
            plan_id="east", version=2, effective_from="2026-06-01", applies_to={"teams": ["north"]}
        ),
    )
    book.with_version(
        parse_plan(
            plan_doc(
                plan_id="new-east", effective_from="2026-07-01", applies_to={"teams": ["east"]}
            )
        )
    )
    with pytest.raises(PlanError, match="on 2026-05-01"):
        book.with_version(
            parse_plan(
                plan_doc(
                    plan_id="early", effective_from="2026-05-01", applies_to={"teams": ["east"]}
                )
            )
        )


def test_republishing_a_version() -> None:
    book = _book(plan_doc())
    assert book.with_version(parse_plan(plan_doc())) is book
    # same meaning written differently: still the same version
    assert (
        book.with_version(
            parse_plan(plan_doc(rules=[{"id": "flat", "base": "revenue", "rate": Decimal("0.05")}]))
        )
        is book
    )
    with pytest.raises(PlanError, match="already published with a different definition"):
        book.with_version(
            parse_plan(plan_doc(rules=[{"id": "flat", "base": "revenue", "rate": "0.06"}]))
        )
    assert len(book) == 1 and ("std", 1) in book
