"""What the signed session holds about the second factor (docs/rules.md R10), for the password
step (``portal/auth/views.py``) and the second factor's pages (``portal/auth/second_factor.py``).

* :data:`PENDING`: the half-login after a right password (user primary key, its session token
  then, the time, the door, where to go next, whether the password was one-time).  Flask-Login
  knows nothing of it: the session is not authenticated until the code step passes.
* :data:`CHECKED_AT`: when this session last passed a second-factor check.
* :data:`OTP_LOGIN`: this login used a one-time password issued by an Administrator (R10:
  then the first factor needs no email proof).
* :data:`EMAIL_PROVEN`: the stored email address was proven in this session (user pk).
* :data:`NEW_SECRET`: the TOTP secret being set up, sealed, until a code confirms it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import session

from portal import clock

PENDING = "second_factor_pending"
CHECKED_AT = "second_factor_checked_at"
OTP_LOGIN = "one_time_password_login"
EMAIL_PROVEN = "second_factor_email_proven"
NEW_SECRET = "second_factor_new_secret"  # noqa: S105 (a session key, not a secret)
#: What a session keeps across a password change (``start_session`` renews the session).
CARRIED = (CHECKED_AT, OTP_LOGIN, EMAIL_PROVEN)


def begin(user: Any, door: str, next_path: str | None) -> None:
    """A right password from a user with a factor: remember the half-login."""
    session[PENDING] = {
        "pk": user.id,
        "token": user.session_token,
        "at": clock.now().timestamp(),
        "door": str(door),
        "next": next_path,
        "otp": bool(user.must_change_password),
    }


def logged_in_without_factor(user: Any) -> None:
    """A full login without a second factor: note whether it used a one-time password."""
    session[OTP_LOGIN] = bool(user.must_change_password)


def carry() -> dict[str, Any]:
    """What this session must keep across ``start_session`` (a password change)."""
    return {key: session[key] for key in CARRIED if key in session}


def restore(carried: Mapping[str, Any]) -> None:
    session.update(carried)
