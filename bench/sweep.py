"""The nightly sweep at scale: set-based batches versus a per-user ORM loop (docs/rules.md §7).

Run as ``.venv/bin/python bench/sweep.py [--users 1000000] [--loop-users 50000] [--runs 3]``.
PostgreSQL is measured too when ``--pg-url`` (or ``PORTAL_BENCH_DATABASE_URL``) names a
database; that database is **wiped** (its ``public`` schema is dropped and re-created).

For each database: ``--users`` users (10 % due: half past their expiry date, half inactive for
more than 90 days) are loaded in bulk on the real migrated schema; ``nightly.run_sweep`` runs
``--runs`` times (the state and the audit table are put back between runs, outside the
timing), and once more under tracemalloc for the peak of Python memory.  Then the same work is
done the obvious way on ``--loop-users`` users (load each enabled user through the ORM, ask
``rules.sweep``, apply the decision, record an audit event), once with a write transaction per
user as the per-user services do, once all in one transaction (the kindest form), and the
times are extrapolated linearly to ``--users``.

Targets: the SQLite sweep of 1,000,000 users in ≤ 10 s, and ≥ 50 × faster than the loop
(a transaction per user); the ratio to the one-transaction loop is printed too.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from portal import create_app  # noqa: E402
from portal.accounts import rules  # noqa: E402
from portal.accounts.models import User  # noqa: E402
from portal.audit.record import record  # noqa: E402
from portal.config import normalise_database_url  # noqa: E402
from portal.db import write_transaction  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.jobs import nightly  # noqa: E402

NOW = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 02:00 in London
TODAY = date(2026, 6, 15)
ORGANISATIONS = 1000
CHUNK = 50_000
FAKE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$bench$bench"
SQLITE_TARGET_S = 10.0
RATIO_TARGET = 50.0

COLUMNS = (
    "user_id",
    "user_id_key",
    "full_name",
    "full_name_key",
    "email",
    "email_key",
    "profile",
    "organisation_id",
    "password_hash",
    "enabled",
    "active",
    "failed_attempts",
    "access_granted_at",
    "last_use_at",
    "expires_on",
    "must_change_password",
    "session_token",
    "created_at",
)


def build_app(url: str) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "SQLALCHEMY_DATABASE_URI": url,
            "RATELIMIT_ENABLED": False,
            "PORTAL_SCHEDULER": False,
        }
    )


def fresh_schema(url: str) -> Flask:
    """An empty, migrated database at ``url`` (PostgreSQL's public schema is re-created)."""
    import flask_migrate

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = build_app(url)
    with app.app_context():
        flask_migrate.upgrade()
    return app


def rows(n: int) -> Iterator[tuple[Any, ...]]:
    """``n`` Claims Handlers: every 20th past its expiry date, every 20th (offset 10) inactive,
    the rest fine (10 % due)."""
    recent = NOW - timedelta(days=10)
    old = NOW - rules.INACTIVITY - timedelta(days=5)
    for i in range(1, n + 1):
        uid = f"bench.user{i:07d}"
        expired, inactive = i % 20 == 0, i % 20 == 10
        used = old if inactive else recent
        expires = TODAY - timedelta(days=1 + i % 30) if expired else TODAY + timedelta(days=200)
        yield (
            uid,
            uid,
            f"Bench User {i}",
            f"bench user {i}",
            f"{uid}@example.com",
            f"{uid}@example.com",
            "claims_handler",
            1 + i % ORGANISATIONS,
            FAKE_HASH,
            True,
            True,
            0,
            used,
            used,
            expires,
            False,
            f"{i:032x}",
            used,
        )


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def seed(app: Flask, n: int) -> None:
    """Organisations and ``n`` users, loaded in bulk (executemany on SQLite, COPY on
    PostgreSQL) on the migrated schema, then ANALYZEd."""
    with app.app_context():
        engine = db.engine
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            names = [(f"Bench Org {o}", f"bench org {o}", NOW) for o in range(1, ORGANISATIONS + 1)]
            cols = ", ".join(COLUMNS)
            if engine.dialect.name == "sqlite":
                cur.execute("BEGIN")
                cur.executemany(
                    "INSERT INTO organisations (name, name_key, created_at) VALUES (?, ?, ?)",
                    [tuple(_sqlite_value(v) for v in row) for row in names],
                )
                marks = ", ".join("?" for _ in COLUMNS)
                insert_users = f"INSERT INTO users ({cols}) VALUES ({marks})"  # noqa: S608
                batch: list[tuple[Any, ...]] = []
                for row in rows(n):
                    batch.append(tuple(_sqlite_value(v) for v in row))
                    if len(batch) == CHUNK:
                        cur.executemany(insert_users, batch)
                        batch.clear()
                if batch:
                    cur.executemany(insert_users, batch)
                cur.execute("COMMIT")
                cur.execute("ANALYZE")
                cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                with cur.copy("COPY organisations (name, name_key, created_at) FROM STDIN") as cp:
                    for row in names:
                        cp.write_row(row)
                with cur.copy(f"COPY users ({cols}) FROM STDIN") as cp:
                    for row in rows(n):
                        cp.write_row(row)
                raw.commit()
                raw.driver_connection.autocommit = True  # type: ignore[union-attr]
                cur.execute("VACUUM ANALYZE")
            cur.close()
        finally:
            raw.close()


def restore(app: Flask) -> None:
    """Undo a sweep (outside the timing): everyone enabled again, no audit events.  The audit
    table is append-only (triggers), so this bench side-steps them: TRUNCATE on PostgreSQL
    (row triggers do not fire), drop-delete-recreate on SQLite."""
    with app.app_context():
        with write_transaction(db.session):
            db.session.execute(
                update(User)
                .where(User.enabled.is_(False))
                .values(enabled=True, disabled_reason=None)
                .execution_options(synchronize_session=False)
            )
            if db.engine.dialect.name == "postgresql":
                db.session.execute(text("TRUNCATE audit_events"))
            else:
                triggers = db.session.execute(
                    text(
                        "SELECT name, sql FROM sqlite_master "
                        "WHERE type = 'trigger' AND tbl_name = 'audit_events'"
                    )
                ).all()
                for name, _sql in triggers:
                    db.session.execute(text(f'DROP TRIGGER "{name}"'))
                db.session.execute(text("DELETE FROM audit_events"))
                for _name, sql in triggers:
                    db.session.execute(text(sql))
        with db.engine.connect() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            else:  # start from an empty WAL, as after a quiet day
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.session.remove()


def set_based(app: Flask) -> nightly.SweepReport:
    with app.app_context():
        report = nightly.run_sweep(now=NOW, today=TODAY)
        db.session.remove()
        return report


def orm_loop(app: Flask) -> int:
    """The same work one user at a time through the ORM and the rules, each user in its own
    write transaction as the services do it (row locked, rules asked, applied, audited,
    committed): what a job built from the per-user operations would do."""
    changed = 0
    with app.app_context():
        ids = list(db.session.scalars(select(User.id).where(User.enabled.is_(True))))
        db.session.rollback()
        for pk in ids:
            with write_transaction(db.session):
                user = db.session.get(User, pk, with_for_update={"key_share": True})
                assert user is not None
                decision = rules.sweep(user.to_state(), now=NOW, today=TODAY)
                if decision.changed:
                    user.apply(decision.state)
                    for event in decision.events:
                        record(event.kind, actor=None, subject=user, now=NOW, reason=event.reason)
                    changed += 1
            db.session.expunge_all()
        db.session.remove()
    return changed


def orm_loop_one_transaction(app: Flask) -> int:
    """The kindest form of the loop: every user through the ORM and the rules, but all in one
    transaction (one huge lock on SQLite, every object in memory at once)."""
    changed = 0
    with app.app_context():
        with write_transaction(db.session):
            for user in db.session.scalars(select(User).where(User.enabled.is_(True))):
                decision = rules.sweep(user.to_state(), now=NOW, today=TODAY)
                if decision.changed:
                    user.apply(decision.state)
                    for event in decision.events:
                        record(event.kind, actor=None, subject=user, now=NOW, reason=event.reason)
                    changed += 1
        db.session.remove()
    return changed


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def peak_memory(action: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(name: str, url_for: Callable[[str], str], args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n{name}: loading {args.users:,} users …", flush=True)
    app = fresh_schema(url_for("sweep"))
    load_s, _ = timed(lambda: seed(app, args.users))
    print(f"  loaded in {load_s:.1f} s", flush=True)
    times = []
    expected = args.users // 10
    for run in range(args.runs):
        if run:
            restore(app)
        elapsed, report = timed(lambda: set_based(app))
        assert report.total == expected, (report.counts, expected)
        times.append(elapsed)
        print(f"  set-based sweep run {run + 1}: {elapsed:.2f} s {report.counts}", flush=True)
    restore(app)
    peak = peak_memory(lambda: set_based(app))
    print(f"  peak Python memory during the sweep: {peak / 1_048_576:.1f} MiB", flush=True)
    with app.app_context():
        db.engine.dispose()

    print(f"  loading {args.loop_users:,} users for the per-user ORM loops …", flush=True)
    loop_app = fresh_schema(url_for("loop"))
    seed(loop_app, args.loop_users)
    loop_s, changed = timed(lambda: orm_loop(loop_app))
    assert changed == args.loop_users // 10, changed
    restore(loop_app)
    one_s, changed = timed(lambda: orm_loop_one_transaction(loop_app))
    assert changed == args.loop_users // 10, changed
    with loop_app.app_context():
        db.engine.dispose()
    scale = args.users / args.loop_users
    for label, seconds in (("a transaction per user", loop_s), ("one transaction", one_s)):
        print(
            f"  per-user ORM loop, {label}: {seconds:.2f} s for {args.loop_users:,} users "
            f"→ {seconds * scale:.1f} s extrapolated to {args.users:,}",
            flush=True,
        )
    return {
        "median": statistics.median(times),
        "peak": peak,
        "loop": loop_s * scale,
        "loop_one": one_s * scale,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=1_000_000, help="users (default 1,000,000)")
    parser.add_argument("--loop-users", type=int, default=50_000, help="users for the ORM loop")
    parser.add_argument("--runs", type=int, default=3, help="timed sweeps per database")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("PORTAL_BENCH_DATABASE_URL", ""),
        help="a PostgreSQL database to WIPE and use (default $PORTAL_BENCH_DATABASE_URL)",
    )
    parser.add_argument(
        "--pg-loop-url", default="", help="another one for the ORM loop (default: --pg-url)"
    )
    args = parser.parse_args(argv)
    if args.users < 20 or args.loop_users < 20 or args.runs < 1:
        parser.error("--users and --loop-users must be at least 20, --runs at least 1")
    logging.disable(logging.WARNING)
    clock_note = f"as of {NOW:%Y-%m-%d %H:%M} UTC, batches of {nightly.BATCH_SIZE}"
    print(f"Nightly sweep benchmark: {args.users:,} users, 10 % due ({clock_note})")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="portal-sweep-bench-") as tmp:
        results["SQLite"] = measure(
            "SQLite", lambda tag: f"sqlite:///{Path(tmp) / f'{tag}.sqlite'}", args
        )
    if args.pg_url:
        pg = normalise_database_url(args.pg_url)
        loop_pg = normalise_database_url(args.pg_loop_url) if args.pg_loop_url else pg
        results["PostgreSQL"] = measure(
            "PostgreSQL", lambda tag: loop_pg if tag == "loop" else pg, args
        )
    else:
        print("\nPostgreSQL: skipped (give --pg-url or PORTAL_BENCH_DATABASE_URL)")

    print(f"\nSummary ({args.users:,} users, 10 % due; medians of {args.runs} run(s)):")
    for name, r in results.items():
        ratio, kindest = r["loop"] / r["median"], r["loop_one"] / r["median"]
        target = ""
        if name == "SQLite":
            ok = r["median"] <= SQLITE_TARGET_S * args.users / 1_000_000
            target = f" (target ≤ {SQLITE_TARGET_S:.0f} s per 1M: {'PASS' if ok else 'MISS'})"
        print(
            f"  {name}: sweep {r['median']:.2f} s{target}, peak Python memory "
            f"{r['peak'] / 1_048_576:.1f} MiB\n"
            f"    ORM loop, a transaction per user: {r['loop']:.1f} s extrapolated, "
            f"ratio {ratio:.1f}× (target ≥ {RATIO_TARGET:.0f}×: "
            f"{'PASS' if ratio >= RATIO_TARGET else 'MISS'})\n"
            f"    ORM loop, one transaction:        {r['loop_one']:.1f} s extrapolated, "
            f"ratio {kindest:.1f}×"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
