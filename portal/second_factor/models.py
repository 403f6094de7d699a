"""The second factor's tables (docs/rules.md R10).

Who owns what (two branches built this package at the same time, on this one data model):

- **mfacore**: TOTP factors (``SecondFactor`` rows of kind ``totp``), ``RecoveryCode``, the
  email proof before the first factor (``EmailProofCode``), the wrong-code count
  (``users.failed_codes``), the login step ``/login/second-factor``, the enrolment page
  ``/account/second-factor``, the policy ``PORTAL_MFA_REQUIRED`` and the pure rules
  (``portal/second_factor/rules.py``).  Modules: ``totp.py``, ``recovery.py``,
  ``service.py``, ``rules.py``, ``email_proof.py``, ``policy.py``.
- **mfarecover**: passkeys (``SecondFactor`` rows of kind ``passkey``; ``passkeys.py``) and the
  resets: by another Administrator, the Portal team's two-person rule
  (``SecondFactorReset``; ``resets.py``) and the break-glass command.

Secrets at rest: a TOTP secret is sealed with Fernet under a key derived from ``SECRET_KEY``
with a purpose label of its own (``portal.mail_secrets.seal``, ``purpose=TOTP_PURPOSE``);
recovery codes and email proof codes are stored as sha256 hashes only (the recovery codes carry
79 bits, so an unsalted hash is as safe as the link tokens' are).

Every table refers to its user with ``ON DELETE CASCADE``: ``portal org delete`` deletes a
firm's users in SQL and their factors go with them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.db import UTCDateTime
from portal.extensions import db


class FactorKind(StrEnum):
    TOTP = "totp"
    PASSKEY = "passkey"


#: Longest name a user may give a factor ("Phone", "YubiKey 5C", …).
NAME_MAX = 100
#: WebAuthn: a credential id is at most 1023 bytes.
CREDENTIAL_ID_MAX = 1023


class SecondFactor(db.Model):  # type: ignore[name-defined]
    """One confirmed factor of a user: a TOTP authenticator or a passkey.

    A TOTP secret being set up (not yet confirmed by a code) is not a row: it waits, sealed, in
    the enrolment session, so "has a factor" is simply "has a row".
    """

    __tablename__ = "second_factors"
    __table_args__ = (
        CheckConstraint("kind IN ('totp', 'passkey')", "kind_known"),
        CheckConstraint(
            "(kind = 'totp') = (totp_secret_sealed IS NOT NULL)", "totp_secret_iff_totp"
        ),
        CheckConstraint("kind = 'totp' OR totp_last_step IS NULL", "totp_step_only_totp"),
        CheckConstraint("totp_last_step IS NULL OR totp_last_step >= 0", "totp_step_range"),
        CheckConstraint(
            "(kind = 'passkey') = (credential_id IS NOT NULL)", "credential_iff_passkey"
        ),
        CheckConstraint(
            "(kind = 'passkey') = (public_key IS NOT NULL AND sign_count IS NOT NULL)",
            "public_key_iff_passkey",
        ),
        CheckConstraint("sign_count IS NULL OR sign_count >= 0", "sign_count_range"),
        CheckConstraint("length(name) > 0", "name_not_empty"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: ``totp`` | ``passkey`` (:class:`FactorKind`).
    kind: Mapped[str] = mapped_column(String(10))
    #: The user's own name for it, shown in the list of factors.
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The last time it passed a check (login, or a re-check before adding/removing a factor).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # --- TOTP (mfacore) ------------------------------------------------------------------
    #: The base32 secret, sealed (``mail_secrets.seal(..., purpose=TOTP_PURPOSE)``).
    totp_secret_sealed: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: The time step (unix time // 30) of the last code accepted: that step and earlier ones
    #: are refused from then on (no replay).  Advanced by a conditional UPDATE.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)

    # --- passkey (mfarecover) ------------------------------------------------------------
    #: The WebAuthn credential id (raw bytes), unique across all users.
    credential_id: Mapped[bytes | None] = mapped_column(
        LargeBinary(CREDENTIAL_ID_MAX), nullable=True, unique=True
    )
    #: The COSE public key (raw bytes) from the registration.
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: The authenticator's signature counter (0 for authenticators that do not count).
    sign_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The transports the authenticator reported ("usb,nfc,internal"), comma-separated.
    transports: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RecoveryCode(db.Model):  # type: ignore[name-defined]
    """One of a user's ten single-use recovery codes (only its sha256 is kept).

    A new set replaces the old one (the old rows are deleted); a used code keeps its row with
    ``used_at`` set, so the page can say how many are left.
    """

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_id_code_hash", "user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: sha256 (hex) of the code, normalised (lower case, no dashes or spaces).
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set (by a conditional UPDATE … WHERE used_at IS NULL) when the code is spent.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EmailProofCode(db.Model):  # type: ignore[name-defined]
    """A code sent to a user's stored email address: the proof R10 asks for before binding the
    first factor to an existing account (unless the login used a one-time password just issued
    by an Administrator).  Single-use, short-lived, a few tries; only its sha256 is kept, and
    the email carrying it is sealed in the mail queue."""

    __tablename__ = "email_proof_codes"
    __table_args__ = (
        CheckConstraint("attempts >= 0", "attempts_range"),
        CheckConstraint("expires_at > created_at", "expires_after_created"),
        Index("ix_email_proof_codes_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    #: The email address it was sent to (case-folded): a change of address voids it.
    email_key: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Wrong codes tried against it (counted in SQL); at the limit it is void.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SecondFactorReset(db.Model):  # type: ignore[name-defined]
    """A two-person request (mfarecover) to reset a user's factors: one Portal team member
    requests it, referencing a helpdesk request; a different one approves it (which performs
    the reset); either may cancel; it expires 24 hours after it was made."""

    __tablename__ = "second_factor_resets"
    __table_args__ = (
        CheckConstraint(
            "approved_by_id IS NULL OR approved_by_id <> requested_by_id", "approver_not_requester"
        ),
        CheckConstraint(
            "(approved_by_id IS NULL) = (approved_at IS NULL)", "approved_by_iff_approved_at"
        ),
        CheckConstraint(
            "(cancelled_by_id IS NULL) = (cancelled_at IS NULL)", "cancelled_by_iff_cancelled_at"
        ),
        CheckConstraint("approved_at IS NULL OR cancelled_at IS NULL", "approved_or_cancelled"),
        CheckConstraint("expires_at > created_at", "expires_after_created"),
        Index("ix_second_factor_resets_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Whose factors are to be reset.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The helpdesk request it answers (``HD-000123``).
    helpdesk_reference: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
