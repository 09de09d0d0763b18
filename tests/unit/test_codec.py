"""Round trips of every schema through Avro and JSON lines, and refusals of bad input."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from processors.events import (
    CommissionDelta,
    Credit,
    CustomerChanged,
    DeltaKind,
    LineTrace,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    PaymentReceived,
    PeriodClosed,
    PlanPublished,
    RefundIssued,
    RepChanged,
)
from schemas.codec import (
    SCHEMA_IDS,
    DeadLetterRecord,
    decode,
    decode_event,
    encode,
    peek_type,
)
from schemas.container import read_events, write_events
from schemas.errors import CodecError, EventFormatError
from schemas.jsonl import format_event, parse_event

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 3, 9, 30, 15, 123000, tzinfo=UTC)

SAMPLES = [
    RepChanged("e1", T0, "rep-1", "Ada Li", "team-east", "rep-9", "APAC", True),
    RepChanged("e1b", T0, "rep-2", "Bo", None, None, None, False),
    CustomerChanged(
        "e2", T0, "c-1", "Acme 公司", "A", "APAC", "retail", "rep-1", date(2020, 2, 29)
    ),
    CustomerChanged("e2b", T0, "c-2", "Nobody", None, None, None, None, None),
    OrderPlaced(
        "e3",
        T0,
        "o-1",
        "c-1",
        datetime(2026, 11, 1, 0, 30, tzinfo=CST),
        "CNY",
        (
            OrderLine(
                "l1", "SKU-1", "hardware", Decimal("3"), Decimal("1999.9900"), Decimal("0.1")
            ),
            OrderLine(
                "l2",
                "SKU-2",
                "services",
                Decimal("1.5"),
                Decimal("80"),
                Decimal(0),
                Decimal("20.5"),
            ),
        ),
        None,
        (Credit("rep-1", Decimal("0.3333")), Credit("rep-2", Decimal("0.6667"))),
    ),
    OrderPlaced(
        "e3b",
        T0,
        "o-2",
        "c-2",
        T0,
        "USD",
        (OrderLine("l", "S", "c", Decimal(1), Decimal(1)),),
        "rep-2",
    ),
    OrderCancelled("e4", T0, "o-1", T0 + timedelta(days=2)),
    PaymentReceived("e5", T0, "o-1", "p-1", Decimal("1000.50"), T0),
    RefundIssued("e6", T0, "o-1", "r-1", Decimal("0.01"), T0),
    PlanPublished("e7", T0, "standard", 3, date(2026, 1, 1), '{"plan_id":"standard"}'),
    PeriodClosed("e8", T0, "2026-10", "fin-1"),
]


def _equal(a: object, b: object) -> None:
    # dataclass equality compares Decimals numerically and datetimes as instants
    assert a == b
    if isinstance(a, OrderPlaced) and isinstance(b, OrderPlaced):
        assert a.placed_at.utcoffset() == b.placed_at.utcoffset()


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: f"{type(e).__name__}-{e.event_id}")
def test_avro_round_trip(event: object) -> None:
    data = encode(event)  # type: ignore[arg-type]
    assert data[0] == 0 and peek_type(data) == type(event).__name__
    _equal(decode_event(data), event)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: f"{type(e).__name__}-{e.event_id}")
def test_jsonl_round_trip(event: object) -> None:
    line = format_event(event)  # type: ignore[arg-type]
    _equal(parse_event(line), event)
    _equal(decode_event(encode(parse_event(line))), event)


def _delta() -> CommissionDelta:
    return CommissionDelta(
        delta_id="abc",
        kind=DeltaKind.COMMISSION,
        rep_id="rep-1",
        order_id="o-1",
        customer_id="c-1",
        plan_id="standard",
        plan_version=3,
        currency="USD",
        amount=Decimal("-12.34"),
        cumulative=Decimal("100.00"),
        commission=Decimal("112.345"),
        earned_fraction=Decimal("0.5"),
        share=Decimal("0.3333"),
        revenue_base=Decimal("333.3"),
        cause_event_id="e5",
        cause_event_type="RefundIssued",
        occurred_at=T0,
        booked_period="2026-11",
        origin_period="2026-10",
        reverses="abc-1",
        lines=(
            LineTrace(
                "l1",
                "SKU",
                "hardware",
                "r1",
                "revenue",
                Decimal("10"),
                "0.05",
                ("loyal",),
                Decimal("1.1"),
                Decimal("0.55"),
            ),
            LineTrace(
                "l2",
                "SKU",
                "x",
                None,
                "revenue",
                Decimal("1"),
                "-",
                (),
                Decimal(1),
                Decimal(0),
                "no rule matched",
            ),
        ),
    )


def test_delta_round_trip() -> None:
    delta = _delta()
    assert decode(encode(delta)) == delta


def test_delta_trace_values_round_to_schema_scale() -> None:
    delta = _delta()
    third = Decimal(1) / Decimal(3)
    fine = CommissionDelta(
        **{**{f: getattr(delta, f) for f in delta.__slots__}, "commission": third}
    )  # type: ignore[arg-type]
    assert decode(encode(fine)).commission == Decimal("0.333333333333")


def test_dead_letter_round_trip() -> None:
    rec = DeadLetterRecord(
        "decode.error", "bad", "orders", 2, 17, b"k", b"\x00\xff", None, None, T0
    )
    assert decode(encode(rec)) == rec


def test_every_schema_has_a_sample() -> None:
    covered = {type(e).__name__ for e in SAMPLES} | {"CommissionDelta", "DeadLetter"}
    assert covered == set(SCHEMA_IDS)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "shorter"),
        (b"\x01\x00\x00\x00\x03abc", "magic"),
        (b"\x00\x00\x00\x00\x63abc", "unknown schema id"),
        (b"\x00\x00\x00\x00\x05", "corrupt"),
        (encode(SAMPLES[7]) + b"x", "trailing"),
    ],
)
def test_decode_refuses_garbage(data: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode(data)


def test_decode_event_refuses_a_delta() -> None:
    with pytest.raises(CodecError, match="not an input event"):
        decode_event(encode(_delta()))


def test_encode_refuses_a_finer_scale_than_the_schema() -> None:
    bad = PaymentReceived("e", T0, "o", "p", Decimal("1.00001"), T0)
    with pytest.raises(CodecError, match="PaymentReceived"):
        encode(bad)


PAY = '"event_id":"e","occurred_at":"2026-11-01T00:00:00Z","order_id":"o","payment_id":"p"'


@pytest.mark.parametrize(
    "line, reason, where",
    [
        ("{not json", "format.json", "JSON"),
        ("[1]", "format.json", "object"),
        ('{"type":"Nope"}', "format.unknown_type", "Nope"),
        (
            '{"type":"PaymentReceived",' + PAY + ',"received_at":"2026-11-01T00:00:00Z"}',
            "format.missing_field",
            "amount",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":"1","received_at":"2026-11-01T00:00:00Z","x":1}',
            "format.unknown_field",
            "'x'",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":"abc","received_at":"2026-11-01T00:00:00Z"}',
            "format.bad_value",
            "amount",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":NaN,"received_at":"2026-11-01T00:00:00Z"}',
            "format.json",
            "NaN",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":"Infinity","received_at":"2026-11-01T00:00:00Z"}',
            "format.bad_value",
            "finite",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":"1.00001","received_at":"2026-11-01T00:00:00Z"}',
            "invalid.amount_precision",
            "decimal places",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":"1e30","received_at":"2026-11-01T00:00:00Z"}',
            "format.bad_value",
            "too large",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":"1","received_at":"2026-11-01T00:00:00"}',
            "format.bad_value",
            "no UTC offset",
        ),
        (
            '{"type":"PaymentReceived",'
            + PAY
            + ',"amount":true,"received_at":"2026-11-01T00:00:00Z"}',
            "format.bad_value",
            "amount",
        ),
    ],
)
def test_jsonl_refusals_name_the_field(line: str, reason: str, where: str) -> None:
    with pytest.raises(EventFormatError) as info:
        parse_event(line)
    assert info.value.reason == reason
    assert where in str(info.value)


def test_json_numbers_are_read_exactly() -> None:
    line = (
        '{"type":"PaymentReceived",'
        + PAY
        + ',"amount":0.1,"received_at":"2026-11-01T00:00:00+08:00"}'
    )
    event = parse_event(line)
    assert isinstance(event, PaymentReceived)
    assert event.amount == Decimal("0.1") and str(event.amount) == "0.1"
    assert event.received_at.utcoffset() == timedelta(hours=8)


def test_jsonl_keeps_milliseconds_like_the_wire() -> None:
    line = format_event(SAMPLES[7]).replace(".123+00:00", ".123456+00:00")
    event = parse_event(line)
    assert event == decode_event(encode(event))


def test_avro_container_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "events.avro"
    assert write_events(path, SAMPLES) == len(SAMPLES)
    back = list(read_events(path))
    assert back == SAMPLES
    assert back[4].placed_at.utcoffset() == timedelta(hours=8)  # type: ignore[attr-defined]


def test_avro_container_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.avro"
    path.write_bytes(b"not avro at all")
    with pytest.raises(CodecError, match="not a readable Avro container"):
        list(read_events(path))


THIRD = Decimal("0.3333333333333333333333333333")
SPLIT = OrderPlaced(
    "e28",
    T0,
    "o-28",
    "c-1",
    T0,
    "USD",
    (
        OrderLine(
            "l",
            "S",
            "c",
            Decimal("1.000000000001"),
            Decimal("0.000000000001"),
            Decimal("0.123456789012"),
            Decimal("999999999.999999999999"),
        ),
    ),
    None,
    (
        Credit("a", THIRD),
        Credit("b", THIRD),
        Credit("c", Decimal("0.3333333333333333333333333334")),
    ),
)


def test_28_place_shares_and_12_place_line_figures_round_trip() -> None:
    _equal(decode_event(encode(SPLIT)), SPLIT)
    line = format_event(SPLIT)
    assert '"share":"0.3333333333333333333333333334"' in line
    _equal(parse_event(line), SPLIT)
    _equal(decode_event(encode(parse_event(line))), SPLIT)


def test_delta_carries_a_28_place_share() -> None:
    delta = replace(_delta(), share=THIRD)
    assert decode(encode(delta)).share == THIRD
    assert decode(encode(replace(_delta(), share=Decimal(1)))).share == 1


def test_the_earlier_schemas_are_still_read() -> None:
    """OrderPlaced and CommissionDelta changed (shares to 28 places, line figures to 12):
    bytes written under their earlier ids (3, 9) decode as they were written."""
    import fastavro

    from schemas.codec import LEGACY_SCHEMAS, to_record

    assert LEGACY_SCHEMAS == {3: "OrderPlaced", 9: "CommissionDelta"}
    assert SCHEMA_IDS["OrderPlaced"] not in LEGACY_SCHEMAS
    assert SCHEMA_IDS["CommissionDelta"] not in LEGACY_SCHEMAS
    root = Path(__file__).resolve().parents[2] / "schemas" / "legacy"
    for value, schema_id in ((SAMPLES[4], 3), (_delta(), 9)):
        name = type(value).__name__
        schema = fastavro.parse_schema(json.loads((root / f"{name}-{schema_id}.avsc").read_text()))
        buf = io.BytesIO()
        buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
        rec = to_record(value)
        if name == "CommissionDelta":  # the share as the earlier writer had it
            rec["share"] = rec["share"].quantize(Decimal("1E-12"))
        fastavro.schemaless_writer(buf, schema, rec)
        old = buf.getvalue()
        assert peek_type(old) == name
        _equal(decode(old), value)
        assert encode(value)[1:5] == SCHEMA_IDS[name].to_bytes(4, "big")


@pytest.mark.parametrize(
    ("field", "value", "places"),
    [
        ("share", "0.33333333333333333333333333333", 28),
        ("quantity", "1.0000000000001", 12),
        ("unit_price", "0.0000000000001", 12),
        ("discount", "0.1000000000001", 12),
        ("unit_cost", "1.0000000000001", 12),
    ],
)
def test_jsonl_refuses_a_figure_finer_than_its_field_as_amount_precision(
    field: str, value: str, places: int
) -> None:
    obj = json.loads(format_event(SPLIT))
    if field == "share":
        obj["credits"][0]["share"] = value
    else:
        obj["lines"][0][field] = value
    with pytest.raises(EventFormatError) as info:
        parse_event(json.dumps(obj))
    assert info.value.reason == "invalid.amount_precision"
    assert f"more than {places} decimal places" in info.value.detail
    assert (info.value.event_id, info.value.event_type) == ("e28", "OrderPlaced")


def test_jsonl_accepts_zeros_beyond_the_scale() -> None:
    line = (
        '{"type":"PaymentReceived",'
        + PAY
        + ',"amount":"10.500000","received_at":"2026-11-01T00:00:00Z"}'
    )
    event = parse_event(line)
    assert isinstance(event, PaymentReceived) and event.amount == Decimal("10.5")
    assert decode_event(encode(event)) == event
