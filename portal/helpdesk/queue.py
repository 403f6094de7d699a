"""The Helpdesk staff queue (docs/rules.md §5): Helpdesk and Portal team users only.

Views are thin: parse → ``actions`` inside ``write_transaction`` → render.  Changes are POSTs
that *set* a state; HTMX gets a fragment, a browser without JavaScript a redirect back to the
request's page (post/redirect/get).  There is no route here that changes an account.
"""

from __future__ import annotations

import re
from typing import cast

from flask import Blueprint
from flask import abort
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal import clock
from portal import htmx
from portal.access import staff_required
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import actions
from portal.helpdesk import queue_queries
from portal.helpdesk import send_user_id
from portal.helpdesk.models import CONSOLE_LABELS
from portal.helpdesk.models import ENVIRONMENT_LABELS
from portal.helpdesk.models import KIND_LABELS
from portal.helpdesk.models import ROLE_LABELS
from portal.helpdesk.models import STATUS_LABELS
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import Screenshot
from portal.helpdesk.models import Status
from portal.helpdesk.queue_forms import GuideReplyForm
from portal.helpdesk.queue_forms import NoteForm
from portal.helpdesk.queue_forms import ReferForm
from portal.helpdesk.queue_forms import StatusForm
from portal.mail_queue import QueuedMail
from portal.mail_queue import deliver_soon

bp = Blueprint("helpdesk_queue", __name__, url_prefix="/helpdesk/requests")

REQUEST_CHANGED = "request-changed"
LABELS = {
    "kind": KIND_LABELS,
    "status": STATUS_LABELS,
    "role": ROLE_LABELS,
    "console": CONSOLE_LABELS,
    "environment": ENVIRONMENT_LABELS,
}
SEND_MESSAGES = {
    send_user_id.SendOutcome.SENT: ("success", "User ID {ids} emailed to the stored address."),
    send_user_id.SendOutcome.NOT_MATCHED: (
        "error",
        "Nothing sent: no Administrator matches this organisation and stored email.",
    ),
    send_user_id.SendOutcome.CAPPED: (
        "error",
        "Nothing sent: {ids} already had the daily number of User ID emails.",
    ),
    send_user_id.SendOutcome.WRONG_KIND: (
        "error",
        "Send User ID is only for Resend Admin User ID requests.",
    ),
}


def _request_or_404(pk: int) -> HelpdeskRequest:
    req = queue_queries.get_request(pk)
    if req is None:
        abort(404)
    return req


def _actor() -> User:
    """The signed-in staff user (the object itself, not Flask-Login's proxy)."""
    return cast(User, current_user._get_current_object())


def _back(pk: int) -> Response:
    return redirect(url_for("helpdesk_queue.request_page", pk=pk))


@bp.get("")
@staff_required
def index() -> Response:
    filters = queue_queries.QueueFilters.from_args(request.args)
    page = queue_queries.queue_page(filters)
    context = {"page": page, "filters": filters, "labels": LABELS}
    return htmx.page_or_fragment(
        "queue-results", "helpdesk/queue/_results.html", "helpdesk/queue/index.html", **context
    )


@bp.get("/<int:pk>")
@staff_required
def request_page(pk: int) -> str:
    req = _request_or_404(pk)
    return _render_page(req)


def _render_page(
    req: HelpdeskRequest,
    *,
    note_form: NoteForm | None = None,
    guide_form: GuideReplyForm | None = None,
) -> str:
    today = clock.today()
    account = queue_queries.mentioned_account(req)
    screenshot = None
    if req.has_screenshot:
        screenshot = db.session.execute(
            select(Screenshot.filename, Screenshot.width, Screenshot.height).where(
                Screenshot.request_id == req.id
            )
        ).first()
    return render_template(
        "helpdesk/queue/show.html",
        req=req,
        labels=LABELS,
        events=queue_queries.timeline(req.id),
        status_form=StatusForm(status=req.status),
        note_form=note_form or NoteForm(formdata=None),
        guide_form=guide_form or GuideReplyForm(formdata=None),
        refer_form=ReferForm(formdata=None),
        account=account,
        expired=queue_queries.mentions_expired_user_id(account, today=today),
        screenshot=screenshot,
        is_resend=req.kind == RequestKind.RESEND_USER_ID.value,
    )


@bp.get("/<int:pk>/timeline")
@staff_required
def timeline(pk: int) -> str:
    """The timeline alone: HTMX refreshes it when the request changes."""
    req = _request_or_404(pk)
    return render_template(
        "helpdesk/queue/_timeline.html",
        req=req,
        labels=LABELS,
        events=queue_queries.timeline(req.id),
    )


@bp.get("/<int:pk>/screenshot")
@staff_required
def screenshot(pk: int) -> Response:
    """The stored, re-encoded image: never rendered by the browser as anything else.

    A download (``attachment``) by default; ``?view=inline`` for the ``<img>`` on the
    request's page (an image in a sandboxed, nosniff response either way).
    """
    shot = db.session.scalar(select(Screenshot).where(Screenshot.request_id == pk))
    if shot is None:
        abort(404)
    disposition = "inline" if request.args.get("view") == "inline" else "attachment"
    response = make_response(shot.data)
    response.headers["Content-Type"] = shot.content_type
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", shot.filename) or "screenshot"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{safe_name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:pk>/status")
@staff_required
def request_set_status(pk: int) -> Response:
    """Set the status to the value posted (never a flip); 422 with the fragment on bad input."""
    req = _request_or_404(pk)
    form = StatusForm()
    error = None
    changed = False
    if form.validate_on_submit():
        mails: list[QueuedMail] = []
        with write_transaction(db.session):
            changed = actions.set_status(
                pk, Status(form.status.data), actor=_actor(), now=clock.now(), mails=mails
            )
        deliver_soon(mails)  # resolving tells the requester
        req = _request_or_404(pk)
    else:
        error = "Choose one of: " + ", ".join(STATUS_LABELS.values())
    if not htmx.is_htmx():
        if error:
            flash(error, "error")
        else:
            label = STATUS_LABELS[Status(req.status)]
            flash(f"Status set to {label}." if changed else "Nothing changed.", "success")
        return _back(pk)
    response = make_response(
        render_template(
            "helpdesk/queue/_status.html",
            req=req,
            labels=LABELS,
            status_form=StatusForm(status=req.status),
            error=error,
            saved=changed,
        ),
        422 if error else 200,
    )
    if changed:
        htmx.trigger(response, REQUEST_CHANGED)
    return response


@bp.post("/<int:pk>/notes")
@staff_required
def request_add_note(pk: int) -> Response | tuple[str, int]:
    req = _request_or_404(pk)
    form = NoteForm()
    if not form.validate_on_submit():
        return _render_page(req, note_form=form), 422
    with write_transaction(db.session):
        actions.add_note(pk, form.note.data or "", actor=_actor(), now=clock.now())
    flash("Note added.", "success")
    return _back(pk)


@bp.post("/<int:pk>/refer")
@staff_required
def request_refer(pk: int) -> Response:
    _request_or_404(pk)
    form = ReferForm()
    if not form.validate_on_submit():
        flash("; ".join(e for errors in form.errors.values() for e in errors), "error")
        return _back(pk)
    with write_transaction(db.session):
        changed = actions.refer(pk, actor=_actor(), now=clock.now(), note=form.note.data or "")
    flash(
        "Referred to the Portal team." if changed else "Already referred to the Portal team.",
        "success",
    )
    return _back(pk)


@bp.post("/<int:pk>/guide-reply")
@staff_required
def request_guide_reply(pk: int) -> Response | tuple[str, int]:
    req = _request_or_404(pk)
    form = GuideReplyForm()
    if not form.validate_on_submit():
        return _render_page(req, guide_form=form), 422
    with write_transaction(db.session):
        row = actions.reply_with_guide(pk, form.section.data or "", actor=_actor(), now=clock.now())
    deliver_soon([row])
    flash(f"Guide link emailed to {req.email}.", "success")
    return _back(pk)


@bp.post("/<int:pk>/send-user-id")
@staff_required
def request_send_user_id(pk: int) -> Response:
    _request_or_404(pk)
    with write_transaction(db.session):
        result = send_user_id.send_user_id(pk, actor=_actor(), now=clock.now())
    deliver_soon(result.mails)
    category, text = SEND_MESSAGES[result.outcome]
    flash(text.format(ids=", ".join(result.user_ids)), category)
    return _back(pk)
