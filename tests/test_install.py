"""Installable: ``pip install <clone>`` into a fresh venv outside the checkout serves every page.

The package is built from a copy of the checkout (as a clone would be) and installed into a new
venv in a temporary folder; everything then runs from another temporary folder, with only the
installed ``portal`` and ``gunicorn`` commands: no ``app.py``, no repository on the path.  pip's
cache and the configured indexes make it quick; nothing is fetched beyond them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests

from tests.helpers import csrf_token_in
from tests.live_server import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SECRET = "installed-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW_PASSWORD = "Correct-Horse-Battery-Staple-42"
TIMEOUT = 600
#: What a clone has but the build must not depend on (local state of this checkout).
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "instance", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the package installed from a copy of the checkout; its bin/."""
    root = tmp_path_factory.mktemp("install")
    clone = root / "clone"
    shutil.copytree(REPO, clone, ignore=NOT_IN_A_CLONE)
    venv = root / "venv"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root, env=env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    # As docs/deploy.md installs: the package, with the versions of the lock file.
    _run([*pip, "-c", str(clone / "requirements.lock"), str(clone)], cwd=root, env=env)
    shutil.rmtree(clone)  # the installed package must stand on its own
    return venv / "bin"


def _wait_until_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until ``url`` answers 200 (bounded); fails at once if the server exits."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"gunicorn not ready in 60 s:\n{log.read_text()}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def _portal_env(instance: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "FLASK_")) and k not in {"DATABASE_URL", "VIRTUAL_ENV"}
    }
    env.update(
        {
            "PORTAL_INSTANCE_PATH": str(instance),
            "PORTAL_SECRET_KEY": SECRET,
            "PORTAL_ENV": "development",  # plain http in the test: the cookie is not Secure
            "PORTAL_MAIL_OUTBOX": str(instance / "outbox"),
        }
    )
    return env


def test_the_version_is_the_projects(installed: Path, tmp_path: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    out = _run([str(installed / "portal"), "--version"], cwd=tmp_path, env=_portal_env(tmp_path))
    assert out.strip() == f"Claims Portal Console {version}"


def test_an_installed_package_migrates_and_serves_the_login_page_and_the_console(
    installed: Path, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    env = _portal_env(instance)
    portal = str(installed / "portal")
    _run([portal, "db", "upgrade"], cwd=tmp_path, env=env)
    assert (instance / "portal.sqlite").is_file()  # PORTAL_INSTANCE_PATH, not site-packages
    _run([portal, "create-org", "Installed Claims Ltd"], cwd=tmp_path, env=env)
    out = _run(
        [
            *(portal, "create-user", "--org", "Installed Claims Ltd", "--user-id", "inst.admin"),
            *("--profile", "administrator", "--email", "admin@installed.example", "--name", "Ida"),
        ],
        cwd=tmp_path,
        env=env,
    )
    found = re.search(r"One-time password[^:]*: (\S+)", out)
    assert found, out
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    cmd = [str(installed / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "portal:create_app()"]
    with log.open("wb") as out_file:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env,
            stdout=out_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_ready(proc, base + "/console/login", log)
        with requests.Session() as http:
            page = http.get(base + "/console/login", timeout=30)
            assert page.status_code == 200
            assert "<form" in page.text
            css = http.get(base + "/static/app.css", timeout=30)
            assert css.status_code == 200
            assert css.text.strip()
            reply = http.post(
                base + "/console/login",
                data={
                    "user_id": "inst.admin",
                    "password": found.group(1),
                    "csrf_token": csrf_token_in(page.text),
                },
                timeout=60,
            )
            assert reply.status_code == 200
            assert reply.url.endswith("/account/password"), reply.url
            reply = http.post(
                base + "/account/password",
                data={
                    "current_password": found.group(1),
                    "password": NEW_PASSWORD,
                    "confirm": NEW_PASSWORD,
                    "csrf_token": csrf_token_in(reply.text),
                },
                timeout=60,
            )
            assert reply.status_code == 200
            assert reply.url.rstrip("/").endswith("/console"), reply.url
            assert "Installed Claims Ltd" in reply.text
            users = http.get(base + "/console/users", timeout=30)
            assert users.status_code == 200
            assert "inst.admin" in users.text
    finally:
        _stop(proc)
    assert "Traceback" not in log.read_text(), log.read_text()
