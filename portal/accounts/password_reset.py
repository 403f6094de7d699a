"""Self-service password reset for Administrators (docs/rules.md R7; docs/security.md EN-03…EN-05,
RS-01…RS-08).

Two operations, each with its own short write transaction (a password hash is never computed
while the write lock is held, and the views compute it before calling :func:`complete`):

* :func:`request_reset` looks the account up, decides whether it may have a link, issues a
  token and queues its email to the *stored* address in the same transaction (sealed: the
  link is encrypted at rest and wiped once sent or expired), then tries to send it.  It runs
  after the response (see ``portal.auth.reset``), so what it finds never shows in the response
  or its timing.  With SMTP down the link waits in the queue and is retried.
* :func:`complete` re-checks the token under a row lock, marks it used, sets the new password,
  ends every session, applies ``rules.after_password_reset`` and queues the notice.

Requesting a reset changes nothing on the account (RS-04).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from portal import emails
from portal import links
from portal import mail_queue
from portal.accounts import rules
from portal.accounts import tokens
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.audit import kinds
from portal.audit.record import record
from portal.db import write_transaction
from portal.extensions import db
from portal.keys import same_key

log = logging.getLogger(__name__)


#: ``mail_queue`` purposes of the two emails.
LINK_PURPOSE = "password_reset.link"
NOTICE_PURPOSE = "password_reset.notice"


@dataclass(frozen=True)
class Completed:
    """What the view needs after a completed reset (the account row is no longer locked)."""

    user_id: str
    full_name: str
    email: str
    has_access: bool
    reason: rules.Reason | None
    #: The queued "your password was changed" email, for ``mail_queue.deliver_soon``.
    notice: mail_queue.QueuedMail


def _find(user_id: str) -> User | None:
    user_id = user_id.strip()
    if "\x00" in user_id or not 0 < len(user_id) <= 64:  # never stored: no query needed
        return None
    return db.session.scalar(select(User).where(User.user_id_key == normalise_key(user_id)))


def emails_match(stored: str, typed: str) -> bool:
    """Case-insensitive comparison (casefold on both sides); the mail goes to ``stored``."""
    return same_key(stored, typed)


def reset_link(token: str) -> str:
    """Built from PORTAL_BASE_URL, never from the request's Host header (docs/security.md RS-06)."""
    return links.absolute_url(f"/password-reset/{token}")


def request_reset(user_id: str, email: str, *, now: datetime) -> bool:
    """Email a reset link when ``user_id`` and ``email`` name an Administrator who may reset.

    Returns whether a link was sent (for logs and tests only: never shown to the requester).
    A known User ID that gets no link is audited with the reason (wrong email, not eligible,
    too many links this hour); an unknown one is not (what was typed may be anything).
    """
    cfg = current_app.config
    found = _find(user_id)
    db.session.commit()  # end the read transaction
    if found is None:
        return False
    token = tokens.new_token()
    with write_transaction(db.session):
        user = db.session.get(User, found.id, with_for_update=True, populate_existing=True)
        assert user is not None  # users are never deleted
        refusal: str | None = None
        if not emails_match(user.email, email):
            refusal = "email_mismatch"
        elif not tokens.may_reset(user):
            refusal = "not_eligible"
        elif (
            tokens.issued_since(user, now - tokens.CAP_WINDOW)
            >= cfg["PORTAL_RESET_TOKENS_PER_HOUR"]
        ):
            refusal = "too_many"
        if refusal is not None:
            record(
                kinds.PASSWORD_RESET_REFUSED,
                actor=None,
                actor_label="anonymous",
                subject=user,
                now=now,
                reason=refusal,
            )
            return False
        minutes = int(cfg["PORTAL_RESET_TOKEN_MINUTES"])
        issued = tokens.issue(user, token=token, now=now, minutes=minutes)
        record(
            kinds.PASSWORD_RESET_REQUESTED,
            actor=None,
            actor_label="anonymous",
            subject=user,
            now=now,
        )
        link = mail_queue.enqueue(
            user.email,
            f"Reset your {emails.APP_NAME} password",
            _link_text(user.full_name, user.user_id, token, minutes),
            purpose=LINK_PURPOSE,
            ref=user.user_id[:40],
            secret_until=issued.expires_at,
        )
    mail_queue.deliver(link.id)  # already after the response, in a background thread
    return True


def _link_text(full_name: str, user_id: str, token: str, minutes: int) -> str:
    return emails.render(
        "password_reset_link.txt",
        full_name=full_name,
        user_id=user_id,
        minutes=minutes,
        link=reset_link(token),
    )


def complete(
    token_hash: str, new_hash: str, *, now: datetime, today: date
) -> Completed | tokens.Invalid:
    """Use the token: one write transaction; returns what happened, or a ``tokens.Invalid``."""
    with write_transaction(db.session):
        checked = tokens.check(token_hash, now=now, lock=True)
        if checked.problem is not None or checked.user is None or checked.token is None:
            return checked.problem or tokens.Invalid.UNKNOWN
        user, token = checked.user, checked.token
        decision = rules.after_password_reset(
            user.to_state(), is_admin=user.is_administrator, now=now, today=today
        )
        if decision.outcome is not rules.Outcome.OK:  # may_self_reset was checked just above
            return tokens.Invalid.UNKNOWN
        token.used_at = now
        user.apply(decision.state)
        user.password_hash = new_hash
        user.password_changed_at = now
        user.must_change_password = False
        user.rotate_session_token()  # every session ends (R8, docs/security.md RS-05)
        for ev in decision.events:
            by_system = ev.kind is rules.EventKind.SYSTEM_DISABLED
            actor = None if by_system else user
            record(ev.kind, actor=actor, subject=user, now=now, reason=ev.reason)
        record(kinds.PASSWORD_RESET_COMPLETED, actor=user, subject=user, now=now)
        reason = decision.state.reason
        notice = mail_queue.enqueue(
            user.email,
            f"Your {emails.APP_NAME} password was changed",
            _notice_text(user.full_name, user.user_id, user.enabled, reason, now=now),
            purpose=NOTICE_PURPOSE,
            ref=user.user_id[:40],
        )
        done = Completed(
            user_id=user.user_id,
            full_name=user.full_name,
            email=user.email,
            has_access=user.enabled,
            reason=reason,
            notice=notice,
        )
    return done


def _notice_text(
    full_name: str,
    user_id: str,
    has_access: bool,
    reason: rules.Reason | None,
    *,
    now: datetime,
) -> str:
    """The notice to the account's stored address that its password changed (no password)."""
    return emails.render(
        "password_changed.txt",
        full_name=full_name,
        user_id=user_id,
        when=now.astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"])),
        expired=not has_access and reason is rules.Reason.EXPIRY,
    )
