"""Helpers of the fault-injection suite: waiting on conditions (never fixed sleeps), the
scheduler as a real process, and figures printed for the record."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path

from tests.live_server import REPO
from tests.live_server import _server_env

FLASK = Path(sys.executable).parent / "flask"
STOP_SECONDS = 30.0


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


#: The figures measured in this session, printed at the end of the run (tests/faults/conftest.py).
FIGURES: list[str] = []


def figure(database_url: str, line: str) -> None:
    """Record a measured figure ("redis down: 200 logins, 0 5xx, 0 lost") for the summary,
    with the database it was measured on."""
    backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    FIGURES.append(f"{backend}: {line}")


@contextlib.contextmanager
def scheduler(
    database_url: str, log_path: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``flask --app app portal scheduler`` in its own process group until the block ends
    (then SIGTERM, or SIGKILL if it does not stop)."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [str(FLASK), "--app", "app", "portal", "scheduler"],
            cwd=REPO,
            env=_server_env(database_url, env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_SECONDS)


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process (no clean-up of any kind) and reap it, so that its pid is gone."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=STOP_SECONDS)
