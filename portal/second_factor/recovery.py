"""Recovery codes (docs/rules.md R10): ten single-use codes, shown once, stored as sha256.

Each code is 16 characters from a 31-letter alphabet (79 bits), shown in four groups of four
("k7pq-3mxa-…"); case, dashes and spaces do not matter when typed.  With 79 bits an unsalted
sha256 is enough (a stolen table cannot be searched), and a login checks one code with one
indexed look-up, never ten slow hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from portal.db import rowcount
from portal.extensions import db
from portal.second_factor.models import RecoveryCode

COUNT = 10
GROUPS = 4
GROUP_LENGTH = 4
#: No 0/o, 1/l/i: easy to copy from paper.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def normalise(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def looks_like_one(code: str) -> bool:
    """Could ``code`` be a recovery code (rather than a 6-digit TOTP code)?"""
    return len(normalise(code)) == GROUPS * GROUP_LENGTH


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH))
    return "-".join(raw[i : i + GROUP_LENGTH] for i in range(0, len(raw), GROUP_LENGTH))


def issue(user_id: int, *, now: datetime) -> list[str]:
    """A new set of codes for ``user_id`` (the old set is deleted); returns the codes, which
    are never stored nor shown again.  Inside the caller's write transaction."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_code() for _ in range(COUNT)]
    db.session.add_all(
        RecoveryCode(user_id=user_id, code_hash=hash_code(code), created_at=now) for code in codes
    )
    db.session.flush()
    return codes


_codes = RecoveryCode.__table__
#: Built once (the login's hot path, docs/security.md PK-06); on the (user_id, code_hash) index.
_SPEND = (
    update(_codes)
    .where(
        _codes.c.user_id == bindparam("user_pk"),
        _codes.c.code_hash == bindparam("hashed"),
        _codes.c.used_at.is_(None),
    )
    .values(used_at=bindparam("now"))
)


def spend(user_id: int, code: str, *, now: datetime) -> bool:
    """Use ``code`` once: one conditional UPDATE, so two concurrent logins cannot both spend
    it.  True when it was an unused code of this user."""
    result = db.session.execute(_SPEND, {"user_pk": user_id, "hashed": hash_code(code), "now": now})
    return rowcount(result) == 1


def remaining(user_id: int) -> int:
    count = db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return count or 0
