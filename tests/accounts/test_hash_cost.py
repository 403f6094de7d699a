"""Hashing costs only where a password is hashed: building the app hashes nothing, so
``portal create-user`` hashes once (it hashed twice, ~4 s on a busy machine), and the dummy
hash for unknown User IDs is made at its first use, once."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask

from portal import create_app
from portal.accounts import passwords
from portal.extensions import db
from tests.factories import make_org


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts argon2 hash computations (the library's, not our database)."""
    calls: list[int] = []
    original = PasswordHasher.hash

    def counting(self: PasswordHasher, *args: Any, **kwargs: Any) -> str:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "hash", counting)
    return calls


def test_building_the_app_hashes_nothing_and_create_user_hashes_once(
    settings: dict[str, Any], hash_calls: list[int]
) -> None:
    app: Flask = create_app(settings)
    assert hash_calls == []
    with app.app_context():
        try:
            make_org("Hash Cost Ltd")
            result = app.test_cli_runner().invoke(
                args=[
                    *("portal", "create-user", "--org", "Hash Cost Ltd", "--user-id", "hash.one"),
                    *("--profile", "administrator", "--email", "h@example.com", "--name", "H One"),
                ]
            )
            assert result.exit_code == 0, result.output
            assert len(hash_calls) == 1
        finally:
            db.session.remove()
            db.engine.dispose()


def test_the_dummy_hash_is_made_once_at_first_use(app: Flask, hash_calls: list[int]) -> None:
    assert passwords.verify_password(None, "anything") is False
    assert passwords.verify_password(None, "anything else") is False
    assert len(hash_calls) == 1
