"""The requester's status page (docs/rules.md §5 "the loop closes"): no account needed.

* ``GET /helpdesk/status/<token>``: the link in the acknowledgement and in every reply
  (:mod:`portal.helpdesk.status_link`).  A good token moves into the session (as its digest,
  with the request's id) and the browser is sent (303) to the token-less ``/helpdesk/status``,
  as the password reset link does: the token is in no later URL, Referer or access log (the log
  redaction covers ``/helpdesk/status/<token>``).  A bad or expired one gets a page that says so.
* ``GET /helpdesk/status``: that request only — its reference, status, what the requester sent,
  the Helpdesk's replies and what the requester added; never internal notes, staff names or
  other staff-only events.
* ``POST /helpdesk/status``: add information (a ``requester_added`` event).  It moves
  "Waiting on requester" back to "In progress", and reopens a request resolved within
  ``PORTAL_HELPDESK_REOPEN_DAYS``; later, the page asks for a new request instead.

Rate-limited per client address (``PORTAL_HELPDESK_STATUS_RATE_LIMIT``; the POST also spends
the public forms' budget), CSRF-protected (Flask-WTF, app-wide), and ``noindex`` (a meta tag
and an ``X-Robots-Tag`` header).  Nothing here changes an account.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import session
from flask import url_for
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Length

from portal import clock
from portal.audit import kinds
from portal.audit.record import record
from portal.db import write_transaction
from portal.extensions import db
from portal.extensions import limiter
from portal.helpdesk import actions
from portal.helpdesk import status_link
from portal.helpdesk.models import CONSOLE_LABELS
from portal.helpdesk.models import ENVIRONMENT_LABELS
from portal.helpdesk.models import KIND_LABELS
from portal.helpdesk.models import ROLE_LABELS
from portal.helpdesk.models import STATUS_LABELS
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Status
from portal.helpdesk.timeline import add_event
from portal.text_forms import TextForm

bp = Blueprint("helpdesk_status", __name__, url_prefix="/helpdesk/status")

#: The session keeps ``[request id, sha256 of the token]``: never the token itself.
SESSION_KEY = "helpdesk_status"
INFO_MAX = 5000
#: What the requester sees of the timeline: what was sent to them and what they added.
PUBLIC_KINDS = (EventKind.REPLY.value, EventKind.GUIDE_REPLY.value, EventKind.REQUESTER_ADDED.value)
REQUESTER = "the requester"
LABELS = {
    "kind": KIND_LABELS,
    "status": STATUS_LABELS,
    "role": ROLE_LABELS,
    "console": CONSOLE_LABELS,
    "environment": ENVIRONMENT_LABELS,
}


class InformationForm(TextForm):
    information = TextAreaField(
        "Add information",
        validators=[
            DataRequired("Write what you want to add"),
            Length(max=INFO_MAX, message=f"At most {INFO_MAX} characters"),
        ],
    )


def _status_rate_limit() -> str:
    return str(current_app.config["PORTAL_HELPDESK_STATUS_RATE_LIMIT"])


status_limit = limiter.shared_limit(_status_rate_limit, scope="helpdesk-status")


def _forms_rate_limit() -> str:
    return str(current_app.config["PORTAL_HELPDESK_RATE_LIMIT"])


#: The public forms' budget (the same scope as ``portal.helpdesk.public``'s): adding
#: information is one more thing sent to the Helpdesk.
forms_limit = limiter.shared_limit(_forms_rate_limit, scope="helpdesk-forms", methods=["POST"])


@bp.after_request
def _noindex(response: Response) -> Response:
    """Never indexed, never cached.  (``Referrer-Policy: no-referrer`` only where the URL holds
    the token: the page's own form needs a same-origin Referer for Flask-WTF over HTTPS.)"""
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(template: str, status: int = 200, **context: object) -> Response:
    html = render_template(template, noindex=True, **context)
    return Response(html, status=status, mimetype="text/html")


def _refused(refusal: status_link.Refusal) -> Response:
    session.pop(SESSION_KEY, None)
    status = 410 if refusal == status_link.Refusal.EXPIRED else 404
    return _page(
        "helpdesk/status_invalid.html",
        status=status,
        expired=refusal == status_link.Refusal.EXPIRED,
        days=status_link.link_days(),
    )


@bp.get("/<token>")
@status_limit
def open_link(token: str) -> Response:
    """The emailed link: keep its digest in the session and leave the URL (303)."""
    checked = status_link.check(token, clock.now())
    db.session.rollback()
    if checked.request is None:
        response = _refused(checked.refusal or status_link.Refusal.UNKNOWN)
    else:
        session[SESSION_KEY] = [checked.request.id, status_link.token_digest(token)]
        response = redirect(url_for("helpdesk_status.page"), code=303)
    response.headers["Referrer-Policy"] = "no-referrer"  # this URL holds the token
    return response


def _from_session(now: datetime) -> HelpdeskRequest | status_link.Refusal:
    kept = session.get(SESSION_KEY)
    if (
        not isinstance(kept, list)
        or len(kept) != 2
        or not isinstance(kept[0], int)
        or not isinstance(kept[1], str)
    ):
        return status_link.Refusal.UNKNOWN
    checked = status_link.check_digest(kept[0], kept[1], now)
    if checked.request is None:
        return checked.refusal or status_link.Refusal.UNKNOWN
    return checked.request


def public_events(request_id: int) -> list[RequestEvent]:
    """The events the requester may see, oldest first (no notes, no staff-only events)."""
    return list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id, RequestEvent.kind.in_(PUBLIC_KINDS))
            .order_by(RequestEvent.id)
        )
    )


def _show(
    req: HelpdeskRequest, form: InformationForm, now: datetime, status: int = 200
) -> Response:
    response = _page(
        "helpdesk/status.html",
        status=status,
        req=req,
        labels=LABELS,
        events=public_events(req.id),
        form=form,
        can_add=status_link.can_reopen(req, now),
        reopen_days=status_link.reopen_days(),
        public_kinds=EventKind,
    )
    db.session.rollback()
    return response


@bp.get("")
@status_limit
def page() -> Response:
    now = clock.now()
    found = _from_session(now)
    if isinstance(found, status_link.Refusal):
        db.session.rollback()
        return _refused(found)
    return _show(found, InformationForm(formdata=None), now)


class Closed(Exception):
    """Resolved too long ago to reopen: a new request is needed."""


def add_information(pk: int, text: str, *, now: datetime) -> None:
    """A ``requester_added`` event; "Waiting on requester" → "In progress"; a request resolved
    within PORTAL_HELPDESK_REOPEN_DAYS is reopened ("In progress"), a later one refused."""
    text = text.strip()
    if not text or len(text) > INFO_MAX:
        raise ValueError(f"1 to {INFO_MAX} characters")
    req = actions.lock_request(pk)
    if not status_link.can_reopen(req, now):
        raise Closed(req.reference)
    add_event(req, EventKind.REQUESTER_ADDED, None, now, actor_name=REQUESTER, details=text)
    if req.status in (Status.WAITING.value, Status.RESOLVED.value):
        add_event(
            req,
            EventKind.STATUS_CHANGED,
            None,
            now,
            actor_name=REQUESTER,
            from_status=req.status,
            to_status=Status.IN_PROGRESS.value,
        )
        record(
            kinds.HELPDESK_STATUS_CHANGED,
            actor=None,
            subject=None,
            now=now,
            reason=Status.IN_PROGRESS.value,
            details=f"{req.reference}: {req.status} -> {Status.IN_PROGRESS.value}"
            " (the requester added information)",
            actor_label=REQUESTER,
        )
        req.status = Status.IN_PROGRESS.value
        status_link.mark_reopened(req)
    req.updated_at = now


@bp.post("")
@status_limit
@forms_limit
def add() -> Response:
    now = clock.now()
    found = _from_session(now)
    if isinstance(found, status_link.Refusal):
        db.session.rollback()
        return _refused(found)
    form = InformationForm()
    if not form.validate_on_submit():
        return _show(found, form, now, status=422)
    pk = found.id
    db.session.rollback()
    try:
        with write_transaction(db.session):
            add_information(pk, form.information.data or "", now=now)
    except Closed:
        req = db.session.get(HelpdeskRequest, pk)
        assert req is not None
        return _show(req, InformationForm(formdata=None), now, status=409)
    flash("Thank you: your information has been added and the Helpdesk will read it.", "success")
    return redirect(url_for("helpdesk_status.page"), code=303)


@bp.errorhandler(429)
def rate_limited(_error: HTTPException) -> Response:
    return _page("helpdesk/rate_limited.html", status=429)
