"""``comstream worker`` runs the worker in a child process and starts it again when it
ends with :data:`RESTART_STATUS`.

The worker ends itself with that status, before acknowledging anything, when continuing
could lose a message: a message it could neither process nor dead-letter, a stop in the
middle of a message, or a message the runtime skipped (``streams.app.guarded``,
``streams.continuity``). Reading again from the committed offsets is the recovery, so a
restart is what such an exit asks for; any other status (a clean stop, a configuration
error) is passed on. SIGTERM and SIGINT are passed to the worker, which stops cleanly, and
are not followed by a restart. The worker dies with the supervisor (``PR_SET_PDEATHSIG``),
so a SIGKILL of the supervisor's process group leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

RESTART_STATUS = 70  # streams.app.EXIT_UNPROCESSED
SUPERVISED_ENV = "COMSTREAM_SUPERVISED"
# in the line the supervisor writes to stderr (the worker's log) before each restart
RESTART_MARK = "(a message must be read again); restarting"
STABLE_AFTER_S = 60.0  # a worker that ran this long restarts after the shortest delay
MAX_DELAY_S = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: a SIGKILL of the supervisor alone leaves the worker
        pass


def restart_delay(restarts_in_a_row: int) -> float:
    """Seconds to wait before the next start: 1, 2, 4, ... up to :data:`MAX_DELAY_S`."""
    return float(min(MAX_DELAY_S, 2 ** max(0, restarts_in_a_row)))


def supervise(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    delay: Callable[[int], float] = restart_delay,
) -> int:
    """Run ``argv`` until it ends with a status other than :data:`RESTART_STATUS`, or a
    stop signal arrives; return its last status (128 + n for a signal n). ``delay`` gives
    the seconds before a restart from the number of quick restarts in a row."""
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    child_env = dict(os.environ if env is None else env)
    child_env[SUPERVISED_ENV] = "1"
    in_a_row = 0
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(
                list(argv), env=child_env, start_new_session=True, preexec_fn=_die_with_parent
            )
            status = child.wait()
            if status < 0:
                status = 128 - status
            if stop.is_set() or status != RESTART_STATUS:
                return status
            in_a_row = 0 if time.monotonic() - started >= STABLE_AFTER_S else in_a_row + 1
            wait_s = delay(in_a_row)
            print(
                f"comstream worker: the worker ended with status {status} {RESTART_MARK} "
                f"in {wait_s:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            if stop.wait(wait_s):
                return status
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def worker_command() -> list[str]:
    """The command line of this ``comstream worker`` process, to run supervised."""
    return [sys.executable, "-m", "comstream.cli", *sys.argv[1:]]
