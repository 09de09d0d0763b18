"""Settings are validated at start and name the variable at fault."""

from __future__ import annotations

import pytest

from streams.settings import SettingsError, load_settings


def test_defaults_point_at_the_local_broker_and_embedded_clickhouse() -> None:
    s = load_settings({})
    assert s.bootstrap == "127.0.0.1:19092"
    assert s.clickhouse_dsn.startswith("chdb:///")
    assert s.topics.orders == "orders" and s.topics.deltas == "commission.deltas"


def test_environment_overrides() -> None:
    s = load_settings(
        {
            "KAFKA_BOOTSTRAP": "10.0.0.1:9092",
            "COMSTREAM_CLICKHOUSE_DSN": "http://ch:8123",
            "COMSTREAM_PARTITIONS": "8",
            "COMSTREAM_TOPIC_PREFIX": "test.",
            "COMSTREAM_FACT_LINGER_MS": "2500",
            "COMSTREAM_STALL_AFTER_S": "0",
        }
    )
    assert s.stall_after_s == 0 and load_settings({}).stall_after_s == 60
    assert (s.bootstrap, s.clickhouse_dsn, s.partitions) == ("10.0.0.1:9092", "http://ch:8123", 8)
    assert (s.sink_linger_ms, s.fact_linger_ms) == (200, 2500)
    assert s.topics.payments == "test.payments"


@pytest.mark.parametrize(
    "env, name",
    [
        ({"COMSTREAM_PARTITIONS": "four"}, "COMSTREAM_PARTITIONS"),
        ({"COMSTREAM_PARTITIONS": "0"}, "COMSTREAM_PARTITIONS"),
        ({"COMSTREAM_WEB_PORT": "70000"}, "COMSTREAM_WEB_PORT"),
        ({"COMSTREAM_FACT_LINGER_MS": "0"}, "COMSTREAM_FACT_LINGER_MS"),
        ({"COMSTREAM_STALL_AFTER_S": "-1"}, "COMSTREAM_STALL_AFTER_S"),
        ({"COMSTREAM_CLICKHOUSE_DSN": "mysql://x"}, "COMSTREAM_CLICKHOUSE_DSN"),
        ({"KAFKA_BOOTSTRAP": "nohost"}, "KAFKA_BOOTSTRAP"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env)
