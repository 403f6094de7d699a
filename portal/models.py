"""The models other tools rely on (docs/rules.md §9)."""

from portal.accounts.lockout_notices import LockoutAlert
from portal.accounts.lockout_notices import LockoutAlertWindow
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.tokens import PasswordResetToken
from portal.audit.erasure import AuditErasurePermit
from portal.audit.models import AuditEvent
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Screenshot
from portal.jobs.runs import JobRun
from portal.mail_queue import QueuedMail
from portal.newsletter.models import Subscriber
from portal.shown_once import ShownOnce

__all__ = [
    "AuditErasurePermit",
    "AuditEvent",
    "HelpdeskRequest",
    "JobRun",
    "LockoutAlert",
    "LockoutAlertWindow",
    "Organisation",
    "PasswordResetToken",
    "Profile",
    "QueuedMail",
    "RequestEvent",
    "Screenshot",
    "ShownOnce",
    "Subscriber",
    "User",
]
