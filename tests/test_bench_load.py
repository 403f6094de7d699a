"""bench/load.py's own parts (docs/sizing.md): its arguments, its reading of /proc and of wrk's
result line, and, on PostgreSQL, that its set-based load gives users the rules let log in.

The bench itself (gunicorn under wrk) is not run here: it measures, and figures are not tests.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from bench import load
from portal import clock
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db

PG = "postgresql://postgres@127.0.0.1:5432/portal_nowhere"


def test_smoke_preset_is_tiny_and_needs_a_postgres_url() -> None:
    args = load.parse_args(["--smoke", "--pg-url", PG])
    assert (args.firms, args.users, args.runs, args.clients) == (10, 300, 1, [2])
    assert args.requests == 30  # a tenth of the users
    with pytest.raises(SystemExit):
        load.parse_args(["--pg-url", "sqlite:///x.sqlite"])
    with pytest.raises(SystemExit):
        load.parse_args(["--pg-url", PG, "--firms", "10", "--users", "15"])


def test_the_login_pool_holds_no_administrator_and_no_user_of_the_big_firm() -> None:
    scale = load.Scale(firms=10, users=300, requests=30, pool=1000)
    assert scale.big == 30
    assert scale.small == 30
    # Users 1-30 are the big firm's; 31-39 the first (Administrator) of firms 2-10.
    assert scale.pool_first == 40
    assert scale.pool_size == 261  # capped at the users there are
    assert scale.big_admin() == "load.user0000001"
    assert scale.small_admin() == "load.user0000031"


def test_wrk_result_line_is_read_and_a_missing_one_refused() -> None:
    output = (
        "Running 2s test\nLOADRESULT ok=5 other=1 requests=6 socket_errors=0 "
        "duration_us=2000000 p50_us=1500 p95_us=2500 p99_us=3000\n"
    )
    assert load.parse_result(output)["p95_us"] == 2500
    with pytest.raises(RuntimeError):
        load.parse_result("Running 2s test\n")


def test_cpu_and_memory_come_from_proc() -> None:
    spent = load.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))  # some CPU of our own
    assert load.cpu_seconds(os.getpid()) >= spent
    assert load.cpu_seconds(2**22 + 7) == 0.0  # no such process
    mine = load.memory(os.getpid())
    assert 0 < mine.rss <= mine.peak
    assert mine.pss > 0


def test_set_based_load_gives_users_the_rules_let_in(app: Flask) -> None:
    """PostgreSQL only (generate_series, make_interval): the CHECK constraints hold, the first
    user of each firm is its Administrator, and every pooled user may log in (R1-R4)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the bench loads PostgreSQL only")
        scale = load.Scale(firms=5, users=100, requests=2, pool=1000)
        with db.engine.begin() as conn:
            load.insert_firms_and_users(conn, scale, "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA")
        per_firm: dict[Any, int] = dict(
            db.session.execute(
                select(User.organisation_id, func.count()).group_by(User.organisation_id)
            ).all()
        )
        admins = db.session.scalars(
            select(User.user_id).where(User.profile == Profile.ADMINISTRATOR.value)
        ).all()
        assert per_firm[1] == scale.big == 10
        assert sorted(per_firm.values()) == [10, 22, 22, 23, 23]
        assert sorted(admins) == [load.user_id(g) for g in (1, 11, 12, 13, 14)]
        now, today = clock.now(), clock.today()
        pool = db.session.scalars(
            select(User).where(User.user_id_key >= load.user_id(scale.pool_first))
        ).all()
        assert len(pool) == scale.pool_size == 86
        for user in pool:
            assert user.profile == Profile.CLAIMS_HANDLER.value
            decision = rules.login_attempt(user.to_state(), password_ok=True, now=now, today=today)
            assert decision.outcome is rules.Outcome.OK, (user.user_id, decision.outcome)
            assert now - timedelta(days=90) < user.last_use_at <= now
