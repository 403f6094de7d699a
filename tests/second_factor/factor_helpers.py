"""Factors for the reset and passkey tests, written straight into ``second_factors`` (the
enrolment pages are tested on their own)."""

from __future__ import annotations

import os

from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor.models import FactorKind
from portal.second_factor.models import RecoveryCode
from portal.second_factor.models import SecondFactor


def give_factor(user: User, name: str = "Test key") -> SecondFactor:
    """A passkey-shaped factor and one recovery code (a key nobody holds: enough to count)."""
    now = clock.now()
    with write_transaction(db.session):
        factor = SecondFactor(
            user_id=user.id,
            kind=FactorKind.PASSKEY.value,
            name=name,
            created_at=now,
            credential_id=os.urandom(16),
            public_key=b"not a key",
            sign_count=0,
        )
        db.session.add(factor)
        db.session.add(RecoveryCode(user_id=user.id, code_hash="0" * 64, created_at=now))
    return factor


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
