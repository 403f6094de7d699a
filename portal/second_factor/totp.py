"""TOTP (RFC 6238) with pyotp: 6 digits, 30-second steps, ±1 step accepted, the last step used
stored so that a code never works twice (docs/rules.md R10).

The secret is shown once to the user (base32 and a QR code, SVG from segno as a ``data:`` image:
the strict CSP allows ``img-src 'self' data:``) and stored sealed (``mail_secrets``, with a
purpose key of its own).
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno

from portal import mail_secrets

STEP_SECONDS = 30
DIGITS = 6
#: Steps accepted either side of now (clock drift between the phone and the server).
WINDOW = 1
ISSUER = "Claims Portal Console"


def new_secret() -> str:
    """A new base32 secret (32 characters: 160 bits, RFC 4226's recommended length)."""
    return pyotp.random_base32()


def step_at(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def normalise(code: str) -> str:
    """What the user typed, without spaces (authenticator apps show "123 456")."""
    return "".join(code.split())


def could_be_code(code: str) -> bool:
    """Has ``code`` the shape of a TOTP code (6 digits, spaces aside)?"""
    code = normalise(code)
    return len(code) == DIGITS and code.isdigit()


def matching_step(secret: str, code: str, now: datetime, *, after: int | None) -> int | None:
    """The time step whose code ``code`` is (within ±``WINDOW`` of now, later than ``after``),
    or None.  Constant-time comparisons, every candidate step compared."""
    if not could_be_code(code):
        return None
    code = normalise(code)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_at(now)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected, code) and (after is None or step > after):
            found = step
    return found


def code_at(secret: str, now: datetime) -> str:
    """The code for ``now`` (tests, the demo and the benchmark compute codes with this)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(now)


def provisioning_uri(secret: str, *, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG ``data:`` URI (no inline style: CSP-safe)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=4, border=2, light="#fff"))


def seal(secret: str) -> str:
    return mail_secrets.seal(secret, purpose=mail_secrets.TOTP_PURPOSE)


def unseal(sealed: str) -> str:
    return mail_secrets.unseal(sealed, purpose=mail_secrets.TOTP_PURPOSE)
