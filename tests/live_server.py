"""A real gunicorn server on a test database, for tests that need real processes (the
concurrency tests, the browser tests)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"
STARTUP_SECONDS = 60.0  # a loaded 2-core machine can take 20 s and more
STOP_SECONDS = 10.0

SERVER_ENV = {
    "PORTAL_SECRET_KEY": "live-server-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "PORTAL_ENV": "development",  # the session cookie is not Secure over plain http
    "PORTAL_RATELIMIT_ENABLED": "false",
    "PORTAL_SCHEDULER": "off",
    # Must match the hashes the factories made (tests/conftest.py FAST_ARGON2).
    "PORTAL_ARGON2_TIME_COST": "1",
    "PORTAL_ARGON2_MEMORY_COST": "1024",
    "PORTAL_ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def _control_socket_args() -> tuple[str, ...]:
    """gunicorn ≥ 27 opens a control socket in ~/.gunicorn by default, shared by every server
    on the machine; switch it off where the option exists."""
    help_text = subprocess.run(
        [str(GUNICORN), "--help"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    return ("--no-control-socket",) if "--no-control-socket" in help_text else ()


def _server_env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its PORTAL_* settings, plus the server's own (and
    ``extra``)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != "DATABASE_URL"
    }
    env.update(SERVER_ENV)
    env["DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_SECONDS)


@contextlib.contextmanager
def gunicorn(
    database_url: str,
    log_path: Path,
    *,
    workers: int,
    threads: int,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    public_host: str | None = None,
) -> Iterator[str]:
    """Run ``gunicorn app:app`` on ``database_url`` until the block ends; yields its base URL.

    ``env``: more settings for the server (``PORTAL_*`` variables).  ``public_host``: the name
    the base URL uses instead of 127.0.0.1 (``localhost`` for passkeys: WebAuthn refuses an IP
    address), which the server also gets as its PORTAL_BASE_URL.

    Waits (bounded) until ``ready_path`` answers 200.  Afterwards fails if the server logged a
    traceback: a 5xx is the tests' business, but a traceback is worth failing for on its own.
    """
    port = free_port()
    base = f"http://{public_host or '127.0.0.1'}:{port}"
    if public_host is not None:
        env = {"PORTAL_BASE_URL": base, **(env or {})}
    cmd = [
        str(GUNICORN),
        "-c",  # the production config file (docs/deploy.md); the options below override it
        str(REPO / "deploy" / "gunicorn.conf.py"),
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        *_control_socket_args(),
        "app:app",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            # Mail the server writes (no SMTP in tests) stays next to its log, never in the
            # repository's instance/outbox, unless the caller names another folder.
            env=_server_env(
                database_url, {"PORTAL_MAIL_OUTBOX": str(log_path.parent / "outbox"), **(env or {})}
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches the workers
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if requests.get(base + ready_path, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn not ready in {STARTUP_SECONDS} s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        _stop(proc)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()
