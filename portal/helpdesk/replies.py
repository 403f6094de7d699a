"""Staff replies to the requester (docs/rules.md §5, "the loop closes").

A reply is free text written on the request's page; a Troubleshooting Guide entry can be the
starting point (its message, cause, what to do and link fill the box: a GET that works without
JavaScript, or an HTMX fragment).  It is emailed through the durable mail queue to the address
the requester typed, with the request's status link, and kept on the timeline (a ``reply``
event with the text), where the status page shows it.  It may set the status in the same step
("Waiting on requester", or "Resolved": the reply then says so itself).

The typed address is unverified: the page says when it differs from the registered address of
the account the request names, and a reply carries only what staff wrote — there is no
placeholder for a User ID or an account's state (Send User ID, to the registered address, stays
the only way to send a User ID).  Nothing here changes an account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast

from flask import Blueprint
from flask import Flask
from flask import abort
from flask import current_app
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import SelectField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Length

from portal import clock
from portal import emails
from portal import links
from portal import messages
from portal.access import staff_required
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import actions
from portal.helpdesk import status_link
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Status
from portal.helpdesk.timeline import add_event
from portal.keys import normalise_key
from portal.mail_queue import QueuedMail
from portal.mail_queue import deliver_soon
from portal.mail_queue import enqueue
from portal.text_forms import TextForm

bp = Blueprint("helpdesk_replies", __name__, url_prefix="/helpdesk/requests")

REPLY_MAX = 5000
REPLY_PURPOSE = "helpdesk.reply"
#: What a reply may do to the status in the same step ("" leaves it alone).
THEN_CHOICES = {
    "": "Left as it is (In progress if it was New)",
    Status.WAITING.value: "Waiting on requester (pauses the clock)",
    Status.RESOLVED.value: "Resolved (the reply says so)",
}
#: The request's page (``portal.helpdesk.queue``), where the reply form lives.
REQUEST_PAGE = "helpdesk_queue.request_page"
#: ``g`` key: a refused reply form, shown again on the request's page.
REFUSED_FORM = "helpdesk_reply_form"


class ReplyForm(TextForm):
    text = TextAreaField(
        "Reply to the requester",
        validators=[
            DataRequired("Write the reply first"),
            Length(max=REPLY_MAX, message=f"A reply has at most {REPLY_MAX} characters"),
        ],
    )
    then = SelectField(
        "After sending, the request is", choices=THEN_CHOICES, validate_choice=True, default=""
    )


# --- starting points from the guide -----------------------------------------------------------


def starting_points() -> list[messages.Message]:
    return list(messages.MESSAGES)


def draft_from_guide(code: str) -> str:
    """The entry's message, cause and what to do, and its link: a starting point to edit."""
    message = messages.BY_CODE.get(code)
    if message is None:
        return ""
    link = links.absolute_url(f"/guides/troubleshooting#{message.anchor}")
    return (
        f"The message “{message.text}” (code {message.code}) means: {message.cause}\n\n"
        f"What to do: {message.what_to_do}\n\n"
        f"The Troubleshooting Guide explains it: {link}"
    )


# --- the address ----------------------------------------------------------------------------


def registered_address_differs(req: HelpdeskRequest) -> bool | None:
    """Does the typed address differ from the registered address of the account the request
    names (by User ID)?  None when the request names no account."""
    if not req.user_id_key:
        return None
    registered = db.session.scalar(select(User.email).where(User.user_id_key == req.user_id_key))
    if registered is None:
        return None
    return normalise_key(registered) != req.email_key


@dataclass(frozen=True)
class ReplyPanel:
    form: ReplyForm
    start: str
    points: list[messages.Message]
    differs: bool | None


def reply_panel(req: HelpdeskRequest) -> ReplyPanel:
    """What the reply partial shows (a Jinja global: the request page includes the partial by
    one line and needs nothing else from its view)."""
    refused = g.get(REFUSED_FORM)
    start = request.args.get("reply_start", "")
    if refused is not None:
        form = refused
    else:
        form = ReplyForm(formdata=None, text=draft_from_guide(start), then="")
    return ReplyPanel(
        form=form,
        start=start if start in messages.BY_CODE else "",
        points=starting_points(),
        differs=registered_address_differs(req),
    )


def init_app(app: Flask) -> None:
    app.jinja_env.globals["reply_panel"] = reply_panel


# --- the action -----------------------------------------------------------------------------


def reply(
    pk: int, text: str, *, then: Status | None, actor: User, now: datetime
) -> list[QueuedMail]:
    """Email ``text`` to the requester (with the status link) and keep it on the timeline;
    ``then`` sets the status in the same step (a new request becomes "In progress")."""
    text = text.strip()
    if not text or len(text) > REPLY_MAX:
        raise ValueError(f"a reply has 1 to {REPLY_MAX} characters")
    req = actions.lock_request(pk)
    target = then or (Status.IN_PROGRESS if req.status == Status.NEW.value else None)
    if target is not None:
        actions.set_status(pk, target, actor=actor, now=now, tell=False)
    body = emails.render(
        "helpdesk_reply.txt",
        reference=req.reference,
        text=text,
        status_link=status_link.link(req),
        waiting=req.status == Status.WAITING.value,
        resolved=req.status == Status.RESOLVED.value,
        days=status_link.reopen_days(),
    )
    row = enqueue(
        req.email,
        f"Your Helpdesk request {req.reference}: a reply",
        body,
        purpose=REPLY_PURPOSE,
        ref=req.reference,
    )
    req.updated_at = now
    add_event(req, EventKind.REPLY, actor, now, details=text)
    return [row]


# --- routes ---------------------------------------------------------------------------------


def _actor() -> User:
    return cast(User, current_user._get_current_object())


def _exists(pk: int) -> None:
    if db.session.get(HelpdeskRequest, pk) is None:
        abort(404)


@bp.get("/<int:pk>/reply-draft")
@staff_required
def draft(pk: int) -> str:
    """HTMX: the reply box filled from a guide entry (without JavaScript the same GET form goes
    to the request's page with ``reply_start``)."""
    _exists(pk)
    form = ReplyForm(formdata=None, text=draft_from_guide(request.args.get("reply_start", "")))
    return render_template("helpdesk/queue/_reply_text.html", form=form)


@bp.post("/<int:pk>/reply")
@staff_required
def send(pk: int) -> Any:
    _exists(pk)
    form = ReplyForm()
    if not form.validate_on_submit():
        g.setdefault(REFUSED_FORM, form)
        # The request's page, drawn by its own view (route modules never import each other).
        return current_app.view_functions[REQUEST_PAGE](pk=pk), 422
    then = Status(form.then.data) if form.then.data else None
    with write_transaction(db.session):
        mails = reply(pk, form.text.data or "", then=then, actor=_actor(), now=clock.now())
    deliver_soon(mails)
    req = db.session.get(HelpdeskRequest, pk)
    assert req is not None
    flash(f"Reply emailed to {req.email} and shown on the request's status page.", "success")
    return redirect(url_for(REQUEST_PAGE, pk=pk))


@bp.post("/<int:pk>/resolve")
@staff_required
def resolve(pk: int) -> Response:
    """Resolve and tell the requester (email and status page) in one step."""
    _exists(pk)
    mails: list[QueuedMail] = []
    with write_transaction(db.session):
        changed = actions.set_status(
            pk, Status.RESOLVED, actor=_actor(), now=clock.now(), mails=mails
        )
    deliver_soon(mails)
    flash("Resolved: the requester has been told." if changed else "Already resolved.", "success")
    return redirect(url_for(REQUEST_PAGE, pk=pk))


REVOKED_NOTE = "The links sent so far no longer work; the next email carries the new one."


@bp.post("/<int:pk>/status-link")
@staff_required
def revoke_link(pk: int) -> Response:
    """A new salt: every status link sent so far stops working (docs/security.md, "The Helpdesk
    status link"); the staff timeline says so.  Nothing is emailed: the next reply carries it."""
    _exists(pk)
    now = clock.now()
    with write_transaction(db.session):
        req = actions.lock_request(pk)
        status_link.revoke(req)
        req.updated_at = now
        add_event(req, EventKind.STATUS_LINK_REPLACED, _actor(), now, details=REVOKED_NOTE)
    flash("The status link was replaced: links sent so far no longer work.", "success")
    return redirect(url_for(REQUEST_PAGE, pk=pk))
