"""Every kind of audit event (docs/rules.md R9) and its label: the one registry.

The account events decided by the rules are ``rules.EventKind``; the others are the constants
below.  ``record.record`` refuses a kind that is not in :data:`LABELS`, and
``tests/audit/test_kinds.py`` checks that every kind the code records is here, so the audit
log's "What happened" column and filter never show a raw code for an event of our own.
"""

from __future__ import annotations

from typing import Final

from portal.accounts.rules import EventKind

# --- kinds recorded outside the rules (services and the web layer) -----------------------------

#: A logged-in user opened a page their profile may not see (docs/security.md AC-04).
AUTHZ_DENIED: Final = "authz_denied"
#: An Administrator changed a user's name, email address or profile.
DETAILS_CHANGED: Final = "details_changed"
#: An Administrator issued a one-time password.
PASSWORD_RESET_BY_ADMIN: Final = "password_reset_by_admin"  # noqa: S105 (a kind, not a password)
#: An Administrator signed a user out everywhere.
SESSIONS_ENDED: Final = "sessions_ended"
#: Self-service reset (R7): a link was emailed.
PASSWORD_RESET_REQUESTED: Final = "password_reset_requested"  # noqa: S105 (a kind, not a password)
#: Self-service reset: a known User ID, but no link (the reason says why).
PASSWORD_RESET_REFUSED: Final = "password_reset_refused"  # noqa: S105 (a kind, not a password)
#: Self-service reset: a new password was set through a link.
PASSWORD_RESET_COMPLETED: Final = "password_reset_completed"  # noqa: S105 (a kind, not a password)
#: A helpdesk request's status changed, referrals included (the timeline has the details).
HELPDESK_STATUS_CHANGED: Final = "helpdesk_status_changed"
#: The Helpdesk emailed an Administrator their User ID.
HELPDESK_USER_ID_SENT: Final = "helpdesk_user_id_sent"
#: Every factor of a user was removed (Administrator, two-person approval or break-glass):
#: ``rules.EventKind.FACTOR_RESET``, re-exported under the name the reset code uses.
SECOND_FACTOR_RESET: Final = EventKind.FACTOR_RESET
#: A second-factor reset was refused (the reason says why: self, last Administrator…).
SECOND_FACTOR_RESET_REFUSED: Final = "second_factor_reset_refused"
#: A Portal team member asked for a two-person second-factor reset.
SECOND_FACTOR_RESET_REQUESTED: Final = "second_factor_reset_requested"
#: A second Portal team member approved a two-person second-factor reset.
SECOND_FACTOR_RESET_APPROVED: Final = "second_factor_reset_approved"
#: A two-person second-factor reset request was cancelled.
SECOND_FACTOR_RESET_CANCELLED: Final = "second_factor_reset_cancelled"

#: R10: a second factor was added to the user's own account (details: its kind and name).
SECOND_FACTOR_ADDED: Final = "second_factor_added"
#: R10: the user removed one of its own factors.
SECOND_FACTOR_REMOVED: Final = "second_factor_removed"
#: R10: a new set of ten recovery codes was made (the old set stops working).
RECOVERY_CODES_ISSUED: Final = "recovery_codes_issued"
#: R10: a recovery code was spent at login.
RECOVERY_CODE_USED: Final = "recovery_code_used"
#: R10: a code was emailed to prove the stored address before the first factor.
EMAIL_PROOF_SENT: Final = "second_factor_email_code_sent"

#: An Administrator started a bulk action on the users list (details: the operation's id, the
#: action and the number of users); each user's own event names the same operation.
BULK_ACTION_STARTED: Final = "bulk_action_started"
#: A bulk action finished (details: how many changed, refused, already so, not found).
BULK_ACTION_FINISHED: Final = "bulk_action_finished"
#: An Administrator applied a CSV import (details: the import's id and its counts).
USERS_IMPORTED: Final = "users_imported"

#: An Administrator started an access review (details: its number, scope and size).
ACCESS_REVIEW_STARTED: Final = "access_review_started"
#: A decision in an access review about one user (reason: ``keep`` or ``remove``).
ACCESS_REVIEW_DECISION: Final = "access_review_decision"
#: An Administrator finished an access review and signed it off.
ACCESS_REVIEW_SIGNED_OFF: Final = "access_review_signed_off"

#: Every kind the code records, and what the audit log calls it.
LABELS: Final[dict[str, str]] = {
    EventKind.LOGIN_SUCCEEDED: "Logged in",
    EventKind.LOGIN_FAILED: "Login failed",
    EventKind.LOGIN_REFUSED: "Login refused (no access)",
    EventKind.LOCKED_OUT: "Locked out",
    EventKind.SYSTEM_DISABLED: "Disabled by the system",
    EventKind.ACCESS_REMOVED: "Access removed",
    EventKind.REMOVE_REFUSED: "Access removal refused",
    EventKind.ENABLED: "Access given (Enabled checked)",
    EventKind.ENABLE_REFUSED: "Enabling refused",
    EventKind.PASSWORD_RESET: "Password reset (self-service)",
    PASSWORD_RESET_BY_ADMIN: "One-time password issued",
    EventKind.PASSWORD_CHANGED: "Password changed",
    EventKind.EXPIRY_CHANGED: "Expiry date changed",
    EventKind.EXPIRY_REFUSED: "Expiry date change refused",
    EventKind.USER_CREATED: "User created",
    DETAILS_CHANGED: "Details changed",
    SESSIONS_ENDED: "Signed out everywhere",
    EventKind.ORGANISATION_CREATED: "Organisation created",
    EventKind.ORGANISATION_ERASED: "Organisation erased",
    EventKind.LOGGED_OUT: "Logged out",
    AUTHZ_DENIED: "Access to a page refused",
    PASSWORD_RESET_REQUESTED: "Password reset link sent",
    PASSWORD_RESET_REFUSED: "Password reset link refused",
    PASSWORD_RESET_COMPLETED: "Password reset link used",
    HELPDESK_STATUS_CHANGED: "Helpdesk request status changed",
    HELPDESK_USER_ID_SENT: "User ID sent by the Helpdesk",
    EventKind.PASSWORD_ACCEPTED: "Password accepted (second factor asked)",
    EventKind.CODE_FAILED: "Second-factor code wrong",
    EventKind.FACTOR_RESET: "Second factor reset",
    SECOND_FACTOR_ADDED: "Second factor added",
    SECOND_FACTOR_REMOVED: "Second factor removed",
    RECOVERY_CODES_ISSUED: "Recovery codes issued",
    RECOVERY_CODE_USED: "Recovery code used",
    EMAIL_PROOF_SENT: "Email code sent (second factor set-up)",
    SECOND_FACTOR_RESET_REFUSED: "Second factor reset refused",
    SECOND_FACTOR_RESET_REQUESTED: "Second factor reset asked for (two-person)",
    SECOND_FACTOR_RESET_APPROVED: "Second factor reset approved (two-person)",
    SECOND_FACTOR_RESET_CANCELLED: "Second factor reset request cancelled",
    BULK_ACTION_STARTED: "Bulk action started",
    BULK_ACTION_FINISHED: "Bulk action finished",
    USERS_IMPORTED: "Users imported from CSV",
    ACCESS_REVIEW_STARTED: "Access review started",
    ACCESS_REVIEW_DECISION: "Access review decision",
    ACCESS_REVIEW_SIGNED_OFF: "Access review signed off",
}


class UnknownKind(ValueError):
    """An audit event of a kind that is not in :data:`LABELS`."""


def check(kind: str) -> str:
    """``kind`` as stored; refuses a kind the registry does not know."""
    if kind not in LABELS:
        raise UnknownKind(f"audit event kind {kind!r} is not in portal/audit/kinds.py")
    return str(kind)


def label(kind: str) -> str:
    """What the audit log calls ``kind``; a stored kind we no longer record reads as words."""
    return LABELS.get(kind) or kind.replace("_", " ").capitalize()
