"""``portal sweep [--dry-run] [--as-of]``, ``portal jobs`` and ``portal backup``."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from portal import clock
from portal.accounts import rules
from portal.extensions import db
from portal.jobs import runner as job_runner
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh

NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


def portal(cli: FlaskCliRunner, *args: str) -> Result:
    return cli.invoke(args=["portal", *args])


def test_sweep_dry_run_prints_and_changes_nothing_then_sweep_does_it(
    app: Flask, runner: FlaskCliRunner
) -> None:
    org = make_org()
    inactive = make_user(org, user_id="old.user", created_at=NOW - rules.INACTIVITY * 2)
    expired = make_user(
        org, user_id="gone.user", created_at=NOW - timedelta(days=5), expires_on=date(2026, 6, 1)
    )
    with clock.frozen(NOW):
        dry = portal(runner, "sweep", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "Would disable 2 user(s) as of 2026-06-15" in dry.output
        assert "expiry: 1\n    gone.user" in dry.output
        assert "inactivity: 1\n    old.user" in dry.output
        assert "Dry run: nothing was changed." in dry.output
        assert refresh(inactive).enabled
        assert refresh(expired).enabled

        real = portal(runner, "sweep")
        assert real.exit_code == 0, real.output
        assert "Disabled 2 user(s) as of 2026-06-15" in real.output
        assert refresh(inactive).disabled_reason == "inactivity"
        assert refresh(expired).disabled_reason == "expiry"

        again = portal(runner, "sweep")
        assert "Disabled 0 user(s)" in again.output


def test_sweep_as_of_previews_a_future_date_but_refuses_to_apply_it(
    app: Flask, runner: FlaskCliRunner
) -> None:
    org = make_org()
    user = make_user(org, created_at=NOW - timedelta(days=1), expires_on=date(2026, 7, 1))
    with clock.frozen(NOW):
        before = portal(runner, "sweep", "--dry-run", "--as-of", "2026-06-30")
        assert "Would disable 0 user(s) as of 2026-06-30" in before.output
        on = portal(runner, "sweep", "--dry-run", "--as-of", "2026-07-01")
        assert "Would disable 1 user(s) as of 2026-07-01" in on.output
        assert "expiry: 1" in on.output

        refused = portal(runner, "sweep", "--as-of", "2026-07-01")
        assert refused.exit_code != 0
        assert "add --dry-run" in refused.output
        assert refresh(user).enabled

        bad = portal(runner, "sweep", "--as-of", "15/06/2026")
        assert bad.exit_code != 0
        assert "use YYYY-MM-DD" in bad.output


def test_jobs_lists_the_last_runs_with_their_outcome(app: Flask, runner: FlaskCliRunner) -> None:
    empty = portal(runner, "jobs")
    assert (empty.exit_code, empty.output) == (0, "No nightly run yet.\n")
    with clock.frozen(NOW):
        assert job_runner.run_nightly().ran
    with clock.frozen(NOW + timedelta(days=1)):
        assert job_runner.run_nightly().ran
    listed = portal(runner, "jobs")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].startswith("2026-06-16  nightly  ok")
    assert any(line.startswith("2026-06-15  nightly  ok") for line in lines)
    assert '"sweep": {"expiry": 0, "inactivity": 0}' in listed.output
    one = portal(runner, "jobs", "--limit", "1")
    assert "2026-06-15" not in one.output
    assert portal(runner, "jobs", "--limit", "0").exit_code != 0


def test_backup_copies_the_sqlite_database_online(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL backups: tests/test_backup_restore.py")
    make_user(user_id="kept.user")
    db.session.rollback()
    target = tmp_path / "backup.sqlite"
    result = portal(runner, "backup", str(target))
    assert result.exit_code == 0, result.output
    assert f"to {target}" in result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = copy.execute("SELECT user_id FROM users").fetchall()
    assert rows == [("kept.user",)]

    again = portal(runner, "backup", str(target))
    assert again.exit_code != 0
    assert "already exists" in again.output
    missing = portal(runner, "backup", str(tmp_path / "no" / "such" / "dir.sqlite"))
    assert missing.exit_code != 0
    assert "does not exist" in missing.output
