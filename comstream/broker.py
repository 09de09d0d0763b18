"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, for tests and the demo.

A thin wrapper around ``deploy/kafka/broker.sh``, which fetches Kafka from Maven Central
on first use (``deploy/kafka/pom.xml``), formats the storage once and runs the broker as a
background JVM. The broker outlives the Python process unless :meth:`LocalBroker.stop` is
called (``with LocalBroker(...) as broker:`` does that), so data and the process survive a
crash of the caller; a later ``start`` with the same ports and data dir reuses both.

    with LocalBroker(port=19092, controller_port=19093, data_dir=tmp / "kafka") as broker:
        produce_to(broker.bootstrap)
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from .errors import ComstreamError

__all__ = ["BROKER_SCRIPT", "BrokerError", "LocalBroker"]

log = logging.getLogger(__name__)

#: The shell script that does the work; the package is installed editable from the repo.
BROKER_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "broker.sh"

# Seconds allowed per command: a first start includes a Maven download of ~45 MB.
_FETCH_TIMEOUT = 1800.0
_START_TIMEOUT = _FETCH_TIMEOUT + 120.0
_STOP_TIMEOUT = 120.0


class BrokerError(ComstreamError):
    """The local broker could not be fetched, started or stopped; the message carries the
    script's output, including the tail of the broker log when start failed."""


class LocalBroker:
    """One local Kafka broker: PLAINTEXT on ``127.0.0.1:port``, its KRaft controller on
    ``127.0.0.1:controller_port``, everything it stores under ``data_dir`` (default
    ``var/kafka/<port>`` in the repo). Jars come from ``$KAFKA_LIBS_DIR`` (default
    ``var/kafka/libs``). Instances hold no process handle: the pid lives in the data dir,
    so another ``LocalBroker`` with the same settings controls the same broker.
    """

    def __init__(
        self, port: int = 19092, controller_port: int = 19093, data_dir: Path | None = None
    ) -> None:
        """Describe a broker; nothing is started. Raises :class:`BrokerError` when the two
        ports are equal or outside 1..65535."""
        for name, value in (("port", port), ("controller_port", controller_port)):
            if not 0 < value < 65536:
                raise BrokerError(f"{name} must be within 1..65535, got {value}")
        if port == controller_port:
            raise BrokerError(f"port and controller_port must differ, both are {port}")
        self.port = port
        self.controller_port = controller_port
        self.data_dir = data_dir.resolve() if data_dir is not None else None

    def __repr__(self) -> str:
        return (
            f"LocalBroker(port={self.port}, controller_port={self.controller_port}, "
            f"data_dir={self.data_dir!r})"
        )

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients use: ``"127.0.0.1:<port>"``."""
        return f"127.0.0.1:{self.port}"

    def fetch(self) -> None:
        """Download Kafka with Maven unless already present (fast when it is)."""
        self._run("fetch", _FETCH_TIMEOUT)

    def start(self) -> str:
        """Start the broker (fetching it first if needed) and wait until it answers a
        metadata request; returns :attr:`bootstrap`. Starting a running broker is a no-op.
        Raises :class:`BrokerError` with the broker log tail if it does not come up."""
        out = self._run("start", _START_TIMEOUT)
        lines = out.split()
        if not lines or lines[-1] != self.bootstrap:
            raise BrokerError(f"broker.sh start printed {out!r}, expected {self.bootstrap!r}")
        return self.bootstrap

    def stop(self) -> None:
        """Stop the broker: SIGTERM, up to 30 s for a clean shutdown, then SIGKILL.
        Stopping a broker that is not running is a no-op. Data is kept."""
        self._run("stop", _STOP_TIMEOUT)

    def restart(self) -> None:
        """Stop, then start again on the same ports and data dir: committed data survives."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """True when the broker process is alive and answers a metadata request."""
        try:
            self._run("status", _STOP_TIMEOUT)
        except BrokerError:
            return False
        return True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KAFKA_PORT"] = str(self.port)
        env["KAFKA_CONTROLLER_PORT"] = str(self.controller_port)
        if self.data_dir is not None:
            env["KAFKA_DATA_DIR"] = str(self.data_dir)
        else:
            env.pop("KAFKA_DATA_DIR", None)
        return env

    def _run(self, command: str, timeout: float) -> str:
        """Run ``broker.sh <command>``; returns its stdout, raises :class:`BrokerError`
        with its output on a non-zero exit, a timeout or a missing script."""
        if not BROKER_SCRIPT.is_file():
            raise BrokerError(
                f"{BROKER_SCRIPT} not found: LocalBroker needs the comstream source tree "
                "(an editable install); otherwise point KAFKA_BOOTSTRAP at a running broker"
            )
        try:
            proc = subprocess.run(
                ["bash", str(BROKER_SCRIPT), command],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"broker.sh {command} ({self.bootstrap}) took longer than {timeout:.0f} s"
            ) from exc
        except OSError as exc:
            raise BrokerError(f"cannot run broker.sh {command}: {exc}") from exc
        if proc.returncode != 0:
            detail = "\n".join(s for s in (proc.stderr.strip(), proc.stdout.strip()) if s)
            raise BrokerError(
                f"broker.sh {command} ({self.bootstrap}) failed with exit status "
                f"{proc.returncode}:\n{detail}"
            )
        if proc.stderr.strip():
            log.info("broker.sh %s: %s", command, proc.stderr.strip())
        return proc.stdout
