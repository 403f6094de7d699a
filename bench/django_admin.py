"""Django's admin changelist of ``auth.User``, built on the same machine as our users list, so
that ``bench/console.py --django`` can print the two side by side in one run.

The project is written into a temporary folder (settings, urls, wsgi: about forty lines), with
``django-axes`` (login lockout, as ours) and argon2 as the password hasher, so that the stack is
the one a Django shop would run.  ``list_per_page = 50``, as our list.  Its database is a SQLite
file filled with ``n`` users through set-based inserts (one argon2 hash reused for every row).

Needs the bench-only extra: ``pip install -r requirements-bench.lock`` (``make bench-console``
does it).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETTINGS = textwrap.dedent(
    """
    from pathlib import Path
    BASE = Path(__file__).resolve().parent
    SECRET_KEY = "bench-only-" + "x" * 40
    DEBUG = False
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    INSTALLED_APPS = [
        "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
        "django.contrib.sessions", "django.contrib.messages", "axes",
    ]
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "axes.middleware.AxesMiddleware",
    ]
    AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend",
                               "django.contrib.auth.backends.ModelBackend"]
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    ROOT_URLCONF = "bench_urls"
    TEMPLATES = [{
        "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    }]
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE / "db.sqlite3"}}
    USE_TZ = True
    STATIC_URL = "/static/"
    DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
    AXES_FAILURE_LIMIT = 5
    """
)

URLS = textwrap.dedent(
    """
    from django.contrib import admin
    from django.contrib.auth.admin import UserAdmin
    from django.contrib.auth.models import User
    from django.urls import path

    UserAdmin.list_per_page = 50
    urlpatterns = [path("admin/", admin.site.urls)]
    """
)

WSGI = textwrap.dedent(
    """
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")
    from django.core.wsgi import get_wsgi_application
    application = get_wsgi_application()
    """
)

#: The three requests compared with ours: first page, search, filter.
PATHS = {
    "first page": "/admin/auth/user/",
    "search": "/admin/auth/user/?q=user12",
    "filter": "/admin/auth/user/?is_active__exact=0",
}


@dataclass
class Project:
    folder: Path
    superuser: str = "bench-admin"

    @property
    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(self.folder), os.environ.get("PYTHONPATH", "")])
        return {**os.environ, "DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": path}


def write_project(folder: Path) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_settings.py").write_text(SETTINGS)
    (folder / "bench_urls.py").write_text(URLS)
    (folder / "bench_wsgi.py").write_text(WSGI)
    return Project(folder)


def setup_django(project: Project) -> None:
    """Configure Django in this process (once) for ``project``."""
    if str(project.folder) not in sys.path:
        sys.path.insert(0, str(project.folder))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    import django

    django.setup()


def build(project: Project, n_users: int) -> float:
    """Migrate and insert ``n_users`` users (~5 % inactive); the seconds it took."""
    started = time.perf_counter()
    setup_django(project)
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    hashed = make_password("correct horse battery staple")
    conn = sqlite3.connect(project.folder / "db.sqlite3")
    rows = (
        (
            hashed,
            0,
            f"user{i}",
            f"First{i}",
            f"Surname-{i}-with-a-long-double-barrelled-name",
            f"user{i}@example.com",
            0,
            0 if i % 20 == 0 else 1,
            "2026-01-01 09:00:00",
        )
        for i in range(n_users)
    )
    with conn:
        conn.executemany(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) VALUES (?, 1, ?, '', '', '', 1, 1, "
            "'2026-01-01 09:00:00')",
            (hashed, project.superuser),
        )
    conn.close()
    return time.perf_counter() - started


def client(project: Project) -> Any:
    """A Django test client logged in as the superuser (in this process)."""
    setup_django(project)
    from django.contrib.auth.models import User
    from django.test import Client

    c = Client()
    c.force_login(User.objects.get(username=project.superuser))
    return c


def worker_main(folder: str) -> None:
    """Time Django's pages in this process for :func:`worker`: each line read is ``<path>
    <n>``; each answer is one JSON line, the ``n`` times in ms and the last body's size."""
    import logging

    logging.disable(logging.WARNING)  # Django's and axes' chatter is not a figure
    c = client(Project(Path(folder)))
    for line in sys.stdin:
        path, n = line.split()
        times: list[float] = []
        size = 0
        for _ in range(int(n)):
            started = time.perf_counter()
            response = c.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
            size = len(response.content)
        print(json.dumps({"ms": times, "bytes": size}), flush=True)


@contextmanager
def worker(project: Project) -> Iterator[Callable[[str, int], tuple[list[float], int]]]:
    """Django in a process of its own, as a deployment runs it (not in ours, where its
    requests and ours would push each other out of the CPU's and Python's caches): yields
    ``run(path, n)`` → (the ``n`` request times in ms, the body's size)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.django_admin", "--worker", str(project.folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=project.env,
        cwd=Path(__file__).resolve().parent.parent,  # the repository: ``bench`` is importable
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def run(path: str, n: int) -> tuple[list[float], int]:
        stdin.write(f"{path} {n}\n")
        stdin.flush()
        answer = stdout.readline()
        if not answer:
            raise RuntimeError(f"Django's timing worker exited ({process.wait(timeout=30)})")
        found = json.loads(answer)
        return found["ms"], found["bytes"]

    try:
        yield run
    finally:
        stdin.close()
        _wait_or_kill(process)
        stdout.close()


def median_ms(c: Any, path: str, n: int) -> tuple[float, int]:
    """The median time of ``n`` GETs of ``path`` (ms) and the response size (bytes)."""
    response = c.get(path)
    assert response.status_code == 200, (path, response.status_code)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = c.get(path)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(response.content)


def session_cookie(project: Project) -> str:
    """A ``sessionid=…`` cookie of a logged-in superuser, for wrk."""
    c = client(project)
    return f"sessionid={c.cookies['sessionid'].value}"


@contextmanager
def gunicorn(project: Project, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "bench_wsgi:application",
    ]
    log = (project.folder / "gunicorn.log").open("ab")
    process = subprocess.Popen(command, cwd=project.folder, env=project.env, stdout=log, stderr=log)
    try:
        import http.client

        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Django's gunicorn exited: see {log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/admin/login/")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Django's gunicorn did not start: see {log.name}")
            time.sleep(0.2)
        time.sleep(1.0)
        yield process
    finally:
        process.terminate()
        _wait_or_kill(process)
        log.close()


def _wait_or_kill(process: subprocess.Popen[Any], seconds: float = 30) -> None:
    """Wait for ``process`` to end (it was asked to); past ``seconds``, kill it."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":
    if sys.argv[1:2] != ["--worker"] or len(sys.argv) != 3:
        sys.exit("usage: django_admin.py --worker <project folder>")
    worker_main(sys.argv[2])
