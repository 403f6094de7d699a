"""Factors for the reset and passkey tests: a TOTP factor with its ten recovery codes, made
through the service as the enrolment page does (``tests/second_factor/helpers.py``)."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy import select

from portal.accounts.models import User
from portal.extensions import db
from portal.second_factor.models import RecoveryCode
from portal.second_factor.models import SecondFactor
from tests.second_factor.helpers import add_totp

#: What ``give_factor`` leaves: one factor and ten recovery codes.
GIVEN = 11


def give_factor(user: User, name: str = "Phone") -> str:
    """A TOTP factor (and ten recovery codes) for ``user``; its secret."""
    secret, _ = add_totp(user, name)
    return secret


def factor_count(user: User) -> int:
    """The user's factors plus recovery codes, as the database has them now."""
    db.session.rollback()
    factors = db.session.scalar(
        select(func.count()).select_from(SecondFactor).where(SecondFactor.user_id == user.id)
    )
    codes = db.session.scalar(
        select(func.count()).select_from(RecoveryCode).where(RecoveryCode.user_id == user.id)
    )
    db.session.rollback()
    return int(factors or 0) + int(codes or 0)
