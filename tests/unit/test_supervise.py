"""The worker supervisor (comstream/supervise.py) with real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from comstream.supervise import RESTART_STATUS, restart_delay, supervise


def test_the_restart_status_is_the_workers_exit_for_a_message_to_read_again() -> None:
    from streams.app import EXIT_UNPROCESSED

    assert RESTART_STATUS == EXIT_UNPROCESSED


def test_restart_delays_grow_and_are_capped() -> None:
    assert [restart_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def _child(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


def test_a_child_ending_with_70_is_started_again_until_it_ends_otherwise(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    argv = _child(
        tmp_path,
        f"""
        import os, sys
        path = {str(runs)!r}
        n = len(open(path).read()) if os.path.exists(path) else 0
        open(path, "a").write("x")
        assert os.environ["COMSTREAM_SUPERVISED"] == "1"
        sys.exit({RESTART_STATUS} if n < 2 else 3)
        """,
    )
    delays: list[int] = []
    status = supervise(argv, delay=lambda n: delays.append(n) or 0.01)
    assert status == 3  # any other status is passed on, not restarted
    assert runs.read_text() == "xxx"
    assert delays == [1, 2]  # two quick restarts in a row


def _supervisor(tmp_path: Path, child_body: str) -> tuple[subprocess.Popen[bytes], Path]:
    pid_file = tmp_path / "child.pid"
    child = _child(tmp_path, child_body.replace("PID_FILE", repr(str(pid_file))))
    code = f"import sys; from comstream.supervise import supervise; sys.exit(supervise({child!r}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, cwd=Path(__file__).parents[2]
    )
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "child did not start"
        time.sleep(0.05)
    return proc, pid_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_sigterm_reaches_the_worker_once_and_is_not_followed_by_a_restart(
    tmp_path: Path,
) -> None:
    proc, pid_file = _supervisor(
        tmp_path,
        """
        import os, signal, sys, time
        got = []
        def on_term(signum, frame):
            got.append(signum)
            time.sleep(0.3)  # a second SIGTERM would land here
            open(PID_FILE + ".terms", "w").write(str(len(got)))
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        open(PID_FILE, "w").write(str(os.getpid()))
        time.sleep(60)
        """,
    )
    os.killpg(proc.pid, signal.SIGTERM)  # what stop_process does
    assert proc.wait(20) == 0
    assert Path(str(pid_file) + ".terms").read_text() == "1"
    assert not _alive(int(pid_file.read_text()))


def test_a_sigkill_of_the_supervisor_takes_the_worker_with_it(tmp_path: Path) -> None:
    proc, pid_file = _supervisor(
        tmp_path,
        """
        import os, time
        open(PID_FILE, "w").write(str(os.getpid()))
        time.sleep(60)
        """,
    )
    child = int(pid_file.read_text())
    os.killpg(proc.pid, signal.SIGKILL)  # what the chaos tests do
    proc.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the worker outlived its supervisor"
        time.sleep(0.05)
