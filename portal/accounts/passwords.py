"""argon2id hashing (argon2-cffi): one hasher per app, a dummy hash for unknown User IDs.

Every call to :func:`verify_password` runs exactly one argon2 verification, whether or not the
account exists and whether or not its stored hash is usable (docs/security.md EN-02).

The dummy hash is made at its first use, not when the app is built: at the default cost a hash
takes a few hundred milliseconds of CPU (more on a busy machine), which every CLI command
(``portal create-user`` hashed twice) and every worker start used to pay for nothing.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from dataclasses import field

from argon2 import PasswordHasher
from argon2 import Type
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask import Flask
from flask import current_app

EXTENSION_KEY = "portal.passwords"


@dataclass
class Hashing:
    hasher: PasswordHasher
    _dummy: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def dummy_hash(self) -> str:
        """A hash of a random secret with the configured parameters, made once, when needed."""
        if self._dummy is None:
            with self._lock:
                if self._dummy is None:
                    self._dummy = self.hasher.hash(secrets.token_urlsafe(24))
        return self._dummy


def make_hashing(time_cost: int, memory_cost: int, parallelism: int) -> Hashing:
    hasher = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
    )
    return Hashing(hasher)


def init_app(app: Flask) -> None:
    c = app.config
    app.extensions[EXTENSION_KEY] = make_hashing(
        c["PORTAL_ARGON2_TIME_COST"], c["PORTAL_ARGON2_MEMORY_COST"], c["PORTAL_ARGON2_PARALLELISM"]
    )


def _hashing() -> Hashing:
    return current_app.extensions[EXTENSION_KEY]


def hash_password(plain: str) -> str:
    return _hashing().hasher.hash(plain)


def verify_password(stored_hash: str | None, plain: str) -> bool:
    """True when ``plain`` matches; ``None`` (unknown user) verifies against the dummy hash."""
    hashing = _hashing()
    candidate = stored_hash if stored_hash and stored_hash.startswith("$argon2") else None
    try:
        ok = hashing.hasher.verify(candidate or hashing.dummy_hash, plain)
    except (VerificationError, InvalidHashError):
        return False
    return ok and candidate is not None


def needs_rehash(stored_hash: str) -> bool:
    """True when the stored hash was made with other parameters than the configured ones."""
    try:
        return _hashing().hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
