"""Sealing the bodies of queued emails that carry a secret (a reset link, a confirmation link).

The body is encrypted with Fernet (AES-128-CBC with an HMAC-SHA256, from the ``cryptography``
package) under a key derived from ``SECRET_KEY`` with HKDF-SHA256 and a purpose label of its
own, so a database dump or backup holds only ciphertext, and the key is never the secret key
itself (which also signs the session cookies).  Keys from ``SECRET_KEY_FALLBACKS`` (Flask's
setting for rotating the secret key) still open what was sealed before a rotation.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

#: HKDF's "info": binds the derived key to this one use of the secret key.
PURPOSE = b"claims-portal-console mail-queue body v1"
#: The same sealing for TOTP secrets at rest (portal/second_factor), under a key of its own.
TOTP_PURPOSE = b"claims-portal-console totp secret v1"


class Unreadable(Exception):
    """A sealed body that no configured key opens (the secret key changed without a fallback)."""


def derive_key(secret_key: str | bytes, purpose: bytes = PURPOSE) -> bytes:
    """The Fernet key (url-safe base64 of 32 bytes) derived from one secret key."""
    material = secret_key.encode() if isinstance(secret_key, str) else secret_key
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return base64.urlsafe_b64encode(hkdf.derive(material))


def _fernet(purpose: bytes) -> MultiFernet:
    cfg = current_app.config
    keys = (cfg["SECRET_KEY"], *(cfg.get("SECRET_KEY_FALLBACKS") or ()))
    return _fernet_for(tuple(key for key in keys if key), purpose)


@functools.lru_cache(maxsize=16)
def _fernet_for(keys: tuple[str | bytes, ...], purpose: bytes) -> MultiFernet:
    """Built once per set of keys and purpose, not per call: the HKDF derivations are a good
    part of the login's code step (it unseals a TOTP secret; docs/security.md PK-06).  Keyed
    on the keys themselves, so a changed ``SECRET_KEY`` gets its own."""
    return MultiFernet([Fernet(derive_key(key, purpose)) for key in keys])


def seal(text: str, purpose: bytes = PURPOSE) -> str:
    """The ciphertext of ``text`` (ASCII, safe to store in a text column)."""
    return _fernet(purpose).encrypt(text.encode("utf-8")).decode("ascii")


def unseal(sealed: str, purpose: bytes = PURPOSE) -> str:
    """The text :func:`seal` sealed; :class:`Unreadable` when no configured key opens it."""
    try:
        return _fernet(purpose).decrypt(sealed.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise Unreadable("the body cannot be decrypted with the configured secret key") from exc
