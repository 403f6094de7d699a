"""The nightly run's housekeeping of passkey challenges (docs/rules.md §7): a new challenge
only clears its own user's expired ones, so the night deletes every expired one, and only those.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from portal import clock
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import runner
from portal.jobs.runs import JobRun
from portal.second_factor import passkeys
from portal.second_factor.passkeys import PasskeyChallenge
from tests.factories import make_user

pytestmark = pytest.mark.config(PORTAL_BASE_URL="http://localhost:5000")


def challenge_for(user_id: int) -> None:
    """A login challenge handed out now, as the second-factor page hands one out."""
    with write_transaction(db.session):
        passkeys.authentication_options(user_id=user_id, credentials=[], now=clock.now())


def challenges() -> list[tuple[int, str]]:
    db.session.rollback()
    rows = db.session.execute(
        select(PasskeyChallenge.user_id, PasskeyChallenge.purpose).order_by(PasskeyChallenge.id)
    )
    return [(row.user_id, row.purpose) for row in rows]


def test_the_nightly_run_deletes_expired_passkey_challenges_only(app: Flask) -> None:
    gone, kept = make_user(), make_user()
    with clock.frozen(clock.now()):
        challenge_for(gone.id)
        challenge_for(gone.id)
        clock.advance(passkeys.CHALLENGE_LIFETIME)  # both expire exactly now
        challenge_for(kept.id)  # fresh: clears only its own user's expired ones
        assert challenges() == [(gone.id, "login"), (gone.id, "login"), (kept.id, "login")]

        result = runner.run_nightly()

        assert (result.ran, result.status) == (True, "ok")
        assert result.counts["purge_passkey_challenges"] == {"purged": 2}
        assert challenges() == [(kept.id, "login")]
        [run] = db.session.scalars(select(JobRun))
        assert json.loads(run.counts or "{}")["purge_passkey_challenges"] == {"purged": 2}

        clock.advance(passkeys.CHALLENGE_LIFETIME - timedelta(seconds=1))
        with write_transaction(db.session):
            assert passkeys.purge_expired_challenges(clock.now()) == 0  # still usable
        clock.advance(timedelta(seconds=1))  # the fresh one, once it has expired, goes too
        with write_transaction(db.session):
            assert passkeys.purge_expired_challenges(clock.now()) == 1
        assert challenges() == []
