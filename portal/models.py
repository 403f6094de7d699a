"""The models other tools rely on (docs/rules.md §9)."""

from portal.accounts.lockout_notices import LockoutAlert
from portal.accounts.lockout_notices import LockoutAlertWindow
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.tokens import PasswordResetToken
from portal.audit.erasure import AuditErasurePermit
from portal.audit.models import AuditEvent
from portal.console.bulk import BulkItem
from portal.console.bulk import BulkOperation
from portal.console.user_import import ImportRow
from portal.console.user_import import UserImport
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Screenshot
from portal.jobs.queue import BackgroundJob
from portal.jobs.runs import JobRun
from portal.mail_queue import QueuedMail
from portal.newsletter.models import Subscriber
from portal.reviews.models import AccessReview
from portal.reviews.models import AccessReviewItem
from portal.second_factor.models import EmailProofCode
from portal.second_factor.models import RecoveryCode
from portal.second_factor.models import SecondFactor
from portal.second_factor.models import SecondFactorReset
from portal.second_factor.passkeys import PasskeyChallenge
from portal.shown_once import ShownOnce

__all__ = [
    "AccessReview",
    "AccessReviewItem",
    "AuditErasurePermit",
    "AuditEvent",
    "BackgroundJob",
    "BulkItem",
    "BulkOperation",
    "EmailProofCode",
    "HelpdeskRequest",
    "ImportRow",
    "JobRun",
    "LockoutAlert",
    "LockoutAlertWindow",
    "Organisation",
    "PasskeyChallenge",
    "PasswordResetToken",
    "Profile",
    "QueuedMail",
    "RecoveryCode",
    "RequestEvent",
    "Screenshot",
    "SecondFactor",
    "SecondFactorReset",
    "ShownOnce",
    "Subscriber",
    "User",
    "UserImport",
]
