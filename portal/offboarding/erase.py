"""``portal org delete``: erase a firm, its users, their audit events and its Helpdesk requests
(as matched by ``scope``), set-based, in the caller's one write transaction."""

from __future__ import annotations

import json

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.sql.expression import Executable

from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.accounts.rules import EventKind
from portal.accounts.tokens import PasswordResetToken
from portal.audit import erasure
from portal.audit.models import AuditEvent
from portal.audit.record import record
from portal.db import AnySession
from portal.db import rowcount
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Screenshot
from portal.offboarding import scope
from portal.reviews.models import AccessReview
from portal.reviews.models import AccessReviewItem


def erase(
    session: AnySession, org: Organisation, *, now: object, export_sha256: str
) -> dict[str, int]:
    """Delete everything the export held; record it in the operator-level audit (no firm)."""
    users = scope.user_ids(org)
    requests = select(HelpdeskRequest.id).where(scope.request_condition(org)).scalar_subquery()
    counts: dict[str, int] = {}

    def run(name: str, statement: Executable) -> None:
        counts[name] = rowcount(session.execute(statement))

    run("screenshots", delete(Screenshot).where(Screenshot.request_id.in_(requests)))
    run("request_events", delete(RequestEvent).where(RequestEvent.request_id.in_(requests)))
    run("helpdesk_requests", delete(HelpdeskRequest).where(HelpdeskRequest.id.in_(requests)))
    # Other requests' timelines keep the line, without the link to an erased user.
    run(
        "timeline_actors_unlinked",
        update(RequestEvent).where(RequestEvent.actor_id.in_(users)).values(actor_id=None),
    )
    run("reset_tokens", delete(PasswordResetToken).where(PasswordResetToken.user_id.in_(users)))
    run(
        "helpdesk_senders_unlinked",
        update(HelpdeskRequest)
        .where(HelpdeskRequest.submitted_by_id.in_(users))
        .values(submitted_by_id=None),
    )
    with erasure.permit(session, erasure.ORG_DELETE):
        run("audit_events", delete(AuditEvent).where(scope.audit_condition(org)))
    reviews = select(AccessReview.id).where(AccessReview.organisation_id == org.id)
    run(
        "access_review_items",
        delete(AccessReviewItem).where(AccessReviewItem.review_id.in_(reviews.scalar_subquery())),
    )
    run("access_reviews", delete(AccessReview).where(AccessReview.organisation_id == org.id))
    run("users", delete(User).where(User.organisation_id == org.id))
    name, org_id = org.name, org.id
    run("organisations", delete(Organisation).where(Organisation.id == org_id))
    record(
        EventKind.ORGANISATION_ERASED,
        actor=None,
        subject=None,
        now=now,  # type: ignore[arg-type]
        details=json.dumps(
            {"organisation": name, "id": org_id, "export_sha256": export_sha256, **counts},
            sort_keys=True,
        ),
    )
    return counts
