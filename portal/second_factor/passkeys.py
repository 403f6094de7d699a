"""Passkeys (WebAuthn) as a second factor, with py_webauthn (docs/rules.md R10; docs/security.md,
"Passkeys").

* The relying party is ``PORTAL_BASE_URL``: its host is the RP id and the URL's scheme, host
  and port the only origin accepted.  Browsers refuse WebAuthn on an IP address, so passkeys
  need a domain name (``localhost`` counts: try them at http://localhost:5000).
* Registration asks for a resident key where the authenticator can make one ("preferred") and
  user verification "preferred"; attestation "none" (we trust no vendor list).
* Authentication names the user's own credentials (``allowCredentials``), so a passkey made
  without a resident key works too; a credential of another user is refused.
* Challenges are kept server-side (:class:`PasskeyChallenge`): 32 random bytes, bound to the
  user and to the ceremony, single-use (deleted by the statement that takes them, so two
  requests cannot both use one) and valid for :data:`CHALLENGE_LIFETIME`.
* The sign count is checked by py_webauthn (a count that does not go up, when the
  authenticator keeps one, is refused as a cloned key) and stored after each use.

The functions here flush and never commit; the views run them in ``write_transaction``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from webauthn import generate_authentication_options
from webauthn import generate_registration_options
from webauthn import options_to_json
from webauthn import verify_authentication_response
from webauthn import verify_registration_response
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AttestationConveyancePreference
from webauthn.helpers.structs import AuthenticatorSelectionCriteria
from webauthn.helpers.structs import PublicKeyCredentialDescriptor
from webauthn.helpers.structs import ResidentKeyRequirement
from webauthn.helpers.structs import UserVerificationRequirement

from portal.audit import kinds
from portal.audit.record import record
from portal.db import UTCDateTime
from portal.db import rowcount
from portal.extensions import db
from portal.second_factor.models import CREDENTIAL_ID_MAX
from portal.second_factor.models import NAME_MAX
from portal.second_factor.models import FactorKind
from portal.second_factor.models import SecondFactor

#: How long the browser has to answer a challenge (the browser's own timeout is the same).
CHALLENGE_LIFETIME = timedelta(minutes=5)
TIMEOUT_MS = int(CHALLENGE_LIFETIME.total_seconds() * 1000)
#: Ceremonies a challenge may be used for.
REGISTER = "register"
LOGIN = "login"
#: Longer input is not a credential a browser made.
MAX_CREDENTIAL_JSON = 20_000
RP_NAME = "Claims Portal Console"

log = logging.getLogger(__name__)


class PasskeyError(ValueError):
    """The browser's answer is not acceptable (the message is for the log, not the page).

    Not a real attempt (docs/security.md PK-04): unreadable, or a challenge that is unknown,
    used, expired or another user's or ceremony's.  A login does not count it as a wrong code.
    """


class BadAssertion(PasskeyError):
    """A real attempt that failed: an answer on our challenge, for one of the user's passkeys,
    whose signature or sign count does not check out.  A login counts it as a wrong code."""


class PasskeyChallenge(db.Model):  # type: ignore[name-defined]
    """A challenge handed to a browser and not yet used (single-use, short-lived)."""

    __tablename__ = "passkey_challenges"
    __table_args__ = (CheckConstraint("purpose IN ('register', 'login')", name="purpose_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    #: sha256 of the challenge, hex (the challenge itself only travels to the browser).
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str


def relying_party() -> RelyingParty:
    """From ``PORTAL_BASE_URL``: its host is the RP id, scheme://host[:port] the origin."""
    parts = urlsplit(str(current_app.config["PORTAL_BASE_URL"]))
    host = (parts.hostname or "").lower()
    return RelyingParty(id=host, origin=f"{parts.scheme}://{parts.netloc.lower()}")


@dataclass(frozen=True)
class StoredPasskey:
    """What we keep of a registered passkey."""

    credential_id: bytes
    public_key: bytes
    sign_count: int


@dataclass(frozen=True)
class NewPasskey(StoredPasskey):
    """A passkey the browser just made, checked."""

    user_verified: bool


# --- challenges ----------------------------------------------------------------------------------


def _hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _new_challenge(user_id: int, purpose: str, now: datetime) -> bytes:
    challenge = secrets.token_bytes(32)
    db.session.execute(
        delete(PasskeyChallenge).where(
            PasskeyChallenge.user_id == user_id, PasskeyChallenge.expires_at <= now
        )
    )
    db.session.add(
        PasskeyChallenge(
            user_id=user_id,
            purpose=purpose,
            challenge_hash=_hash(challenge),
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    db.session.flush()
    return challenge


def purge_expired_challenges(now: datetime) -> int:
    """Delete every expired challenge, whoever it was for (the nightly job's housekeeping: a
    user who never asks for another challenge would otherwise keep theirs for ever).  Inside the
    caller's write transaction; returns how many rows went."""
    return rowcount(
        db.session.execute(
            delete(PasskeyChallenge)
            .where(PasskeyChallenge.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
    )


def _take_challenge(
    user_id: int, purpose: str, client_data_challenge: bytes, now: datetime
) -> None:
    """Use up the challenge the browser signed; PasskeyError unless it was ours, for this user
    and ceremony, unused and unexpired.  One DELETE decides, so it is used at most once."""
    taken = rowcount(
        db.session.execute(
            delete(PasskeyChallenge)
            .where(
                PasskeyChallenge.challenge_hash == _hash(client_data_challenge),
                PasskeyChallenge.user_id == user_id,
                PasskeyChallenge.purpose == purpose,
                PasskeyChallenge.expires_at > now,
            )
            .execution_options(synchronize_session=False)
        )
    )
    if taken != 1:
        raise PasskeyError("unknown, used or expired challenge")


def _parse(credential_json: str) -> dict[str, Any]:
    if not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise PasskeyError("no credential, or too long")
    try:
        parsed = json.loads(credential_json)
        client_data = json.loads(base64url_to_bytes(parsed["response"]["clientDataJSON"]))
        challenge = base64url_to_bytes(client_data["challenge"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(f"unreadable credential: {exc.__class__.__name__}") from exc
    if not isinstance(parsed, dict):
        raise PasskeyError("unreadable credential")
    parsed["_challenge"] = challenge
    return parsed


def credential_id_of(credential_json: str) -> bytes:
    """The credential id the browser says it used (to find the stored passkey)."""
    try:
        return base64url_to_bytes(str(json.loads(credential_json)["rawId"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise PasskeyError("unreadable credential id") from exc


# --- registration ------------------------------------------------------------------------------


def registration_options(
    *,
    user_id: int,
    user_name: str,
    display_name: str,
    user_handle: bytes,
    existing: list[bytes],
    now: datetime,
) -> str:
    """The options for ``navigator.credentials.create`` as JSON (a new challenge is stored)."""
    rp = relying_party()
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_name=user_name,
        user_id=user_handle,
        user_display_name=display_name,
        challenge=_new_challenge(user_id, REGISTER, now),
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing],
    )
    return options_to_json(options)


def verify_registration(user_id: int, credential_json: str, *, now: datetime) -> NewPasskey:
    """Check the browser's new credential against the challenge we gave (used up here)."""
    parsed = _parse(credential_json)
    challenge = parsed.pop("_challenge")
    _take_challenge(user_id, REGISTER, challenge, now)
    rp = relying_party()
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
    except WebAuthnException as exc:
        raise PasskeyError(str(exc)) from exc
    return NewPasskey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        user_verified=verified.user_verified,
    )


# --- authentication ----------------------------------------------------------------------------


def authentication_options(*, user_id: int, credentials: list[bytes], now: datetime) -> str:
    """The options for ``navigator.credentials.get`` as JSON (a new challenge is stored)."""
    options = generate_authentication_options(
        rp_id=relying_party().id,
        challenge=_new_challenge(user_id, LOGIN, now),
        timeout=TIMEOUT_MS,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in credentials],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options)


def verify_authentication(
    user_id: int, credential_json: str, stored: StoredPasskey, *, now: datetime
) -> int:
    """Check an assertion made with ``stored`` (one of the user's passkeys); the new sign count.

    The challenge is used up first, so a failed answer cannot be tried again with it.
    """
    parsed = _parse(credential_json)
    challenge = parsed.pop("_challenge")
    _take_challenge(user_id, LOGIN, challenge, now)
    rp = relying_party()
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=stored.public_key,
            credential_current_sign_count=stored.sign_count,
        )
    except WebAuthnException as exc:
        raise BadAssertion(str(exc)) from exc
    return verified.new_sign_count


def encode(credential_id: bytes) -> str:
    return bytes_to_base64url(credential_id)


# --- the user's passkeys (rows of ``second_factors`` of kind ``passkey``) ------------------------


def user_handle(user_id: int) -> bytes:
    """The WebAuthn user handle: stable for the account, and not its User ID or email address
    (an HMAC of the row id under SECRET_KEY)."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"passkey-user:{user_id}".encode(), hashlib.sha256).digest()


def passkeys_of(user_id: int) -> list[SecondFactor]:
    return list(
        db.session.scalars(
            select(SecondFactor)
            .where(
                SecondFactor.user_id == user_id,
                SecondFactor.kind == FactorKind.PASSKEY.value,
            )
            .order_by(SecondFactor.id)
        )
    )


def credential_ids(user_id: int) -> list[bytes]:
    return [f.credential_id for f in passkeys_of(user_id) if f.credential_id is not None]


def find_passkey(user_id: int, credential_id: bytes) -> SecondFactor | None:
    """The user's own passkey with this credential id (another user's is None: refused)."""
    if len(credential_id) > CREDENTIAL_ID_MAX:
        return None
    return db.session.scalar(
        select(SecondFactor)
        .where(
            SecondFactor.user_id == user_id,
            SecondFactor.kind == FactorKind.PASSKEY.value,
            SecondFactor.credential_id == credential_id,
        )
        .with_for_update()
    )


def stored(factor: SecondFactor) -> StoredPasskey:
    assert factor.credential_id is not None
    assert factor.public_key is not None
    return StoredPasskey(factor.credential_id, factor.public_key, factor.sign_count or 0)


def add_passkey(
    user_id: int, new: NewPasskey, *, name: str, transports: list[str], now: datetime
) -> SecondFactor:
    """Store a checked new passkey under ``name`` (the caller audits it)."""
    factor = SecondFactor(
        user_id=user_id,
        kind=FactorKind.PASSKEY.value,
        name=name,
        created_at=now,
        last_used_at=now,
        credential_id=new.credential_id,
        public_key=new.public_key,
        sign_count=new.sign_count,
        transports=",".join(t for t in transports if isinstance(t, str))[:200] or None,
    )
    db.session.add(factor)
    db.session.flush()
    return factor


def transports_of(credential_json: str) -> list[str]:
    try:
        found = json.loads(credential_json)["response"].get("transports") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []


def record_use(factor: SecondFactor, sign_count: int, now: datetime) -> None:
    factor.sign_count = sign_count
    factor.last_used_at = now
    db.session.flush()


# --- the login step and the enrolment page (called from portal/auth/second_factor.py) -----------


class NotAnAttempt(PasskeyError):
    """Raised out of the login's transaction: nothing is counted (docs/security.md PK-04)."""


def login_verifier(user_id: int) -> Any:
    """A ``service.Verifier`` that checks a passkey answer (the "code" is the credential JSON).

    Right: the sign count and last use are stored, ``"passkey"``.  A real attempt that fails
    (our challenge, the user's passkey, a bad signature or sign count): None, counted as a wrong
    code.  Anything else raises :class:`NotAnAttempt`, which ends the transaction unchanged.
    """

    def verify(_user_pk: int, credential_json: str, *, now: datetime) -> str | None:
        try:
            factor = find_passkey(user_id, credential_id_of(credential_json))
            if factor is None:
                raise PasskeyError("not one of this user's passkeys")
            count = verify_authentication(user_id, credential_json, stored(factor), now=now)
        except BadAssertion as exc:
            log.info("passkey refused for user %s (a wrong code): %s", user_id, exc)
            return None
        except PasskeyError as exc:
            log.info("passkey refused for user %s (not counted): %s", user_id, exc)
            raise NotAnAttempt(str(exc)) from exc
        record_use(factor, count, now)
        return "passkey"

    return verify


def login_options_json(user_id: int, *, now: datetime) -> str | None:
    """Options for "Use a passkey" at the code step (a new challenge), or None without one."""
    found = credential_ids(user_id)
    if not found:
        return None
    return authentication_options(user_id=user_id, credentials=found, now=now)


def enrolment_options_json(user: Any, *, now: datetime) -> str:
    return registration_options(
        user_id=user.id,
        user_name=user.user_id,
        display_name=user.full_name,
        user_handle=user_handle(user.id),
        existing=credential_ids(user.id),
        now=now,
    )


def register(user: Any, credential_json: str, *, name: str, now: datetime) -> SecondFactor:
    """Check and store a new passkey named ``name``; PasskeyError when the answer is refused
    (the challenge is used up either way: the caller commits)."""
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise ValueError("name")
    new = verify_registration(user.id, credential_json, now=now)
    factor = add_passkey(
        user.id, new, name=name, transports=transports_of(credential_json), now=now
    )
    record(kinds.SECOND_FACTOR_ADDED, actor=user, subject=user, now=now, details=f"passkey: {name}")
    return factor
