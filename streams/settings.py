"""Typed settings, read once from the environment and validated at start.

Every variable has the ``COMSTREAM_`` prefix except ``KAFKA_BOOTSTRAP``, which points
everything at an existing cluster instead of the local broker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from processors.errors import ComstreamError

REPO_ROOT = Path(__file__).resolve().parents[1]


class SettingsError(ComstreamError):
    """An environment variable that does not hold a valid value."""


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names; ``prefix`` lets several deployments (or tests) share a cluster."""

    prefix: str = ""
    customers: str = field(init=False)
    reps: str = field(init=False)
    orders: str = field(init=False)
    payments: str = field(init=False)
    plans: str = field(init=False)
    periods: str = field(init=False)
    deltas: str = field(init=False)
    facts: str = field(init=False)
    dlq: str = field(init=False)
    customer_stage: str = field(init=False)
    order_stage: str = field(init=False)
    rep_stage: str = field(init=False)
    statement_commands: str = field(init=False)
    audit: str = field(init=False)
    users: str = field(init=False)

    def __post_init__(self) -> None:
        p = self.prefix
        for attr, name in (
            ("customers", "crm.customers"),
            ("reps", "crm.reps"),
            ("orders", "orders"),
            ("payments", "payments"),
            ("plans", "commission.plans"),
            ("periods", "commission.periods"),
            ("deltas", "commission.deltas"),
            ("facts", "commission.facts"),
            ("dlq", "commission.dlq"),
            ("customer_stage", "comstream.customer-stage"),
            ("order_stage", "comstream.order-stage"),
            ("rep_stage", "comstream.rep-stage"),
            ("statement_commands", "commission.statement-commands"),
            ("audit", "commission.audit"),
            ("users", "comstream.users"),
        ):
            object.__setattr__(self, attr, p + name)

    @property
    def upstream(self) -> tuple[str, ...]:
        """The topics upstream systems publish to."""
        return (self.customers, self.reps, self.orders, self.payments, self.plans, self.periods)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Compacted topics every worker reads whole (reps, plans, closed periods)."""
        return (self.reps, self.plans, self.periods)

    def by_event_type(self) -> dict[str, str]:
        """The topic each event type is published to."""
        return {
            "RepChanged": self.reps,
            "CustomerChanged": self.customers,
            "OrderPlaced": self.orders,
            "OrderCancelled": self.orders,
            "PaymentReceived": self.payments,
            "RefundIssued": self.payments,
            "PlanPublished": self.plans,
            "PeriodClosed": self.periods,
        }


@dataclass(frozen=True, slots=True)
class Settings:
    bootstrap: str = "127.0.0.1:19092"
    clickhouse_dsn: str = f"chdb://{REPO_ROOT / 'var' / 'clickhouse'}"
    data_dir: Path = REPO_ROOT / "var"
    app_id: str = "comstream"
    partitions: int = 4
    standby_replicas: int = 0
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    sink_batch: int = 2000
    sink_linger_ms: int = 200
    # the BI fact sink's: facts feed reports, not the live leaderboard, and each insert
    # costs ~20 ms whatever its size, so they are gathered for longer
    fact_linger_ms: int = 1000
    # how long the worker's Kafka producer waits to fill a batch before sending it
    producer_linger_ms: int = 0
    # how long a crashed member keeps its partitions before the group moves them
    session_timeout_s: int = 10
    # a worker in which nothing moved for this long while a message is being processed or
    # waits in one of its partitions ends itself, to be started again (0: never);
    # streams.continuity.StallWatch
    stall_after_s: int = 60
    # run the ClickHouse sink in this worker; with the embedded engine exactly one
    # worker of a deployment does (it is also the one that answers queries)
    sink: bool = True
    # API authentication: "auto" (on as soon as one user exists), "true" or "false"
    auth: str = "auto"
    topics: Topics = field(default_factory=Topics)

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={value} is outside [{lo}, {hi}]")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: the process environment). Raises SettingsError
    naming the variable when a value is invalid."""
    env = os.environ if env is None else env
    defaults = Settings()
    data_dir = Path(env.get("COMSTREAM_DATA_DIR") or defaults.data_dir).resolve()
    dsn = env.get("COMSTREAM_CLICKHOUSE_DSN") or f"chdb://{data_dir / 'clickhouse'}"
    if not dsn.startswith(("chdb://", "http://", "https://")):
        raise SettingsError(
            f"COMSTREAM_CLICKHOUSE_DSN={dsn!r}: expected chdb:///path or http(s)://host:port"
        )
    bootstrap = env.get("KAFKA_BOOTSTRAP") or defaults.bootstrap
    if ":" not in bootstrap:
        raise SettingsError(f"KAFKA_BOOTSTRAP={bootstrap!r}: expected host:port[,host:port]")
    app_id = env.get("COMSTREAM_APP_ID") or defaults.app_id
    auth = (env.get("COMSTREAM_AUTH") or defaults.auth).strip().lower()
    if auth not in ("auto", "true", "false"):
        raise SettingsError(f"COMSTREAM_AUTH={auth!r}: expected auto, true or false")
    return Settings(
        bootstrap=bootstrap,
        clickhouse_dsn=dsn,
        data_dir=data_dir,
        app_id=app_id,
        partitions=_int(env, "COMSTREAM_PARTITIONS", defaults.partitions, 1, 256),
        standby_replicas=_int(env, "COMSTREAM_STANDBY_REPLICAS", 0, 0, 8),
        web_host=env.get("COMSTREAM_WEB_HOST") or defaults.web_host,
        web_port=_int(env, "COMSTREAM_WEB_PORT", defaults.web_port, 1, 65535),
        sink_batch=_int(env, "COMSTREAM_SINK_BATCH", defaults.sink_batch, 1, 1_000_000),
        sink_linger_ms=_int(env, "COMSTREAM_SINK_LINGER_MS", defaults.sink_linger_ms, 1, 60_000),
        fact_linger_ms=_int(env, "COMSTREAM_FACT_LINGER_MS", defaults.fact_linger_ms, 1, 60_000),
        producer_linger_ms=_int(
            env, "COMSTREAM_PRODUCER_LINGER_MS", defaults.producer_linger_ms, 0, 1000
        ),
        session_timeout_s=_int(
            env, "COMSTREAM_SESSION_TIMEOUT", defaults.session_timeout_s, 6, 300
        ),
        stall_after_s=_int(env, "COMSTREAM_STALL_AFTER_S", defaults.stall_after_s, 0, 86_400),
        sink=_bool(env, "COMSTREAM_SINK", defaults.sink),
        auth=auth,
        topics=Topics(env.get("COMSTREAM_TOPIC_PREFIX", "")),
    )
