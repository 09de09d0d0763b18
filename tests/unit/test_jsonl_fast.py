"""The compiled JSON-lines paths (schemas/jsonl_fast.py) against the generic code they
replace (a frozen copy in tests/unit/jsonl_reference.py): the same events, the same
bytes, the same errors, on the generated bench mix, hand-written edge cases and random
mutations of real lines; and hostile input refused with EventFormatError."""

from __future__ import annotations

import json
import random
import time
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from bench.engine_bench import Mix
from processors.engine import Engine
from processors.events import (
    CommissionDelta,
    Credit,
    CustomerChanged,
    DeltaKind,
    Event,
    OrderLine,
    OrderPlaced,
    PaymentReceived,
    PlanPublished,
    RepChanged,
)
from schemas import jsonl
from schemas.errors import EventFormatError
from schemas.jsonl import MAX_LINE, format_event, parse_event

from . import jsonl_reference as ref
from .test_codec import SAMPLES as _CODEC_SAMPLES
from .test_codec import SPLIT, _delta

SAMPLES: list[Any] = list(_CODEC_SAMPLES)


def _with(value: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` of a value, any types (some on purpose wrong)."""
    return replace(value, **changes)


@cache
def _mix() -> tuple[list[Event], list[CommissionDelta]]:
    mix = Mix(seed=7, reps=48, customers=600)
    events = mix.dimensions() + list(mix.events(3000))
    engine = Engine()
    deltas = [
        out
        for event in events[:1500]
        for out in engine.process(event)
        if isinstance(out, CommissionDelta)
    ]
    return events, deltas


def _same(a: Any, b: Any, where: str = "") -> None:
    """Equal and represented alike: the type of every value, Decimal digits and exponent,
    datetime offsets (dataclass == compares Decimals numerically, datetimes as instants)."""
    assert type(a) is type(b), where
    if is_dataclass(a):
        for f in fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, Decimal):
        assert str(a) == str(b) and a.as_tuple() == b.as_tuple(), where
    elif isinstance(a, datetime):
        assert a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset(), where
        assert a.isoformat() == b.isoformat(), where
    else:
        assert a == b, where


def _outcome(parse: Any, line: str | bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(line)
    except EventFormatError as exc:
        return "error", (exc.reason, exc.detail, exc.event_id, exc.event_type)


def _agree(line: str | bytes) -> None:
    got, want = _outcome(parse_event, line), _outcome(ref.parse_event, line)
    assert got[0] == want[0], (line, got, want)
    if got[0] == "ok":
        _same(got[1], want[1])
    else:
        assert got[1] == want[1], line


# --- the generated mix ---------------------------------------------------------------


def test_mix_lines_format_byte_for_byte_and_parse_alike() -> None:
    events, _ = _mix()
    for event in events:
        line = format_event(event)
        assert line == ref.format_event(event)
        _same(parse_event(line), ref.parse_event(line))
        _same(parse_event(line + "\n"), event)


def test_mix_deltas_format_byte_for_byte() -> None:
    _, deltas = _mix()
    assert len(deltas) > 100 and any(d.lines for d in deltas)
    for delta in deltas:
        assert format_event(delta) == ref.format_event(delta)


def test_canonical_lines_take_the_compiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line format_event writes is parsed without the generic path."""

    def generic(line: str | bytes) -> Event:
        raise AssertionError(f"generic path taken for {line!r}")

    monkeypatch.setattr(jsonl, "_parse_generic", generic)
    events, _ = _mix()
    checked = set()
    for event in [*events, *SAMPLES, SPLIT]:
        if isinstance(event, PlanPublished):
            continue  # its definition is JSON in a string: escapes, the generic path
        line = format_event(event)
        if "E-" in line or "E+" in line:
            continue  # a figure in exponent form (1E-12): the generic path
        _same(parse_event(line), ref.parse_event(line))
        checked.add(type(event).__name__)
    assert checked == set(jsonl._FAST_PARSE) - {"PlanPublished"}
    plain = _with(next(e for e in SAMPLES if isinstance(e, PlanPublished)), definition="{}")
    _same(parse_event(format_event(plain)), plain)


def test_every_record_has_a_compiled_path() -> None:
    assert set(jsonl._FAST_PARSE) == {
        "RepChanged",
        "CustomerChanged",
        "OrderPlaced",
        "OrderCancelled",
        "PaymentReceived",
        "RefundIssued",
        "PlanPublished",
        "PeriodClosed",
    }
    assert CommissionDelta in jsonl._FAST_FORMAT and OrderPlaced in jsonl._FAST_FORMAT


@pytest.mark.parametrize("event", [*SAMPLES, SPLIT], ids=lambda e: type(e).__name__)
def test_codec_samples_alike(event: Any) -> None:
    line = format_event(event)
    assert line == ref.format_event(event)
    _agree(line)


def test_codec_delta_sample_alike() -> None:
    delta = _delta()
    assert format_event(delta) == ref.format_event(delta)
    odd = _with(
        delta,
        share=Decimal("0.33333333333333333333333333333333"),  # rounded to 28 places
        commission=Decimal("1E+3"),
        kind=DeltaKind.ACCELERATOR,
        order_id=None,
        lines=(),
    )
    assert format_event(odd) == ref.format_event(odd)
    ties = _with(  # half-even at the scale, as codec._quantize rounds
        delta,
        amount=Decimal("0.125"),
        cumulative=Decimal("-0.135"),
        revenue_base=Decimal("0.0000000000005"),
        lines=(_with(delta.lines[0], amount=Decimal("1.0000000000015")),),
    )
    line = format_event(ties)
    assert line == ref.format_event(ties)
    assert '"amount":"0.12"' in line and '"cumulative":"-0.14"' in line


# --- hand-written lines --------------------------------------------------------------

HEAD = '{"type":"PaymentReceived","event_id":"e","occurred_at":"2026-11-01T00:00:00.000+00:00"'
PAY = HEAD + ',"order_id":"o","payment_id":"p","amount":%s,"received_at":%s}'
T = '"2026-11-01T00:00:00.000+00:00"'


def _pay(amount: str, received: str = T) -> str:
    return PAY % (amount, received)


ORDER = json.loads(format_event(SPLIT))


def _order(**changes: Any) -> str:
    obj = dict(ORDER)
    for key, value in changes.items():
        if value is _DROP:
            obj.pop(key)
        else:
            obj[key] = value
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _line(**changes: Any) -> str:
    line = dict(ORDER["lines"][0])
    for key, value in changes.items():
        if value is _DROP:
            line.pop(key)
        else:
            line[key] = value
    return _order(lines=[line])


_DROP = object()

AMOUNTS = [
    '"10.50"',
    '"10.5000"',
    '"10.500000"',  # zeros beyond the scale: accepted, as 10.5000
    '"1.00001"',  # invalid.amount_precision
    '"0"',
    '"-0"',
    '"-0.0000"',
    '"-12.34"',
    '"123456789012345678.1234"',  # 18 integer digits: the most for 22/4
    '"1234567890123456789.1234"',  # too large
    '"0001.5"',
    '"1e2"',
    '"1E+2"',
    '"1E-4"',
    '"1E-5"',
    '" 1.5"',
    '"1.5 "',
    '"1_000"',
    '"+1"',
    '".5"',
    '"5."',
    '"\u0661\u0662"',  # Arabic-Indic digits: Decimal reads them
    '"abc"',
    '""',
    '"NaN"',
    '"-Infinity"',
    '"sNaN"',
    "0.1",
    "10",
    "-0",
    "1e2",
    "1.00001",
    "1E400",
    "1e999999999",
    "true",
    "null",
    "[]",
    "{}",
    '"1\\u0030"',
    "NaN",
    "Infinity",
]

STAMPS = [
    '"2026-11-01T00:00:00Z"',
    '"2026-11-01T08:00:00+08:00"',
    '"2026-11-01T08:00:00.123456+08:00"',
    '"2026-11-01T08:00:00.999999-05:30"',
    '"2026-11-01T08:00:00.123400+08:00"',
    '"2026-11-01T08:00:00.5+01:00"',
    '"2026-11-01T00:00:00"',
    '"2026-11-01"',
    '"2026-11-01T00:00:00+00:00:30"',
    '"2026-11-31T00:00:00Z"',
    '"20261101T000000Z"',
    '"2026-11-01 00:00:00+00:00"',
    '"garbage"',
    '""',
    "null",
    "0",
    '"2026-11-01T00:00:00.000+00:00\\u0000"',
]

LINES = [
    *[_pay(a) for a in AMOUNTS],
    *[_pay('"1"', s) for s in STAMPS],
    HEAD.replace("00.000+00:00", "00Z") + ',"order_id":"o","payment_id":"p","amount":"1",'
    '"received_at":"2026-11-01T00:00:00.000+00:00"}',
    _pay('"1"') + "\n",
    _pay('"1"') + " \t\r\n",
    " " + _pay('"1"'),
    _pay('"1"') + "x",
    _pay('"1"') + "{}",
    _pay('"1"')[:-1],
    _pay('"1"')[:-1] + ',"extra":1}',
    _pay('"1"')[:-1] + ',"amount":"2"}',  # duplicate key: the last one
    _pay('"1"').replace('"event_id":"e"', '"event_id":"e\\"1"'),
    _pay('"1"').replace('"event_id":"e"', '"event_id":"\\u00e9\\n"'),
    _pay('"1"').replace('"event_id":"e"', '"event_id":"公司 é \U0001f600"'),
    _pay('"1"').replace('"event_id":"e"', '"event_id":"a\tb"'),  # raw control character
    _pay('"1"').replace('"event_id":"e"', '"event_id":"a\x7fb\u2028"'),
    _pay('"1"').replace('"event_id":"e"', '"event_id":5'),
    _pay('"1"').replace('"event_id":"e"', '"event_id":null'),
    _pay('"1"').replace('"event_id":"e",', ""),
    _pay('"1"').replace('"payment_id":"p",', ""),
    _pay('"1"').replace('"type":"PaymentReceived"', '"type":"Nope"'),
    _pay('"1"').replace('"type":"PaymentReceived"', '"type":5'),
    _pay('"1"').replace('"type":"PaymentReceived",', ""),
    _pay('"1"').replace('"type":"PaymentReceived"', '"type":"CommissionDelta"'),
    _pay('"1"').replace('"type":"PaymentReceived"', '"type":"RefundIssued"'),
    _pay('"1"').replace('{"type":"PaymentReceived",', '{"type" : "PaymentReceived" , '),
    "",
    " ",
    "{}",
    "[]",
    '"x"',
    "1",
    "null",
    "{",
    '{"type":"PaymentReceived"',
    '{"type":"',
    '{"type":""}',
    "\ufeff" + _pay('"1"'),
    _pay('"1"').encode(),
    b"\xef\xbb\xbf" + _pay('"1"').encode(),
    _pay('"1"').encode("utf-16"),
    b"\xff\xfe\x00",
    # OrderPlaced
    _order(),
    _order(rep_id="rep-9"),
    _order(rep_id=None),
    _order(rep_id=_DROP),
    _order(rep_id=5),
    _order(credits=[]),
    _order(credits=_DROP),
    _order(credits=None),
    _order(credits={}),
    _order(credits=[{"rep_id": "a", "share": "1"}]),
    _order(credits=[{"rep_id": "a", "share": "1.0000000000000000000000000000"}]),
    _order(credits=[{"rep_id": "a", "share": "0.33333333333333333333333333333"}]),
    _order(credits=[{"rep_id": "a", "share": "0.33333333333333333333333333330"}]),
    _order(credits=[{"rep_id": "a", "share": "1234567891.5"}]),
    _order(credits=[{"rep_id": "a", "share": 1}]),
    _order(credits=[{"rep_id": "a"}]),
    _order(credits=[{"share": "1", "rep_id": "a"}]),
    _order(credits=[{"rep_id": "a", "share": "1", "x": 1}]),
    _order(credits=[["a", "1"]]),
    _order(lines=[]),
    _order(lines=_DROP),
    _order(lines=None),
    _order(lines=[None]),
    _order(lines=[ORDER["lines"][0], ORDER["lines"][0]]),
    _order(placed_at_offset_minutes=480),
    _order(placed_at_offset_minutes="x"),
    _order(placed_at="2026-11-02T09:00:00.000+08:00"),
    _order(placed_at="2026-11-02T09:00:00.000"),
    _order(occurred_at="2026-11-02T09:00:00.000+08:00"),
    _order(currency=None),
    _line(discount=_DROP),
    _line(unit_cost=_DROP),
    _line(discount="1"),
    _line(discount="10"),
    _line(discount="01"),
    _line(discount="0.123456789012"),
    _line(discount="0.1234567890123"),
    _line(discount="0.1234567890120"),
    _line(discount="-1"),
    _line(quantity="123456789012345678.123456789012"),
    _line(quantity="1234567890123456789"),
    _line(quantity="1.0000000000001"),
    _line(quantity="1e-12"),
    _line(quantity=2),
    _line(quantity=2.5),
    _line(sku=None),
    _line(sku=7),
    _line(extra="x"),
    _line(line_id=_DROP),
    # the other types
    format_event(SAMPLES[0]).replace('"active":true', '"active":false'),
    format_event(SAMPLES[0]).replace('"active":true', '"active":"true"'),
    format_event(SAMPLES[0]).replace('"active":true', '"active":1'),
    format_event(SAMPLES[0]).replace(',"active":true', ""),
    format_event(SAMPLES[0]).replace('"team_id":"team-east"', '"team_id":null'),
    format_event(SAMPLES[0]).replace('"team_id":"team-east",', ""),
    format_event(SAMPLES[2]).replace("2020-02-29", "2021-02-29"),
    format_event(SAMPLES[2]).replace("2020-02-29", "20200229"),
    format_event(SAMPLES[2]).replace('"2020-02-29"', "null"),
    format_event(SAMPLES[2]).replace('"2020-02-29"', "20200229"),
    format_event(SAMPLES[2]).replace('"2020-02-29"', '"2020-02-29T00:00:00"'),
]


def _plan_lines() -> list[str]:
    plan = next(e for e in SAMPLES if isinstance(e, PlanPublished))
    line = format_event(plan)
    version = f'"version":{plan.version}'
    out = [line, line.replace(version, '"version":"1"')]
    for v in ("0", "-1", "2147483647", "2147483648", "-2147483649", "1.0", "1e2", "true"):
        out.append(line.replace(version, f'"version":{v}'))
    out.append(line.replace(version, '"version":' + "9" * 30))
    plain = _with(plan, definition="plain text")
    out.append(format_event(plain))
    out.append(format_event(plain).replace(version, '"version":2147483648'))
    out.append(format_event(plain).replace(version, '"version":-0'))
    out.append(format_event(plain).replace(version, '"version":01'))
    return out


@pytest.mark.parametrize("line", [*LINES, *_plan_lines()])
def test_hand_written_lines_alike(line: str | bytes) -> None:
    _agree(line)


def test_over_precise_figures_are_still_amount_precision() -> None:
    for line in (
        _pay('"100.00001"'),
        _line(unit_price="0.0000000000001"),
        _order(credits=[{"rep_id": "a", "share": "0.33333333333333333333333333333"}]),
    ):
        with pytest.raises(EventFormatError) as info:
            parse_event(line)
        assert info.value.reason == "invalid.amount_precision"
        assert info.value.event_id in ("e", "e28")


# --- random mutations of real lines --------------------------------------------------

_ALPHABET = '0123456789.-+eE"\\{}[],: \tnulltruefalseZT\x00é'


def _mutations(line: str, rng: random.Random) -> list[str]:
    out = []
    for _ in range(12):
        text = list(line)
        for _ in range(rng.choice((1, 1, 2, 3))):
            i = rng.randrange(len(text))
            op = rng.random()
            if op < 0.4:
                text[i] = rng.choice(_ALPHABET)
            elif op < 0.7:
                del text[i]
            else:
                text.insert(i, rng.choice(_ALPHABET))
        out.append("".join(text))
    return out


def test_mutated_lines_alike() -> None:
    rng = random.Random(15)
    events, _ = _mix()
    chosen = [*rng.sample(events, 300), SPLIT, *SAMPLES]
    for event in chosen:
        for line in _mutations(format_event(event), rng):
            _agree(line)


# --- formatting values of unexpected types -------------------------------------------


def _format_outcome(format: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", format(value)
    except Exception as exc:
        return "error", type(exc)


ODD_PAYMENTS = [
    dict(amount=Decimal("1E+3")),
    dict(amount=Decimal("-0")),
    dict(amount=Decimal("0E-10")),
    dict(amount=Decimal("NaN")),
    dict(amount=Decimal("-Infinity")),
    dict(amount=5),
    dict(amount=1.5),
    dict(amount="1.5"),
    dict(amount=None),
    dict(amount=True),
    dict(event_id='quo"te\\ new\nline \x00 \x1f \x7f 公司 \U0001f600 \u2028 \ud800'),
    dict(event_id=5),
    dict(event_id=None),
    dict(event_id=DeltaKind.COMMISSION),
    dict(received_at=datetime(2026, 1, 1, 1, 2, 3, 456789, tzinfo=UTC)),
    dict(received_at=datetime(2026, 1, 1, 1, 2, 3, 999999)),  # naive
    dict(received_at=datetime(2026, 1, 1, tzinfo=timezone(timedelta(seconds=-3601)))),
    dict(received_at=datetime(2026, 1, 1, tzinfo=timezone(timedelta(microseconds=7)))),
    dict(received_at=date(2026, 1, 1)),
    dict(received_at="2026-01-01T00:00:00Z"),
    dict(received_at=None),
]


@pytest.mark.parametrize("changes", ODD_PAYMENTS, ids=repr)
def test_odd_values_format_alike(changes: dict[str, Any]) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    pay = _with(PaymentReceived("e", at, "o", "p", Decimal(1), at), **changes)
    assert _format_outcome(format_event, pay) == _format_outcome(ref.format_event, pay)


def test_odd_records_format_alike() -> None:
    order = SPLIT
    line = order.lines[0]
    odd_values: list[Any] = [
        _with(order, lines=list(order.lines)),  # a list, not a tuple
        _with(order, lines=(line, "x")),
        _with(order, lines=(_with(line, quantity=3),)),
        _with(
            order, credits=(Credit("a", Decimal("1")), _with(Credit("b", Decimal(1)), share=0.5))
        ),
        _with(order, rep_id=3),
        _with(order, placed_at=None),
        _with(order, placed_at=datetime(2026, 1, 1)),
        _with(SAMPLES[0], active=1),
        _with(SAMPLES[0], active=None),
        _with(SAMPLES[2], customer_since=datetime(2026, 1, 1, tzinfo=UTC)),
        _with(SAMPLES[2], customer_since="2020-01-01"),
        _with(_delta(), kind="commission"),
        _with(_delta(), plan_version=True),
        _with(_delta(), plan_version=2**70),
        _with(_delta(), amount=Decimal("1E+100")),
        _with(_delta(), amount=1),
        _with(_delta(), lines=(_with(_delta().lines[0], modifiers=["a"]),)),
        _with(_delta(), lines=(_with(_delta().lines[0], modifiers=("a", 1)),)),
        _with(_delta(), lines=(_with(_delta().lines[0], modifiers=(DeltaKind.ADJUSTMENT,)),)),
        _with(_delta(), lines=(_with(_delta().lines[0], rate=None),)),
    ]
    for value in odd_values:
        got = _format_outcome(format_event, value)
        assert got == _format_outcome(ref.format_event, value), value


class _SubOrder(OrderLine):
    __slots__ = ()


def test_subclasses_format_alike() -> None:
    line = SPLIT.lines[0]
    sub = _SubOrder(*(getattr(line, f.name) for f in fields(line)))
    value = _with(SPLIT, lines=(sub,))
    assert format_event(value) == ref.format_event(value)


# --- hostile input -------------------------------------------------------------------

PAY_HEAD = (
    '{"type":"PaymentReceived","event_id":"e","occurred_at":"2026-11-01T00:00:00Z",'
    '"order_id":"o","payment_id":"p"'
)
HOSTILE = [
    ("a 10 MB line", PAY_HEAD + ',"amount":"1","received_at":"' + "9" * 10_000_000 + '"}'),
    ("a 10 MB id", '{"type":"PaymentReceived","event_id":"' + "a" * 10_000_000 + '"}'),
    ("a 10 MB number", PAY_HEAD + ',"amount":0.' + "1" * 10_000_000 + "}"),
    ("deep arrays", '{"type":"PaymentReceived","x":' + "[" * 100_000 + "]" * 100_000 + "}"),
    ("deep objects", '{"a":' * 100_000 + "1" + "}" * 100_000),
    ("deep, unclosed", "[" * (MAX_LINE - 1)),
    ("1e999999999", PAY_HEAD + ',"amount":1e999999999,"received_at":"2026-11-01T00:00:00Z"}'),
    ("-1e999999999", PAY_HEAD + ',"amount":"-1e999999999","received_at":"2026-11-01T00:00:00Z"}'),
    ("1e-999999999", PAY_HEAD + ',"amount":"1e-999999999","received_at":"2026-11-01T00:00:00Z"}'),
    ("huge exponent", PAY_HEAD + ',"amount":"1e99999999999999999999","received_at":"x"}'),
    ("300 digits, 10 places", PAY_HEAD + ',"amount":"' + "7" * 300 + "." + "1" * 10 + '"}'),
    ("300 digits, zeros", PAY_HEAD + ',"amount":"' + "7" * 300 + "." + "0" * 10 + '"}'),
    ("900k digits", PAY_HEAD + ',"amount":"0.' + "3" * 900_000 + '","received_at":"x"}'),
    ("long integer", PAY_HEAD + ',"amount":' + "9" * 5000 + "}"),
    ("long type", '{"type":"' + "T" * 900_000 + '"}'),
    ("long field", PAY_HEAD + ',"' + "f" * 900_000 + '":1}'),
    ("long stamp", PAY_HEAD + ',"amount":"1","received_at":"' + "2" * 900_000 + '"}'),
]


@pytest.mark.parametrize(("what", "line"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_clearly(what: str, line: str) -> None:
    start = time.process_time()
    with pytest.raises(EventFormatError) as info:
        parse_event(line)
    assert time.process_time() - start < 5, what
    assert len(str(info.value)) < 400, what  # the offending value is quoted short
    with pytest.raises(EventFormatError):
        parse_event(line.encode())


def test_hostile_reasons() -> None:
    def reason(line: str) -> str:
        with pytest.raises(EventFormatError) as info:
            parse_event(line)
        return info.value.reason

    named = dict(HOSTILE)
    assert reason(named["a 10 MB line"]) == "format.json"
    assert reason(named["deep arrays"]) == "format.json"
    assert reason(named["1e999999999"]) == "format.bad_value"
    assert reason(named["300 digits, 10 places"]) == "invalid.amount_precision"
    assert reason(named["300 digits, zeros"]) == "format.bad_value"


def test_a_line_of_the_limit_is_read() -> None:
    line = format_event(_with(SAMPLES[0], name="n" * 1000))
    padded = line + " " * (MAX_LINE - len(line))
    assert len(padded) == MAX_LINE
    assert parse_event(padded) == parse_event(line)
    with pytest.raises(EventFormatError, match=r"format\.json"):
        parse_event(padded + " ")


def test_decimals_keep_their_representation() -> None:
    lines = [_pay(f'"{a}"') for a in ("10.5", "10.50", "10.500", "10.5000", "-0", "0")]
    for _ in range(2):
        got = [str(parse_event(line).amount) for line in lines]  # type: ignore[union-attr]
        assert got == ["10.5", "10.50", "10.500", "10.5000", "-0", "0"]


def test_timestamps_keep_their_offset_and_milliseconds() -> None:
    line = _pay('"1"', '"2026-11-01T08:00:00.123999+08:00"')
    event = parse_event(line)
    assert isinstance(event, PaymentReceived)
    assert event.received_at == datetime(2026, 11, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert event.received_at.utcoffset() == timedelta(hours=8)
    assert event.occurred_at.utcoffset() == timedelta(0)
    order = parse_event(_order(placed_at="2026-11-02T09:00:00.000-05:00"))
    assert isinstance(order, OrderPlaced) and order.placed_at.utcoffset() == timedelta(hours=-5)


def test_customer_and_rep_optional_fields() -> None:
    for event in (
        CustomerChanged(
            "c", datetime(2026, 1, 1, tzinfo=UTC), "c", "n", None, "r", None, "o", None
        ),
        RepChanged("r", datetime(2026, 1, 1, tzinfo=UTC), "r", "n", None, "m", None, False),
    ):
        line = format_event(event)
        assert line == ref.format_event(event)
        _same(parse_event(line), event)
