"""Shared fixtures. ``kafka_bootstrap`` is a real Kafka broker: the one named by the
environment variable ``KAFKA_BOOTSTRAP``, or else a local one started once per session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from comstream.broker import LocalBroker


def _free_port_pair() -> tuple[int, int]:
    """Two distinct ports free on 127.0.0.1 right now (both held open while choosing)."""
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """The session's local broker (started; stopped at session end), or None when
    ``KAFKA_BOOTSTRAP`` points at a broker this session does not control."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        yield None
        return
    port, controller_port = _free_port_pair()
    broker = LocalBroker(port, controller_port, tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker: LocalBroker | None) -> str:
    """Bootstrap address of a running broker: ``$KAFKA_BOOTSTRAP`` or the local one."""
    if local_broker is None:
        return os.environ["KAFKA_BOOTSTRAP"]
    return local_broker.bootstrap
