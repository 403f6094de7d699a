"""Login timing with the PRODUCTION argon2 parameters (docs/security.md EN-02 smoke figures).

Run as ``.venv/bin/python bench/login.py [--n 50]`` (``make bench``).  Prints figures only;
the pass/fail checks of EN-02 are call-count tests, never wall-clock ones.

Measured through the Flask test client on a temporary SQLite file with the real migrations:

* a successful login POST (a new client each time),
* a wrong-password POST for an existing user (re-enabled between attempts, outside the timing),
* a POST for an unknown User ID (verified against the dummy hash),
* one direct argon2 verification with the app's own hasher,
* the second factor (R10) for a user with a TOTP factor: the password step (a right password
  answered with the redirect to ``/login/second-factor``) and the code step (a POST of the
  current TOTP code; the clock moves on one 30-second step between samples, as replays are
  refused), and the code step with one of its recovery codes (a new set of ten is issued,
  outside the timing, when one runs out),
* how many SQL statements each kind of code step sends (counted once, after the timing).

Targets: median login request ≤ 1.15 × median argon2 verification (the hash dominates), and
unknown-user / wrong-password median ratio within 0.9–1.1 (no user enumeration by timing);
the second factor's password step ≤ 1.15 × argon2 verification too, its code step ≤ 5 ms
(with a TOTP code and with a recovery code; docs/security.md PK-06).

The kinds are interleaved so that background load affects them alike.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import event

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
from portal.config import DEFAULTS  # noqa: E402
from portal.db import write_transaction  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.second_factor import recovery  # noqa: E402
from portal.second_factor import service as second_factor  # noqa: E402
from portal.second_factor import totp  # noqa: E402

PASSWORD = "correct horse battery staple"
WRONG = "definitely not the password"
USER_ID = "bench.handler"
MFA_USER_ID = "bench.mfa"
STEP = "/login/second-factor"
UNKNOWN_ID = "nobody.here"
LOGIN = "/portal/login"
ARGON2_KEYS = ("PORTAL_ARGON2_TIME_COST", "PORTAL_ARGON2_MEMORY_COST", "PORTAL_ARGON2_PARALLELISM")
WARMUP = 3

LOGIN_TARGET = 1.15
CODE_TARGET_MS = 5.0
RATIO_LOW, RATIO_HIGH = 0.9, 1.1


def build_app(database: Path) -> Flask:
    settings = {
        "TESTING": True,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "PORTAL_SCHEDULER": False,
        # The production defaults, stated so that no PORTAL_ARGON2_* variable or instance
        # config can make the figures look better than production.
        **{key: DEFAULTS[key] for key in ARGON2_KEYS},
    }
    return create_app(settings)


def migrate_and_seed(app: Flask) -> None:
    import flask_migrate

    with app.app_context():
        flask_migrate.upgrade()
        now = clock.now()
        org = service.create_organisation("Bench Org", actor=None, now=now)
        service.create_user(
            user_id=USER_ID,
            full_name="Bench Handler",
            email="bench@example.com",
            profile=Profile.CLAIMS_HANDLER,
            organisation=org,
            expires_on=clock.local_date(now) + timedelta(days=365),
            actor=None,
            now=now,
            password=PASSWORD,
        )
        service.create_user(
            user_id=MFA_USER_ID,
            full_name="Bench Second Factor",
            email="bench.mfa@example.com",
            profile=Profile.CLAIMS_HANDLER,
            organisation=org,
            expires_on=clock.local_date(now) + timedelta(days=365),
            actor=None,
            now=now,
            password=PASSWORD,
        )
        db.session.commit()


def add_factor(app: Flask) -> str:
    """A TOTP factor for the second-factor user, as the enrolment page adds it; its secret."""
    with app.app_context():
        user = service.find_user(MFA_USER_ID)
        assert user is not None
        secret = totp.new_secret()
        with write_transaction(db.session):
            user = service.find_user(MFA_USER_ID)
            assert user is not None
            earlier = clock.now() - timedelta(seconds=totp.STEP_SECONDS)
            codes = second_factor.add_totp(
                user,
                secret=secret,
                code=totp.code_at(secret, earlier),
                name="Bench",
                now=clock.now(),
            )
            assert codes is not None
        db.session.remove()
    return secret


def new_recovery_codes(app: Flask, user_pk: int) -> list[str]:
    """A new set of recovery codes for the second-factor user (the old set goes)."""
    with app.app_context():
        with write_transaction(db.session):
            codes = recovery.issue(user_pk, now=clock.now())
        db.session.remove()
    return codes


def count_statements(app: Flask, action: Callable[[], object]) -> int:
    """How many SQL statements ``action`` sends (BEGIN and COMMIT are not statements here)."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return len([s for s in seen if not s.startswith(("BEGIN", "COMMIT"))])


def reenable_if_locked(app: Flask, user_pk: int) -> None:
    """R6 through the real rules once the fifth wrong password has locked the user."""
    with app.app_context():
        user = db.session.get(User, user_pk)
        assert user is not None
        if not user.enabled:
            decision = rules.reenable(user.to_state(), now=clock.now(), today=clock.today())
            user.apply(decision.state)
            db.session.commit()
        db.session.remove()


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``action`` (the CPU time of this thread: the request runs
    in it; argon2's own threads are not counted, so only the code steps' CPU is printed)."""
    start, cpu = time.perf_counter(), time.thread_time()
    action()
    return time.perf_counter() - start, time.thread_time() - cpu


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(n: int) -> None:
    logging.disable(logging.WARNING)  # alembic's and the app's chatter is not a figure
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        app = build_app(Path(tmp) / "bench.sqlite")
        migrate_and_seed(app)
        secret = add_factor(app)
        hasher = app.extensions[passwords.EXTENSION_KEY].hasher
        with app.app_context():
            user = service.find_user(USER_ID)
            assert user is not None
            user_pk, stored_hash = user.id, user.password_hash
            mfa_user = service.find_user(MFA_USER_ID)
            assert mfa_user is not None
            mfa_pk = mfa_user.id
            db.session.remove()

        # No app context is held around the requests: each request gets its own, as in
        # production (an outer one would share ``g``, and with it the logged-in user).
        def login_ok() -> None:
            response = app.test_client().post(
                LOGIN, data={"user_id": USER_ID, "password": PASSWORD}
            )
            assert response.status_code == 302, response.status_code

        shared = app.test_client()

        def login_wrong() -> None:
            response = shared.post(LOGIN, data={"user_id": USER_ID, "password": WRONG})
            assert response.status_code == 200, response.status_code

        def login_unknown() -> None:
            response = shared.post(LOGIN, data={"user_id": UNKNOWN_ID, "password": WRONG})
            assert response.status_code == 200, response.status_code

        def verify() -> None:
            assert hasher.verify(stored_hash, PASSWORD)

        def mfa_password() -> None:
            response = app.test_client().post(
                LOGIN, data={"user_id": MFA_USER_ID, "password": PASSWORD}
            )
            assert response.headers["Location"].endswith(STEP), response.status_code

        halves = [app.test_client()]

        def half_login() -> None:  # outside the timed region: a new client past the password
            clock.advance(timedelta(seconds=totp.STEP_SECONDS))  # a new code each time
            halves[0] = app.test_client()
            halves[0].post(LOGIN, data={"user_id": MFA_USER_ID, "password": PASSWORD})

        def code_step() -> None:
            response = halves[0].post(STEP, data={"code": totp.code_at(secret, clock.now())})
            assert response.status_code == 302, response.status_code
            assert not response.headers["Location"].endswith("/login"), response.headers

        unused: list[str] = []

        def recovery_step() -> None:
            response = halves[0].post(STEP, data={"code": unused.pop()})
            assert response.status_code == 302, response.status_code
            assert not response.headers["Location"].endswith("/login"), response.headers

        def half_login_recovery() -> None:  # outside the timed region, like half_login
            if not unused:
                unused.extend(new_recovery_codes(app, mfa_pk))
            half_login()

        with app.app_context():
            sealed = second_factor.factors(mfa_pk)[0].totp_secret_sealed or ""
            db.session.remove()

        def code_check() -> None:  # the check alone: unseal the secret, compare 3 steps
            with app.app_context():
                opened = totp.unseal(sealed)
                assert totp.matching_step(
                    opened, totp.code_at(opened, clock.now()), clock.now(), after=None
                )

        samples: dict[str, list[float]] = {
            "check": [],
            "ok": [],
            "wrong": [],
            "unknown": [],
            "hash": [],
            "mfa_password": [],
            "code": [],
            "recovery": [],
        }
        cpu_samples: dict[str, list[float]] = {name: [] for name in samples}
        kinds = (
            ("ok", login_ok),
            ("wrong", login_wrong),
            ("unknown", login_unknown),
            ("hash", verify),
            ("mfa_password", mfa_password),
            ("code", code_step),
            ("recovery", recovery_step),
            ("check", code_check),
        )
        with clock.frozen(clock.now()):
            for i in range(WARMUP + n):
                for name, action in kinds:
                    if name == "code":
                        half_login()
                    elif name == "recovery":
                        half_login_recovery()
                    elapsed, cpu = timed(action)
                    if name == "wrong":
                        reenable_if_locked(app, user_pk)  # outside the timed region
                    if i >= WARMUP:
                        samples[name].append(elapsed)
                        cpu_samples[name].append(cpu)
            half_login()
            totp_sql = count_statements(app, code_step)
            half_login_recovery()
            recovery_sql = count_statements(app, recovery_step)
        with app.app_context():
            db.engine.dispose()

    med = {name: statistics.median(values) for name, values in samples.items()}
    params = ", ".join(
        f"{key.removeprefix('PORTAL_ARGON2_').lower()}={DEFAULTS[key]}" for key in ARGON2_KEYS
    )
    print(f"Login timing, N={n} each (medians), argon2id {params}")
    print(f"  successful login request      {med['ok'] * 1000:8.1f} ms")
    print(f"  wrong-password login request  {med['wrong'] * 1000:8.1f} ms")
    print(f"  unknown-user login request    {med['unknown'] * 1000:8.1f} ms")
    print(f"  argon2 verify (app's hasher)  {med['hash'] * 1000:8.1f} ms")
    print(f"  second factor: password step  {med['mfa_password'] * 1000:8.1f} ms")
    cpu_ms = {name: statistics.median(cpu_samples[name]) * 1000 for name in ("code", "recovery")}
    print(
        f"  second factor: code step      {med['code'] * 1000:8.1f} ms  "
        f"(CPU {cpu_ms['code']:.1f} ms, {totp_sql} SQL statements)"
    )
    print(
        f"  second factor: recovery code  {med['recovery'] * 1000:8.1f} ms  "
        f"(CPU {cpu_ms['recovery']:.1f} ms, {recovery_sql} SQL statements)"
    )
    print(f"  second factor: code check     {med['check'] * 1000:8.2f} ms (unseal + TOTP, no I/O)")
    for label, name in (
        ("successful login", "ok"),
        ("wrong-password login", "wrong"),
        ("unknown-user login", "unknown"),
        ("second factor's password step", "mfa_password"),
    ):
        ratio = med[name] / med["hash"]
        print(
            f"  {label} / argon2 verify = {ratio:.3f}   "
            f"(target ≤ {LOGIN_TARGET:.2f})  {verdict(ratio <= LOGIN_TARGET)}"
        )
    ratio = med["unknown"] / med["wrong"]
    print(
        f"  unknown-user / wrong-password = {ratio:.3f}   "
        f"(target {RATIO_LOW:.1f}–{RATIO_HIGH:.1f})  "
        f"{verdict(RATIO_LOW <= ratio <= RATIO_HIGH)}"
    )
    for label, name in (("code step", "code"), ("recovery code step", "recovery")):
        code_ms = med[name] * 1000
        print(
            f"  second factor's {label} = {code_ms:.2f} ms   "
            f"(target ≤ {CODE_TARGET_MS:.0f} ms)  {verdict(code_ms <= CODE_TARGET_MS)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=50, help="samples of each kind (default 50)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    run(args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
