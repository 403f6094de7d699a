"""Sizing: a real gunicorn (4 workers) on PostgreSQL under a real HTTP load generator (wrk).

Run as ``.venv/bin/python bench/load.py --pg-url postgresql://…/portal_load`` (``make
bench-load BENCH_ARGS="--pg-url …"``).  The database is **wiped** (its ``public`` schema is
dropped and re-created) unless ``--skip-seed`` reuses what an earlier run loaded (give it the
same ``--firms`` and ``--users``).  Prints figures
only, with PASS/MISS against the targets below; docs/sizing.md turns them into a sizing table.

**Data.**  ``--firms`` organisations (default 1,000) and ``--users`` users (default 100,000) on
the real migrated schema (``bench.sweep.fresh_schema``), loaded set-based with one
``INSERT … SELECT … generate_series`` each.  The first firm is the biggest (a tenth of the users);
the others share the rest (~90 each).  The first user of each firm is its Administrator, the
rest Claims Handlers, all with access (granted 1-85 days ago, nine in ten logged in since,
expiring within the next year).  Every row carries the same real argon2id hash of one
password, computed once with the production parameters (a valid hash string may be shared by
any number of rows).  Then
``--requests`` Helpdesk requests (default: a tenth of the users) and a Helpdesk user, by
``bench.helpdesk.build_requests``; then ``VACUUM ANALYZE``, as autovacuum would leave it.

**Server.**  ``gunicorn -c deploy/gunicorn.conf.py -w 4 --max-requests 0`` on 127.0.0.1 (a
free port), ``PORTAL_ENV=production``, with ``PORTAL_BASE_URL=https://portal.example.test``,
``PORTAL_TRUSTED_HOSTS=portal.example.test``, ``PORTAL_PROXY_FIX_HOPS=1`` and the rate limits
off (``PORTAL_RATELIMIT_ENABLED=off``: every login comes from one address).  The session
cookie is ``Secure`` in production; the bench stands where the reverse proxy would
(docs/deploy.md): every request carries ``X-Forwarded-Proto: https`` and ``Host:
portal.example.test``, so the app sees HTTPS as in production, and wrk sends the cookie it is
given in a ``Cookie`` header (it keeps no cookie jar, so ``Secure`` does not stop it).  Worker
recycling is off so that no worker's CPU time is lost from the accounting mid-run.

**Load.**  wrk (``apt-get install wrk``) with a Lua script written here:

* logins: ``POST /portal/login`` with a random Claims Handler from a pool of ``--pool`` users,
  a CSRF token and its session cookie fetched once (Flask's session is a signed cookie, so one
  pre-login session serves every POST); a success is a 302.  At the default argon2 parameters
  and at OWASP's (argon2id, 19 MiB, t=2, p=1): the pool's hashes are replaced with hashes of
  those parameters and the server started with the same ``PORTAL_ARGON2_*`` (no rehash on
  login).  ``--login-clients`` connections (default 8: two per worker, so every core is busy);
* pages: ``GET /console/users`` as the Administrator of a ~90-user firm and of the biggest firm,
  and ``GET /helpdesk/requests`` as the Helpdesk user, each at 10 and 50 concurrent connections
  (``--clients``), each logged in once through the real login form.

**Figures.**  The machine's cores are shared (other jobs run on it), so throughput per core is
taken from the processes' own CPU accounting (``/proc/PID/stat``: user + system time of the
gunicorn master, its workers, and reaped children), and separately of the PostgreSQL backends
serving the workers (found in ``pg_stat_activity``).  Logins/s per core = successful logins /
CPU seconds.  Latency percentiles are wrk's (p50, p95 via its Lua ``done`` hook).  Each figure
is the median of ``--runs`` runs of ``--duration`` seconds.  Memory per worker: RSS, PSS
(``/proc/PID/smaps_rollup``: shared pages divided among the processes) and peak RSS
(``VmHWM``) after the runs.  Database size: ``pg_database_size`` and each table's (with its
indexes), per user, per Helpdesk request, and per audit event the runs' logins wrote.

Targets: at the default parameters ≥ 2 logins/s per core of the app, and the pages' p95 ≤ 300 ms
at 10 clients and ≤ 1,500 ms at 50 (on 2 shared cores), no failed requests, ≤ 250 MiB PSS per
worker.  ``--smoke`` runs the whole path at a tiny scale (10 firms, 300 users, 2-second runs):
a check that the script works, not a figure.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.helpdesk import PASSWORD  # noqa: E402
from bench.helpdesk import STAFF_ID  # noqa: E402
from bench.helpdesk import build_requests  # noqa: E402
from bench.sweep import fresh_schema  # noqa: E402
from portal.accounts import passwords  # noqa: E402
from portal.config import DEFAULTS  # noqa: E402
from portal.config import normalise_database_url  # noqa: E402
from portal.extensions import db  # noqa: E402

HOST = "portal.example.test"
WORKERS = 4
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
SECRET_KEY = "load-bench-secret-key-that-is-long-enough-0123456789"
USER_PREFIX = "load.user"
#: (time_cost, memory_cost KiB, parallelism)
DEFAULT_PARAMS = (
    DEFAULTS["PORTAL_ARGON2_TIME_COST"],
    DEFAULTS["PORTAL_ARGON2_MEMORY_COST"],
    DEFAULTS["PORTAL_ARGON2_PARALLELISM"],
)
OWASP_PARAMS = (2, 19_456, 1)  # argon2id, 19 MiB, t=2, p=1: OWASP's password storage minimum
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

LOGIN_PER_CORE_TARGET = 2.0
P95_TARGET_MS = {10: 300.0, 50: 1500.0}
PSS_TARGET_MIB = 250.0


# --- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    firms: int
    users: int
    requests: int
    pool: int

    @property
    def big(self) -> int:
        """Users of the biggest firm (firm 1): a tenth of all."""
        return max(1, self.users // 10)

    @property
    def small(self) -> int:
        """Users of each of the other firms (about)."""
        return (self.users - self.big) // (self.firms - 1)

    def small_admin(self) -> str:
        """The Administrator of firm 2, one of the small firms."""
        return user_id(self.big + 1)

    def big_admin(self) -> str:
        return user_id(1)

    @property
    def pool_first(self) -> int:
        """The first Claims Handler of the small firms: after the big firm and the admins."""
        return self.big + self.firms

    @property
    def pool_size(self) -> int:
        return max(1, min(self.pool, self.users - self.pool_first + 1))


def user_id(g: int) -> str:
    return f"{USER_PREFIX}{g:07d}"


def password_hash(params: tuple[int, int, int]) -> str:
    return passwords.make_hashing(*params).hasher.hash(PASSWORD)


SEED_ORGANISATIONS = """
INSERT INTO organisations (name, name_key, created_at)
SELECT 'Load Firm ' || o, 'load firm ' || o, now() FROM generate_series(1, :firms) AS o
"""

#: One statement: the biggest firm is firm 1, the others take the rest in turn; the first user
#: of each firm is its Administrator.  Access granted 1-85 days ago and 90 % logged in since,
#: relative to now(), so that nobody is inactive or expired (docs/rules.md R2, R3).
SEED_USERS = """
INSERT INTO users (user_id, user_id_key, full_name, full_name_key, email, email_key, profile,
    organisation_id, password_hash, enabled, active, failed_attempts, last_login_at,
    access_granted_at, last_use_at, expires_on, must_change_password, session_token, created_at)
SELECT uid, uid, 'Load User ' || g, 'load user ' || g,
    uid || '@firm' || org || '.example', uid || '@firm' || org || '.example',
    CASE WHEN first_of_firm THEN 'administrator' ELSE 'claims_handler' END,
    org, :hash, true, true, 0, login_at, granted_at, coalesce(login_at, granted_at),
    current_date + 30 + g % 300, false, md5(g::text), granted_at
FROM (
    SELECT g, :prefix || lpad(g::text, 7, '0') AS uid,
        CASE WHEN g <= :big THEN 1 ELSE 2 + (g - :big - 1) % (:firms - 1) END AS org,
        g = 1 OR (g > :big AND g - :big - 1 < :firms - 1) AS first_of_firm,
        now() - make_interval(days => 1 + g % 85) AS granted_at
    FROM generate_series(1, :users) AS g
) AS s, LATERAL (
    SELECT CASE WHEN g % 10 = 0 THEN NULL
                ELSE granted_at + make_interval(secs => g % 86400) END AS login_at
) AS l
"""


def insert_firms_and_users(conn: Any, scale: Scale, hashed: str) -> None:
    """The firms and their users, in two statements on ``conn`` (PostgreSQL; empty tables)."""
    from sqlalchemy import text

    conn.execute(text(SEED_ORGANISATIONS), {"firms": scale.firms})
    conn.execute(
        text(SEED_USERS),
        {
            "hash": hashed,
            "big": scale.big,
            "firms": scale.firms,
            "users": scale.users,
            "prefix": USER_PREFIX,
        },
    )


def seed(url: str, scale: Scale) -> float:
    """Wipe and load the database; returns the seconds it took."""
    from sqlalchemy import text

    started = time.perf_counter()
    app = fresh_schema(url)
    with app.app_context():
        with db.engine.begin() as conn:
            insert_firms_and_users(conn, scale, password_hash(DEFAULT_PARAMS))
        db.engine.dispose()
    build_requests(app, scale.requests)  # the Helpdesk user (STAFF_ID) and the queue
    with app.app_context():
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        db.engine.dispose()
    return time.perf_counter() - started


def set_pool_hashes(engine: Any, scale: Scale, params: tuple[int, int, int]) -> None:
    """The login pool's hashes at ``params`` (the server hashes with the same: no rehash)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET password_hash = :hash WHERE user_id_key BETWEEN :lo AND :hi"),
            {
                "hash": password_hash(params),
                "lo": user_id(scale.pool_first),
                "hi": user_id(scale.pool_first + scale.pool_size - 1),
            },
        )


# --- processes: CPU and memory from /proc -----------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # the fields after "pid (comm)"


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (and of its reaped children), 0 if it is gone."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    ticks = utime + stime + (cutime + cstime if with_children else 0)
    return ticks / CLK_TCK


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return sorted(found)


@dataclass(frozen=True)
class Memory:
    rss: int
    pss: int
    peak: int


def memory(pid: int) -> Memory:
    """RSS and peak RSS (``/proc/PID/status``) and PSS (``smaps_rollup``), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()

    def kib(text: str, name: str) -> int:
        found = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
        return int(found.group(1)) * 1024 if found else 0

    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        rollup = ""
    return Memory(kib(status, "VmRSS"), kib(rollup, "Pss"), kib(status, "VmHWM"))


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    pid: int
    port: int

    def workers(self) -> list[int]:
        return children(self.pid)

    def cpu(self) -> float:
        """The master (with its reaped children) and its live workers."""
        master = cpu_seconds(self.pid, with_children=True)
        return master + sum(cpu_seconds(w) for w in self.workers())


def server_environment(
    url: str, params: tuple[int, int, int], instance: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.pop("DATABASE_URL", None)
    time_cost, memory_cost, parallelism = params
    env.update(
        {
            "PORTAL_ENV": "production",
            "PORTAL_SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": url,
            "PORTAL_INSTANCE_PATH": str(instance),
            "PORTAL_BASE_URL": f"https://{HOST}",
            "PORTAL_TRUSTED_HOSTS": HOST,
            "PORTAL_PROXY_FIX_HOPS": "1",
            "PORTAL_RATELIMIT_ENABLED": "off",
            "PORTAL_SCHEDULER": "off",
            "PORTAL_LOG_LEVEL": "warning",
            "PORTAL_WORKERS": str(WORKERS),
            "PORTAL_ARGON2_TIME_COST": str(time_cost),
            "PORTAL_ARGON2_MEMORY_COST": str(memory_cost),
            "PORTAL_ARGON2_PARALLELISM": str(parallelism),
        }
    )
    env.update(extra or {})
    return env


@contextmanager
def gunicorn(
    url: str, params: tuple[int, int, int], workdir: Path, extra: dict[str, str] | None = None
) -> Iterator[Server]:
    """gunicorn with the production config file, ready (every worker answering) on return;
    ``extra``: settings added to its environment."""
    port = free_port()
    instance = workdir / "instance"
    instance.mkdir(mode=0o700, exist_ok=True)
    gunicorn_bin = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn_bin), "-c", str(GUNICORN_CONF), "-w", str(WORKERS)]
    command += ["-b", f"127.0.0.1:{port}", "--max-requests", "0", "app:app"]
    log = (workdir / "gunicorn.log").open("ab")
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=server_environment(url, params, instance, extra),
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        server = Server(process.pid, port)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({process.returncode}): see {log.name}")
            if len(server.workers()) == WORKERS and _answers(port):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start in 60 s: see {log.name}")
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker finish booting (the first answer came from one)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _answers(port: int) -> bool:
    try:
        status, _, _ = http_request(port, "GET", "/healthz")
    except OSError:
        return False
    return status == 200


# --- plain HTTP for the set-up: the login form, as a browser behind the proxy ---------------


def http_request(
    port: int, method: str, path: str, *, cookie: str = "", body: str = ""
) -> tuple[int, dict[str, str], str]:
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}
    if cookie:
        headers["Cookie"] = cookie
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Referer"] = f"https://{HOST}{path}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        found = {k.lower(): v for k, v in response.getheaders() if k.lower() != "set-cookie"}
        cookies = [
            v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"
        ]
        if cookies:
            found["set-cookie"] = "; ".join(cookies)
        return response.status, found, text
    finally:
        conn.close()


CSRF_INPUT = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"'
)


@dataclass(frozen=True)
class LoginForm:
    cookie: str
    csrf: str


def login_form(port: int, path: str) -> LoginForm:
    """A pre-login session cookie and the CSRF token bound to it."""
    status, headers, page = http_request(port, "GET", path)
    found = CSRF_INPUT.search(page)
    if status != 200 or found is None or "set-cookie" not in headers:
        raise RuntimeError(f"GET {path}: {status}, no CSRF token or cookie")
    return LoginForm(headers["set-cookie"], found.group(1) or found.group(2))


def login_body(form: LoginForm, uid: str) -> str:
    return urllib.parse.urlencode({"csrf_token": form.csrf, "user_id": uid, "password": PASSWORD})


def log_in(port: int, door: str, uid: str) -> str:
    """Log ``uid`` in through ``/<door>/login``; returns its session cookie."""
    path = f"/{door}/login"
    form = login_form(port, path)
    status, headers, _ = http_request(
        port, "POST", path, cookie=form.cookie, body=login_body(form, uid)
    )
    if status != 302 or "set-cookie" not in headers:
        raise RuntimeError(f"login of {uid} at {path}: {status}")
    return headers["set-cookie"]


# --- wrk -----------------------------------------------------------------------------------

#: One script for both kinds: the settings come from the environment (LOAD_*).  A thread
#: counts the answers it wanted (302 for a login, 200 for a page); ``done`` adds them up and
#: prints one line with wrk's latency percentiles.
WRK_SCRIPT = r"""
local mode = os.getenv("LOAD_MODE")
local path = os.getenv("LOAD_PATH")
local wanted = tonumber(os.getenv("LOAD_WANTED"))
local first = tonumber(os.getenv("LOAD_POOL_FIRST") or "0")
local count = tonumber(os.getenv("LOAD_POOL_SIZE") or "1")
local body_prefix = os.getenv("LOAD_BODY_PREFIX") or ""
local prefix = os.getenv("LOAD_USER_PREFIX") or ""
wrk.headers["Host"] = os.getenv("LOAD_HOST")
wrk.headers["X-Forwarded-Proto"] = "https"
wrk.headers["X-Forwarded-For"] = "127.0.0.1"
wrk.headers["Cookie"] = os.getenv("LOAD_COOKIE")
if mode == "login" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Referer"] = "https://" .. os.getenv("LOAD_HOST") .. path
end

local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(seed * 7919 + os.time())
  ok = 0
  other = 0
end

function request()
  if mode == "login" then
    local g = first + math.random(0, count - 1)
    local uid = string.format("%s%07d", prefix, g)
    return wrk.format(nil, path, nil, body_prefix .. "&user_id=" .. uid)
  end
  return wrk.format(nil, path)
end

function response(status, headers, body)
  if status == wanted then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local good, bad = 0, 0
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    bad = bad + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "LOADRESULT ok=%d other=%d requests=%d socket_errors=%d duration_us=%d" ..
    " p50_us=%d p95_us=%d p99_us=%d\n",
    good, bad, summary.requests, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass
class Run:
    ok: int
    other: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    app_cpu: float
    db_cpu: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def parse_result(output: str) -> dict[str, int]:
    line = next((x for x in output.splitlines() if x.startswith("LOADRESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    return {k: int(v) for k, v in (pair.split("=") for pair in line.split()[1:])}


def backend_cpu(engine: Any) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend of this database (but ours), by pid."""
    from sqlalchemy import text

    with engine.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        return {pid: cpu_seconds(pid) for pid in pids}


def run_wrk(
    server: Server,
    engine: Any,
    script: Path,
    env: dict[str, str],
    *,
    clients: int,
    seconds: float,
) -> Run:
    threads = max(1, min(2, clients))
    command = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s"]
    command += ["--timeout", "30s", "-s", str(script), f"http://127.0.0.1:{server.port}"]
    db_before = backend_cpu(engine)
    app_before = server.cpu()
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    app_cpu = server.cpu() - app_before
    db_after = backend_cpu(engine)
    db_cpu = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in db_after.items())
    r = parse_result(done.stdout)
    return Run(
        ok=r["ok"],
        other=r["other"],
        socket_errors=r["socket_errors"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p95_ms=r["p95_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        app_cpu=app_cpu,
        db_cpu=db_cpu,
    )


# --- the measurements ----------------------------------------------------------------------


@dataclass
class Series:
    label: str
    runs: list[Run] = field(default_factory=list)

    def med(self, name: str) -> float:
        return statistics.median(getattr(r, name) for r in self.runs)

    def per_core(self, *, with_db: bool) -> float:
        """Answers per CPU second: the median over runs (each run's own ratio)."""
        return statistics.median(
            r.ok / max(1e-9, r.app_cpu + (r.db_cpu if with_db else 0.0)) for r in self.runs
        )

    @property
    def failures(self) -> int:
        return sum(r.other + r.socket_errors for r in self.runs)


def cpu_ms(per_core: float) -> str:
    """CPU milliseconds per answer, from answers per CPU second."""
    return f"{1000 / per_core:.0f} ms" if per_core > 0 else "? ms (none answered)"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_run(label: str, run: Run) -> None:
    print(
        f"    {label}: {run.ok} ok, {run.other} other, {run.socket_errors} socket errors in "
        f"{run.seconds:.1f} s = {run.rate:.1f}/s; p50 {run.p50_ms:.0f} ms, p95 "
        f"{run.p95_ms:.0f} ms; CPU app {run.app_cpu:.1f} s, db {run.db_cpu:.1f} s "
        f"(load {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def measure_logins(
    server: Server, engine: Any, script: Path, scale: Scale, args: argparse.Namespace, label: str
) -> Series:
    form = login_form(server.port, "/portal/login")
    body_prefix = urllib.parse.urlencode({"csrf_token": form.csrf, "password": PASSWORD})
    env = {
        "LOAD_MODE": "login",
        "LOAD_PATH": "/portal/login",
        "LOAD_WANTED": "302",
        "LOAD_HOST": HOST,
        "LOAD_COOKIE": form.cookie,
        "LOAD_BODY_PREFIX": body_prefix,
        "LOAD_USER_PREFIX": USER_PREFIX,
        "LOAD_POOL_FIRST": str(scale.pool_first),
        "LOAD_POOL_SIZE": str(scale.pool_size),
    }
    series = Series(label)
    print(f"  logins, {label}, {args.login_clients} clients:", flush=True)
    run_wrk(server, engine, script, env, clients=args.login_clients, seconds=args.warmup)
    for i in range(args.runs):
        run = run_wrk(
            server, engine, script, env, clients=args.login_clients, seconds=args.duration
        )
        print_run(f"run {i + 1}", run)
        series.runs.append(run)
    return series


def measure_page(
    server: Server,
    engine: Any,
    script: Path,
    cookie: str,
    path: str,
    clients: int,
    args: argparse.Namespace,
    label: str,
) -> Series:
    env = {
        "LOAD_MODE": "get",
        "LOAD_PATH": path,
        "LOAD_WANTED": "200",
        "LOAD_HOST": HOST,
        "LOAD_COOKIE": cookie,
    }
    series = Series(label)
    print(f"  {label}:", flush=True)
    run_wrk(server, engine, script, env, clients=clients, seconds=args.warmup)
    for i in range(args.runs):
        run = run_wrk(server, engine, script, env, clients=clients, seconds=args.duration)
        print_run(f"run {i + 1}", run)
        series.runs.append(run)
    return series


@dataclass(frozen=True)
class Sizes:
    total: int
    tables: dict[str, int]  # bytes with indexes and TOAST, by table
    audit_rows: int

    def line(self) -> str:
        biggest = sorted(self.tables.items(), key=lambda kv: -kv[1])[:4]
        listed = ", ".join(f"{name} {size / MIB:.1f}" for name, size in biggest)
        return f"{self.total / MIB:.1f} MiB ({listed} MiB; {self.audit_rows:,} audit events)"


def database_sizes(engine: Any) -> Sizes:
    from sqlalchemy import text

    with engine.connect() as conn:
        total = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        tables = conn.execute(
            text(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            )
        ).all()
        audit_rows = int(conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one())
    return Sizes(total, {str(name): int(size) for name, size in tables}, audit_rows)


def measure_pages(
    server: Server, engine: Any, script: Path, scale: Scale, args: argparse.Namespace
) -> dict[tuple[str, int], Series]:
    """Each page at each number of clients, logged in afresh before each (a session idle for
    longer than PORTAL_SESSION_IDLE_MINUTES would end: the cookie wrk sends never changes)."""
    who = {
        f"users page, firm of ~{scale.small:,}": ("console", scale.small_admin(), "/console/users"),
        f"users page, biggest firm ({scale.big:,})": (
            "console",
            scale.big_admin(),
            "/console/users",
        ),
        f"Helpdesk queue ({scale.requests:,})": ("portal", STAFF_ID, "/helpdesk/requests"),
    }
    pages: dict[tuple[str, int], Series] = {}
    for clients in args.clients:
        for label, (door, uid, path) in who.items():
            cookie = log_in(server.port, door, uid)
            pages[(label, clients)] = measure_page(
                server, engine, script, cookie, path, clients, args, f"{label}, {clients} clients"
            )
    return pages


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine

    url = normalise_database_url(args.pg_url)
    scale = Scale(args.firms, args.users, args.requests, args.pool)
    print(
        f"Load benchmark: {scale.firms:,} firms, {scale.users:,} users (biggest firm "
        f"{scale.big:,}), {scale.requests:,} Helpdesk requests; gunicorn {WORKERS} workers, "
        f"wrk; {args.runs} run(s) of {args.duration:g} s each; {os.cpu_count()} cores (shared)",
        flush=True,
    )
    if args.skip_seed:
        print("  data: reused (--skip-seed)", flush=True)
    else:
        print("  loading …", flush=True)
        print(f"  loaded in {seed(url, scale):.1f} s", flush=True)
    engine = create_engine(url)
    seeded = database_sizes(engine)
    print(f"  database after loading: {seeded.line()}", flush=True)

    script_dir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    script = script_dir / "load.lua"
    script.write_text(WRK_SCRIPT)
    logins: dict[str, Series] = {}
    pages: dict[tuple[str, int], Series] = {}
    workers: list[Memory] = []
    master = Memory(0, 0, 0)
    try:
        # OWASP first, then the defaults, whose server goes on to serve the pages.
        for name, params in (("OWASP", OWASP_PARAMS), ("default", DEFAULT_PARAMS)):
            set_pool_hashes(engine, scale, params)
            t, m, p = params
            label = f"{name} argon2id m={m} KiB t={t} p={p}"
            with gunicorn(url, params, script_dir) as server:
                logins[name] = measure_logins(server, engine, script, scale, args, label)
                if name != "default":
                    continue
                pages = measure_pages(server, engine, script, scale, args)
                workers = [memory(pid) for pid in server.workers()]
                master = memory(server.pid)
    finally:
        shutil.rmtree(script_dir, ignore_errors=True)
    final = database_sizes(engine)
    print(f"  database after the runs: {final.line()}", flush=True)
    engine.dispose()
    report(scale, args, logins, pages, workers, master, seeded, final)
    return 0


def report(
    scale: Scale,
    args: argparse.Namespace,
    logins: dict[str, Series],
    pages: dict[tuple[str, int], Series],
    workers: list[Memory],
    master: Memory,
    seeded: Sizes,
    final: Sizes,
) -> None:
    print(f"\nSummary (medians of {args.runs} run(s); per core = per CPU second of the processes)")
    for name, series in logins.items():
        per_core = series.per_core(with_db=False)
        target = ""
        if name == "default":
            ok = per_core >= LOGIN_PER_CORE_TARGET and series.failures == 0
            target = f"  (target ≥ {LOGIN_PER_CORE_TARGET:g}/s per core, no failures) {verdict(ok)}"
        print(
            f"  logins, {series.label}: {per_core:.2f}/s per core of the app, "
            f"{series.per_core(with_db=True):.2f}/s per core with the database "
            f"({cpu_ms(series.per_core(with_db=True))} CPU each); "
            f"{series.med('rate'):.1f}/s wall-clock, p50 {series.med('p50_ms'):.0f} ms, "
            f"p95 {series.med('p95_ms'):.0f} ms, {series.failures} failures{target}"
        )
    for (label, clients), series in pages.items():
        p95 = series.med("p95_ms")
        target_ms = P95_TARGET_MS.get(clients)
        ok = (target_ms is None or p95 <= target_ms) and series.failures == 0
        target = f"(target p95 ≤ {target_ms:g} ms, no failures) {verdict(ok)}" if target_ms else ""
        print(
            f"  {label}, {clients} clients: p50 {series.med('p50_ms'):.0f} ms, p95 {p95:.0f} ms, "
            f"{series.med('rate'):.0f}/s, {series.per_core(with_db=True):.0f}/s per core "
            f"(app+db: {cpu_ms(series.per_core(with_db=True))} CPU each), "
            f"{series.failures} failures  {target}"
        )
    if workers:
        pss = statistics.median(w.pss for w in workers) / MIB
        print(
            f"  memory per worker (median of {len(workers)}): RSS "
            f"{statistics.median(w.rss for w in workers) / MIB:.0f} MiB, PSS {pss:.0f} MiB, "
            f"peak RSS {max(w.peak for w in workers) / MIB:.0f} MiB (largest); master RSS "
            f"{master.rss / MIB:.0f} MiB  (target PSS ≤ {PSS_TARGET_MIB:g} MiB) "
            f"{verdict(pss <= PSS_TARGET_MIB)}"
        )
    events = final.audit_rows - seeded.audit_rows
    audit_growth = final.tables.get("audit_events", 0) - seeded.tables.get("audit_events", 0)
    per_event = f"{audit_growth / events:.0f} bytes per audit event" if events > 0 else ""
    print(
        f"  database: {seeded.total / MIB:.1f} MiB loaded, {seeded.total / scale.users:.0f} bytes "
        f"per user all included (the users table {seeded.tables['users'] / scale.users:.0f}, "
        f"Helpdesk requests {seeded.tables['helpdesk_requests'] / scale.requests:.0f} bytes "
        f"each); {final.total / MIB:.1f} MiB after the runs, {per_event} "
        f"({events:,} written by the runs)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("PORTAL_BENCH_DATABASE_URL", ""),
        help="a PostgreSQL database to WIPE and use (default $PORTAL_BENCH_DATABASE_URL)",
    )
    parser.add_argument("--firms", type=int, default=1_000, help="organisations (default 1,000)")
    parser.add_argument("--users", type=int, default=100_000, help="users (default 100,000)")
    parser.add_argument(
        "--requests", type=int, default=None, help="Helpdesk requests (default: users / 10)"
    )
    parser.add_argument("--pool", type=int, default=2_000, help="users who log in (default 2,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds a run (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each (default 3)")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[10, 50],
        help="concurrent connections for the pages (default 10 50)",
    )
    parser.add_argument(
        "--login-clients", type=int, default=8, help="concurrent logins (default 8)"
    )
    parser.add_argument(
        "--skip-seed", action="store_true", help="reuse the data an earlier run loaded"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the whole path at a tiny scale (10 firms, 300 users, 1 run of 2 s): not a figure",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.firms, args.users, args.pool = 10, 300, 50
        args.runs, args.duration, args.warmup, args.clients = 1, 2.0, 1.0, [2]
        args.login_clients = 2
    if args.requests is None:
        args.requests = max(2, args.users // 10)
    if not args.pg_url:
        parser.error("give --pg-url (or PORTAL_BENCH_DATABASE_URL): a PostgreSQL database to wipe")
    if not args.pg_url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        parser.error("--pg-url must be a PostgreSQL URL")
    if args.firms < 2 or args.users < args.firms * 2 or args.requests < 2:
        parser.error("need at least 2 firms, 2 users per firm and 2 Helpdesk requests")
    if args.runs < 1 or args.duration <= 0 or args.warmup <= 0 or min(args.clients) < 1:
        parser.error("--runs, --duration, --warmup and --clients must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    logging.disable(logging.WARNING)  # alembic's and the app's chatter is not a figure
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
