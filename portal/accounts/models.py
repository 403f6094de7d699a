"""Organisations and users (docs/rules.md §1, §9).  The three states are CHECK constraints."""

from __future__ import annotations

import secrets
from datetime import date
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from flask_login import UserMixin
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship
from sqlalchemy.orm import validates

from portal import clock
from portal.accounts import passwords
from portal.accounts import rules
from portal.db import UTCDateTime
from portal.extensions import db
from portal.keys import key_fits as key_fits  # re-exported: the accounts' own name
from portal.keys import normalise_key as normalise_key


class Profile(StrEnum):
    CLAIMS_HANDLER = "claims_handler"
    ADMINISTRATOR = "administrator"
    HELPDESK = "helpdesk"
    PORTAL_TEAM = "portal_team"

    @property
    def label(self) -> str:
        return PROFILE_LABELS[self]


#: Keyed by the members, which are strings: a stored value (``"administrator"``) finds its label
#: without making the member first (the users list asks 50 times a page).
PROFILE_LABELS: dict[str, str] = {
    Profile.CLAIMS_HANDLER: "Claims Handler",
    Profile.ADMINISTRATOR: "Administrator",
    Profile.HELPDESK: "Helpdesk",
    Profile.PORTAL_TEAM: "Portal team",
}

#: Profiles that belong to an organisation (the others belong to the operator).
ORGANISATION_PROFILES = (Profile.CLAIMS_HANDLER, Profile.ADMINISTRATOR)


def _sql_list(values: object) -> str:
    return ", ".join(f"'{v}'" for v in values)  # type: ignore[attr-defined]


def new_session_token() -> str:
    return secrets.token_hex(16)


def login_id(pk: int, session_token: str) -> str:
    """The session's user id for Flask-Login (``accounts/session.py`` parses it back)."""
    return f"{pk}:{session_token}"


class StateColumns(Protocol):
    """The user columns behind ``rules.AccountState``: an ORM ``User`` or a Core row of them."""

    @property
    def enabled(self) -> bool: ...
    @property
    def active(self) -> bool: ...
    @property
    def disabled_reason(self) -> str | None: ...
    @property
    def failed_attempts(self) -> int: ...
    @property
    def last_login_at(self) -> datetime | None: ...
    @property
    def access_granted_at(self) -> datetime: ...
    @property
    def expires_on(self) -> date | None: ...
    @property
    def failed_attempts_without_access(self) -> int: ...
    @property
    def failed_codes(self) -> int: ...


#: The columns :func:`state_of` reads and :func:`state_columns` writes (``last_use_at`` aside).
STATE_COLUMNS = (
    "enabled",
    "active",
    "disabled_reason",
    "failed_attempts",
    "last_login_at",
    "access_granted_at",
    "expires_on",
    "failed_attempts_without_access",
    "failed_codes",
)


def state_of(row: StateColumns) -> rules.AccountState:
    """The rules' view of a user's row (the ORM entity or a Core row with these columns)."""
    return rules.AccountState(
        enabled=row.enabled,
        active=row.active,
        reason=rules.Reason(row.disabled_reason) if row.disabled_reason else None,
        failures=row.failed_attempts,
        last_login=row.last_login_at,
        access_granted=row.access_granted_at,
        expires_on=row.expires_on,
        failures_without_access=row.failed_attempts_without_access,
        code_failures=row.failed_codes,
    )


def state_columns(state: rules.AccountState) -> dict[str, object]:
    """The column values of a state decided by ``rules`` (with the stored ``last_use_at``).
    Ending sessions when access changes is the writer's part (``User.changes``)."""
    return {
        "enabled": state.enabled,
        "active": state.active,
        "disabled_reason": state.reason.value if state.reason else None,
        "failed_attempts": state.failures,
        "failed_attempts_without_access": state.failures_without_access,
        "failed_codes": state.code_failures,
        "last_login_at": state.last_login,
        "access_granted_at": state.access_granted,
        "last_use_at": rules.last_use(state),
        "expires_on": state.expires_on,
    }


class Organisation(db.Model):  # type: ignore[name-defined]
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: ``name`` trimmed and case-folded: organisation names are unique case-insensitively.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: clock.now())

    users: Mapped[list[User]] = relationship(back_populates="organisation", lazy="raise")

    @validates("name")
    def _set_key(self, _key: str, value: str) -> str:
        value = value.strip()
        self.name_key = normalise_key(value)
        return value


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("active OR NOT enabled", "active_if_enabled"),
        CheckConstraint(
            "(disabled_reason IS NOT NULL) = (active AND NOT enabled)",
            "reason_iff_system_disabled",
        ),
        CheckConstraint(
            f"disabled_reason IS NULL OR disabled_reason IN ({_sql_list(rules.Reason)})",
            "disabled_reason_known",
        ),
        CheckConstraint(f"profile IN ({_sql_list(Profile)})", "profile_known"),
        CheckConstraint(
            f"failed_attempts >= 0 AND failed_attempts <= {rules.LOCKOUT_AFTER}",
            "failed_attempts_range",
        ),
        CheckConstraint(
            f"NOT enabled OR failed_attempts < {rules.LOCKOUT_AFTER}",
            "enabled_below_lockout",
        ),
        CheckConstraint(
            "failed_attempts_without_access >= 0", "failed_attempts_without_access_range"
        ),
        CheckConstraint(
            f"failed_codes >= 0 AND failed_codes <= {rules.CODE_LOCKOUT_AFTER}",
            "failed_codes_range",
        ),
        CheckConstraint(
            f"NOT enabled OR failed_codes < {rules.CODE_LOCKOUT_AFTER}",
            "enabled_below_code_lockout",
        ),
        CheckConstraint(
            "NOT enabled OR failed_attempts_without_access = 0",
            "no_count_without_access_while_enabled",
        ),
        CheckConstraint(
            f"(organisation_id IS NOT NULL) = (profile IN ({_sql_list(ORGANISATION_PROFILES)}))",
            "organisation_iff_member",
        ),
        Index("ix_users_enabled_last_use_at", "enabled", "last_use_at"),
        Index("ix_users_enabled_expires_on", "enabled", "expires_on"),
        # The Console's users list: each filter and sort within one organisation, in order.
        Index("ix_users_org_user_id_key", "organisation_id", "user_id_key"),
        Index("ix_users_org_state", "organisation_id", "enabled", "active", "user_id_key"),
        Index("ix_users_org_last_login", "organisation_id", "last_login_at", "user_id_key"),
        Index("ix_users_org_expires_on", "organisation_id", "expires_on", "user_id_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: As entered (trimmed).  Unique case-insensitively through ``user_id_key``.
    user_id: Mapped[str] = mapped_column(String(64))
    user_id_key: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    #: Case-folded copies for search (SQL lower() is ASCII-only on SQLite and keeps ß).
    full_name_key: Mapped[str] = mapped_column(String(200))
    email_key: Mapped[str] = mapped_column(String(254))
    profile: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id"), index=True, nullable=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    #: Enabled: checked by Administrators, unchecked by them or by the system (R1–R4).
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Active: unchecked only with Enabled by a manual removal (R4); never a control of its own.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: ``lockout`` / ``inactivity`` / ``expiry`` while system-disabled, else NULL.
    disabled_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: R1 as amended: wrong passwords tried since the account lost access (0 while enabled,
    #: counted atomically in SQL, back to 0 when access is restored).  From the fifth on, even a
    #: right password gets the generic answer.
    failed_attempts_without_access: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )
    #: R10: consecutive wrong second-factor codes (counted atomically in SQL; a right code, a
    #: re-enable or a factor reset sets it to 0, a right password does not).  The fifth locks
    #: the account like R1 (reason ``lockout``).
    failed_codes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When the user was last told at its own address that it was locked out (R1: at most one
    #: notice a day).
    lockout_notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    access_granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Stored ``rules.last_use``: the later of the two above (indexed for the nightly sweep).
    last_use_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: A date in PORTAL_TIMEZONE; access ends on this day (R3).  NULL: no expiry (operator staff).
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Part of the session identity (Flask-Login alternative id): rotating it ends every session.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: clock.now())

    organisation: Mapped[Organisation | None] = relationship(back_populates="users")

    @validates("user_id")
    def _set_user_id_key(self, _key: str, value: str) -> str:
        value = value.strip()
        self.user_id_key = normalise_key(value)
        return value

    @validates("full_name", "email")
    def _set_search_key(self, key: str, value: str) -> str:
        value = value.strip()
        setattr(self, f"{key}_key", normalise_key(value))
        return value

    # --- the account rules' view of this row -------------------------------------------
    def to_state(self) -> rules.AccountState:
        return state_of(self)

    def changes(self, state: rules.AccountState) -> dict[str, object]:
        """The column values that write a state decided by ``rules`` to this row: the state's,
        and a new session token when access changes (docs/security.md D-5: a disable ends every
        session; so does a re-enable, so that a session from before a disable the sweep made,
        set-based and without rotation, cannot come back).  :meth:`apply` sets them on the
        entity; ``management`` may write them with one UPDATE instead."""
        columns = state_columns(state)
        if self.enabled != state.enabled:
            columns["session_token"] = new_session_token()
        return columns

    def apply(self, state: rules.AccountState) -> None:
        """Write a state decided by ``rules`` back to the row (only ``service`` calls this)."""
        for column, value in self.changes(state).items():
            setattr(self, column, value)

    @property
    def access(self) -> rules.Access:
        return rules.access(self.to_state())

    @property
    def is_active(self) -> bool:  # Flask-Login: R8, evaluated on every request
        return rules.has_access(self.to_state(), clock.now(), clock.today())

    @property
    def is_administrator(self) -> bool:
        return self.profile == Profile.ADMINISTRATOR

    @property
    def profile_label(self) -> str:
        return PROFILE_LABELS[self.profile]  # a StrEnum's key is found by its value

    def get_id(self) -> str:
        return login_id(self.id, self.session_token)

    def rotate_session_token(self) -> None:
        self.session_token = new_session_token()

    def set_password(self, plain: str) -> None:
        """Hash and store a new password; every existing session ends (R8)."""
        self.password_hash = passwords.hash_password(plain)
        self.password_changed_at = clock.now()
        self.rotate_session_token()

    def __repr__(self) -> str:
        return f"<User {self.user_id!r} {self.profile} {self.access.value}>"
