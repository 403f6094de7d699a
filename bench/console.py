"""The Console's users list and its inline Enabled toggle on an organisation of 100,000 users.

Run as ``.venv/bin/python bench/console.py [--users 100000] [--n 20] [--explain]
[--postgres URL]``.  Prints figures only; the pass/fail check that the number of queries per
page does not grow with the rows shown is a test (``tests/console/test_users.py``).

The organisation is built FAST, with set-based inserts (batches of 10,000 dicts, one argon2 hash
reused for every row) into a temporary SQLite file with the real migrations: ~5 % locked out,
~2 % access removed (each with its audit event, which the list reads), the rest with access;
~1 % Administrators.  Then, through the Flask test client logged in as an Administrator of that
organisation (no outer app context: each request gets its own, as in production), the median
server time of N requests each of:

* ``GET /console/users`` (the first page), a search (``?q=user12``), a filter
  (``?state=system_disabled``), a sort (``?sort=-last_login``);
* ``POST /console/users/<pk>/enabled`` with ``HX-Request: true`` on a Claims Handler,
  alternating ``enabled=false`` / ``enabled=true``, and the size of the row fragment it answers.

Targets (issue 3): page ≤ 15 ms, toggle ≤ 5 ms, fragment ≤ 2 KB. Then, with ``--django``, the
comparison with Django's admin (``bench/console_compare.py``), and last the bulk action, import
and export figures of issue 12 (``bench/console_bulk.py``): they write tens of thousands of
rows, and pages read just after them are slower for a while, so nothing is compared after them.
Each figure comes with the median time its statements took in the database driver ("SQL"): the
rest is Python (Flask, the ORM, Jinja). ``--explain`` prints each statement a request ran, its
time and its query plan (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN ANALYZE`` on PostgreSQL).
``--analyze`` gives SQLite planner statistics, which the app never makes (PostgreSQL's
autovacuum does; the bench runs VACUUM ANALYZE there). ``--postgres URL`` runs on that
PostgreSQL database instead: its ``public`` schema is DROPPED and re-created.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from portal import clock  # noqa: E402
from portal import create_app  # noqa: E402
from portal.accounts import passwords  # noqa: E402
from portal.accounts import rules  # noqa: E402
from portal.accounts import service  # noqa: E402
from portal.accounts.models import Profile  # noqa: E402
from portal.accounts.models import User  # noqa: E402
from portal.accounts.models import normalise_key  # noqa: E402
from portal.audit.models import SYSTEM  # noqa: E402
from portal.audit.models import AuditEvent  # noqa: E402
from portal.config import normalise_database_url  # noqa: E402
from portal.extensions import db  # noqa: E402

PASSWORD = "correct horse battery staple"
ADMIN_ID = "bench.admin"
BATCH = 10_000
WARMUP = 3
LOCKED_SHARE = 0.05
REMOVED_SHARE = 0.02
ADMIN_SHARE = 0.01

PAGE_TARGET_MS = 15.0
TOGGLE_TARGET_MS = 5.0
FRAGMENT_TARGET_BYTES = 2048

PAGES = {
    "first page": "/console/users",
    "search ?q=user12": "/console/users?q=user12",
    "filter ?state=system_disabled": "/console/users?state=system_disabled",
    "sort ?sort=-last_login": "/console/users?sort=-last_login",
}


def build_app(database_url: str) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "PORTAL_SCHEDULER": False,
            # Only the Administrator's one login verifies a hash: cheap parameters.
            "PORTAL_ARGON2_TIME_COST": 1,
            "PORTAL_ARGON2_MEMORY_COST": 1024,
            "PORTAL_ARGON2_PARALLELISM": 1,
        }
    )


def wipe_postgres(url: str) -> None:
    engine = create_engine(normalise_database_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


#: ``<column>_key`` columns the model fills from ``<column>`` (case-folded look-up keys).
SEARCH_KEYS = tuple(
    (column.name.removesuffix("_key"), column.name)
    for column in User.__table__.columns
    if column.name.endswith("_key") and column.name.removesuffix("_key") in User.__table__.columns
)


def add_search_keys(row: dict[str, Any]) -> None:
    """Fill the look-up keys the model's validators fill (bulk inserts skip validators)."""
    for source, key in SEARCH_KEYS:
        row[key] = normalise_key(row[source])


@dataclass(frozen=True)
class Built:
    org_id: int
    users: int
    toggle_pk: int
    seconds: float


def build_organisation(app: Flask, n_users: int, *, analyze: bool, seed: int = 1) -> Built:
    """Migrate, then one organisation: its Administrator through the service, and ``n_users``
    more by set-based inserts with valid states (the CHECK constraints hold)."""
    import flask_migrate

    rng = random.Random(seed)
    started = time.perf_counter()
    with app.app_context():
        flask_migrate.upgrade()
        now, today = clock.now(), clock.today()
        org = service.create_organisation("Bench Org", actor=None, now=now)
        service.create_user(
            user_id=ADMIN_ID,
            full_name="Bench Admin",
            email="bench.admin@example.com",
            profile=Profile.ADMINISTRATOR,
            organisation=org,
            expires_on=today + timedelta(days=365),
            actor=None,
            now=now,
            password=PASSWORD,
        )
        db.session.commit()
        org_id = org.id
        password_hash = passwords.hash_password(PASSWORD)  # once, for every row

        disabled: list[tuple[str, str]] = []  # (user_id, kind)
        for start in range(1, n_users + 1, BATCH):
            rows: list[dict[str, Any]] = []
            for n in range(start, min(start + BATCH, n_users + 1)):
                uid = f"user{n}"
                created = now - timedelta(days=rng.randint(1, 80), seconds=rng.randint(0, 86399))
                last_login = (
                    None
                    if rng.random() < 0.1
                    else created + (now - created) * rng.random()  # after creation, before now
                )
                roll = rng.random()
                if roll < LOCKED_SHARE:
                    state = (False, True, rules.Reason.LOCKOUT.value, rules.LOCKOUT_AFTER)
                    disabled.append((uid, rules.EventKind.LOCKED_OUT.value))
                elif roll < LOCKED_SHARE + REMOVED_SHARE:
                    state = (False, False, None, 0)
                    disabled.append((uid, rules.EventKind.ACCESS_REMOVED.value))
                else:
                    state = (True, True, None, rng.randint(0, rules.LOCKOUT_AFTER - 1))
                enabled, active, reason, failures = state
                rows.append(
                    {
                        "user_id": uid,
                        "full_name": f"Handler {n:06d}",
                        "email": f"{uid}@example.com",
                        "profile": (
                            Profile.ADMINISTRATOR.value
                            if rng.random() < ADMIN_SHARE
                            else Profile.CLAIMS_HANDLER.value
                        ),
                        "organisation_id": org_id,
                        "password_hash": password_hash,
                        "enabled": enabled,
                        "active": active,
                        "disabled_reason": reason,
                        "failed_attempts": failures,
                        "last_login_at": last_login,
                        "access_granted_at": created,
                        "last_use_at": max(created, last_login or created),
                        "expires_on": today + timedelta(days=rng.randint(1, 365)),
                        "must_change_password": False,
                        "session_token": secrets.token_hex(16),
                        "password_changed_at": None,
                        "created_at": created,
                    }
                )
                add_search_keys(rows[-1])
            db.session.execute(insert(User), rows)
            db.session.commit()

        # Each disabled user's disable event: the list shows who disabled it, and when.
        ids = {
            uid: pk
            for uid, pk in db.session.execute(
                select(User.user_id, User.id).where(User.organisation_id == org_id)
            )
        }
        events = [
            {
                "occurred_at": now - timedelta(days=1),
                "organisation_id": org_id,
                "kind": kind,
                "actor_id": ids[ADMIN_ID] if kind == rules.EventKind.ACCESS_REMOVED else None,
                "actor": ADMIN_ID if kind == rules.EventKind.ACCESS_REMOVED else SYSTEM,
                "subject_id": ids[uid],
                "subject": uid,
                "reason": rules.Reason.LOCKOUT.value
                if kind == rules.EventKind.LOCKED_OUT
                else None,
            }
            for uid, kind in disabled
        ]
        for start in range(0, len(events), BATCH):
            db.session.execute(insert(AuditEvent), events[start : start + BATCH])
            db.session.commit()

        toggle_pk = db.session.scalar(
            select(User.id)
            .where(
                User.organisation_id == org_id,
                User.profile == Profile.CLAIMS_HANDLER.value,
                User.enabled.is_(True),
            )
            .order_by(User.user_id_key)
            .limit(1)
        )
        total = db.session.scalar(
            select(func.count()).select_from(User).where(User.organisation_id == org_id)
        )
        db.session.commit()
        db.session.remove()
        # As a live database would be: PostgreSQL's autovacuum builds planner statistics and
        # the visibility map (without it a count cannot use an index-only scan).  The app never
        # runs ANALYZE (or PRAGMA optimize) on SQLite, so there it is only done when asked.
        if db.engine.dialect.name != "sqlite":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE users"))
                conn.execute(text("VACUUM ANALYZE audit_events"))
        elif analyze:
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            db.session.remove()
        db.engine.dispose()  # SQLite reads the statistics when a connection opens
    assert toggle_pk is not None
    return Built(org_id, int(total or 0), toggle_pk, time.perf_counter() - started)


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread): the test client, Flask and SQLite all run in
    this thread, so its CPU time is the request's own work, whatever else the machine runs."""
    start, cpu = time.perf_counter(), time.thread_time()
    action()
    return time.perf_counter() - start, time.thread_time() - cpu


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@contextmanager
def statements(app: Flask) -> Iterator[list[tuple[str, Any, float]]]:
    """Every statement run meanwhile: (SQL, parameters, seconds)."""
    seen: list[tuple[str, Any, float]] = []
    with app.app_context():
        engine = db.engine

    def before(conn: Any, _cursor: Any, _stmt: str, _params: Any, context: Any, _many: Any) -> None:
        conn.info.setdefault("bench_start", []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, stmt: str, params: Any, _context: Any, _many: Any) -> None:
        seen.append((stmt, params, time.perf_counter() - conn.info["bench_start"].pop()))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(app: Flask, label: str, request: Callable[[], object]) -> None:
    """Run ``request`` once; print each statement, its time and its plan."""
    with statements(app) as seen:
        request()
    print(f"\n--- {label}: {len(seen)} statements")
    with app.app_context():
        dialect = db.engine.dialect.name
        conn = db.engine.raw_connection()
        try:
            for stmt, params, seconds in seen:
                one_line = " ".join(stmt.split())
                print(f"[{seconds * 1000:7.2f} ms] {one_line[:300]}")
                if not one_line.upper().startswith("SELECT"):
                    continue
                prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN ANALYZE "
                cursor = conn.cursor()
                cursor.execute(prefix + stmt, params)
                for row in cursor.fetchall():
                    print("      " + (" ".join(str(c) for c in row[-1:]) if row else ""))
                cursor.close()
            conn.rollback()
        finally:
            conn.close()


def log_in(client: FlaskClient) -> None:
    response = client.post(
        "/console/login", data={"user_id": ADMIN_ID, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 302, response.status_code


def run(
    database_url: str,
    n_users: int,
    n: int,
    show_plans: bool,
    analyze: bool,
    django: str = "off",
) -> None:
    app = build_app(database_url)
    built = build_organisation(app, n_users, analyze=analyze)
    client = app.test_client()
    log_in(client)

    def get(path: str) -> Callable[[], object]:
        def action() -> None:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        return action

    shown: dict[str, str] = {}
    for label, path in PAGES.items():
        body = client.get(path).get_data(as_text=True)
        found = body.split('<p class="results-count" role="status">', 1)[-1].split("<", 1)[0]
        shown[label] = " ".join(found.split())

    sizes: list[int] = []
    wanted = itertools.cycle(["false", "true"])

    def toggle() -> bytes:
        value = next(wanted)
        response = client.post(
            f"/console/users/{built.toggle_pk}/enabled",
            data={"enabled": value},
            headers={"HX-Request": "true", "HX-Target": f"user-{built.toggle_pk}"},
        )
        assert response.status_code == 200, response.status_code
        body = response.get_data()
        sizes.append(len(body))
        return body

    samples: dict[str, list[float]] = {label: [] for label in [*PAGES, "toggle"]}
    in_sql: dict[str, list[float]] = {label: [] for label in samples}
    on_cpu: dict[str, list[float]] = {label: [] for label in samples}
    actions = [(label, get(path)) for label, path in PAGES.items()] + [("toggle", toggle)]
    with statements(app) as seen:
        for i in range(WARMUP + n):  # interleaved, so that background load affects all alike
            for label, action in actions:
                seen.clear()
                elapsed, cpu = timed(action)
                if i >= WARMUP:
                    samples[label].append(elapsed)
                    on_cpu[label].append(cpu)
                    in_sql[label].append(sum(seconds for _, _, seconds in seen))

    dialect = database_url.split(":", 1)[0]
    if dialect == "sqlite":
        dialect += " with ANALYZE statistics" if analyze else " (no ANALYZE statistics, as the app)"
    print(
        f"Console users list, {built.users:,} users in one organisation on {dialect} "
        f"(built in {built.seconds:.1f} s), N={n} each (medians of server time; CPU: of "
        f"this thread, the same work without waiting for a core; load {os.getloadavg()[0]:.2f})"
    )
    for label in PAGES:
        med = statistics.median(samples[label]) * 1000
        sql = statistics.median(in_sql[label]) * 1000
        cpu = statistics.median(on_cpu[label]) * 1000
        print(
            f"  {label:32} {med:8.1f} ms  (target ≤ {PAGE_TARGET_MS:.0f} ms)  "
            f"{verdict(med <= PAGE_TARGET_MS)}   CPU {cpu:6.1f} ms   SQL {sql:6.1f} ms   "
            f"[{shown[label]}]"
        )
    med = statistics.median(samples["toggle"]) * 1000
    sql = statistics.median(in_sql["toggle"]) * 1000
    cpu = statistics.median(on_cpu["toggle"]) * 1000
    print(
        f"  {'toggle POST …/enabled (HTMX)':32} {med:8.1f} ms  (target ≤ {TOGGLE_TARGET_MS:.0f} ms)"
        f"   {verdict(med <= TOGGLE_TARGET_MS)}   CPU {cpu:6.1f} ms   SQL {sql:6.1f} ms"
    )
    fragment = statistics.median(sizes)
    print(
        f"  {'toggle fragment size':32} {fragment:8.0f} B   (target ≤ {FRAGMENT_TARGET_BYTES} B)"
        f"  {verdict(fragment <= FRAGMENT_TARGET_BYTES)}   (min {min(sizes)}, max {max(sizes)})"
    )

    if show_plans:
        for label, path in PAGES.items():
            explain(app, label, get(path))
        explain(app, "toggle", toggle)
    if django != "off":
        compare_with_django(
            database_url,
            client,
            n_users,
            n,
            toggle,
            with_load=django == "load",
            toggle_ms=statistics.median(samples["toggle"]) * 1000,
            first_page_ms=statistics.median(samples["first page"]) * 1000,
        )
    # After the comparison: the bulk action and the import write tens of thousands of rows,
    # and the pages read just after them (with SQLite's write-ahead log not yet folded back)
    # are slower for a while than in the settled state the figures above describe.
    from bench import console_bulk

    console_bulk.report(app, client, built.org_id)
    with app.app_context():
        db.engine.dispose()


def compare_with_django(
    database_url: str,
    client: FlaskClient,
    n_users: int,
    n: int,
    toggle: Callable[[], bytes],
    *,
    with_load: bool,
    toggle_ms: float,
    first_page_ms: float,
) -> None:
    """Django's admin changelist of as many users, built now, measured beside ours."""
    from bench import console_compare
    from bench import django_admin

    with tempfile.TemporaryDirectory(prefix="portal-bench-django-") as tmp:
        project = django_admin.write_project(Path(tmp))
        seconds = django_admin.build(project, n_users)
        print(f"\n(Django's admin: {n_users:,} users built in {seconds:.1f} s)")
        with django_admin.worker(project) as django:
            figures = console_compare.in_process(
                lambda path: client.get(path).get_data(), django, n, toggle
            )
        rates = None
        if with_load:
            rates = console_compare.under_load(database_url, ADMIN_ID, PASSWORD, project)
        console_compare.report(
            figures, rates, toggle_ms=toggle_ms, first_page_ms=first_page_ms, n_users=n_users
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000, help="users (default 100,000)")
    parser.add_argument(
        "--n",
        type=int,
        default=20,
        help="requests of each kind (default 20); against Django, N runs of 20 requests of each",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print each statement's time and query plan"
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="SQLite: run ANALYZE after the build (the app never does; PostgreSQL always gets it)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run on this PostgreSQL database instead of SQLite (its public schema is WIPED)",
    )
    parser.add_argument(
        "--django",
        choices=["off", "in-process", "load"],
        default="off",
        help="also build Django's admin changelist of as many users and compare (needs the "
        "bench extra: `make bench-console` installs it); `load` adds gunicorn + wrk",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.users < 1:
        parser.error("--n and --users must be at least 1")
    logging.disable(logging.WARNING)  # alembic's and the app's chatter is not a figure
    if args.postgres:
        wipe_postgres(args.postgres)
        url = normalise_database_url(args.postgres)
        run(url, args.users, args.n, args.explain, True, args.django)
        return 0
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        run(url, args.users, args.n, args.explain, args.analyze, args.django)
    return 0


if __name__ == "__main__":
    sys.exit(main())
