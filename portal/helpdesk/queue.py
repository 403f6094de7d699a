"""The Helpdesk staff queue (docs/rules.md §5): Helpdesk and Portal team users only.

Views are thin: parse → ``actions`` inside ``write_transaction`` → render.  Changes are POSTs
that *set* a state; HTMX gets a fragment, a browser without JavaScript a redirect back to the
request's page (post/redirect/get).  There is no route here that changes an account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
from portal.helpdesk import ageing
from portal.helpdesk import business_hours
from portal.helpdesk import queue_actions
from portal.helpdesk import queue_queries
from portal.helpdesk import send_user_id
from portal.helpdesk.models import CONSOLE_LABELS
from portal.helpdesk.models import ENVIRONMENT_LABELS
from portal.helpdesk.models import EVENT_LABELS
from portal.helpdesk.models import KIND_LABELS
from portal.helpdesk.models import ROLE_LABELS
from portal.helpdesk.models import STATUS_LABELS
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import Screenshot
from portal.helpdesk.models import Status
from portal.helpdesk.queue_forms import AssignForm
from portal.helpdesk.queue_forms import BulkStatusForm
from portal.helpdesk.queue_forms import GuideReplyForm
from portal.helpdesk.queue_forms import NoteForm
from portal.helpdesk.queue_forms import ReferForm
from portal.helpdesk.queue_forms import StatusForm
from portal.mail_queue import QueuedMail
from portal.mail_queue import deliver_soon

bp = Blueprint("helpdesk_queue", __name__, url_prefix="/helpdesk/requests")

REQUEST_CHANGED = "request-changed"
LABELS = {
    "event": EVENT_LABELS,
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
    hours = business_hours.from_app()
    now_clock = hours.clock(clock.now())
    me = _actor().id
    page = queue_queries.queue_page(filters, me=me, now_clock=now_clock)
    assignees = queue_queries.staff_names({r.assigned_to_id for r in page.rows if r.assigned_to_id})
    rows = [
        QueueRow(
            req=r,
            age=ageing.age_of(r, now_clock),
            assignee=assignees.get(r.assigned_to_id or 0),
            code=queue_queries.quoted_code(r.error_message),
        )
        for r in page.rows
    ]
    context = {
        "page": page,
        "rows": rows,
        "filters": filters,
        "labels": LABELS,
        "views": queue_queries.VIEWS,
        "sorts": queue_queries.SORTS,
        "hours": hours,
        "me": me,
        "bulk_form": BulkStatusForm(formdata=None),
        "describe_age": business_hours.describe,
    }
    return htmx.page_or_fragment(
        "queue-results", "helpdesk/queue/_results.html", "helpdesk/queue/index.html", **context
    )


@dataclass(frozen=True)
class QueueRow:
    req: HelpdeskRequest
    age: int  # business seconds
    assignee: str | None
    code: str | None


def _back_to_queue() -> Response:
    """To the queue list the form was posted from (its query string), else the plain queue."""
    query = request.form.get("back", "")
    if not _SAFE_QUERY.match(query):
        query = ""
    return redirect(url_for("helpdesk_queue.index") + (f"?{query}" if query else ""))


_SAFE_QUERY = re.compile(r"^[A-Za-z0-9_=&%+.\-]{0,500}$")


@bp.post("/bulk-status")
@staff_required
def bulk_status() -> Response:
    """Set one status on the ticked requests (works without JavaScript: a plain form POST)."""
    form = BulkStatusForm()
    ids = [int(v) for v in request.form.getlist("ids") if v.isdigit() and len(v) <= 12]
    if not form.validate_on_submit():
        flash("Choose one of: " + ", ".join(STATUS_LABELS.values()), "error")
        return _back_to_queue()
    if not ids:
        flash("Tick the requests to change first.", "error")
        return _back_to_queue()
    status = Status(form.status.data)
    mails: list[QueuedMail] = []
    with write_transaction(db.session):
        changed, unchanged = queue_actions.bulk_set_status(
            ids, status, actor=_actor(), now=clock.now(), mails=mails
        )
    deliver_soon(mails)  # resolving tells each requester, as a single resolve does
    label = STATUS_LABELS[status]
    text = f"{changed} request{'' if changed == 1 else 's'} set to {label}."
    if unchanged:
        text += f" {unchanged} already had that status."
    flash(text, "success")
    return _back_to_queue()


@bp.post("/<int:pk>/assign")
@staff_required
def request_assign(pk: int) -> Response:
    """Take the request (``me``), give it to a colleague (their id) or unassign it (empty)."""
    _request_or_404(pk)
    form = AssignForm()
    actor = _actor()
    raw = (form.assignee.data or "").strip() if form.validate_on_submit() else None
    if raw is not None and request.form.get("take") == "me":
        # "Take it" is a button in the same form as the "Assigned to" select: it wins over
        # whatever the select holds (a field of its own, so the two values never collide).
        raw = "me"
    if raw is None or not (raw in ("", "me") or raw.isdigit()):
        flash("Choose who to give the request to.", "error")
        return _back(pk) if not request.form.get("back_to_queue") else _back_to_queue()
    assignee = actor.id if raw == "me" else (int(raw) if raw else None)
    try:
        with write_transaction(db.session):
            changed = queue_actions.assign(pk, assignee, actor=actor, now=clock.now())
    except queue_actions.NotStaff:
        flash("A request can be given to Helpdesk or Portal team staff only.", "error")
        return _back(pk)
    if not changed:
        flash("Nothing changed.", "success")
    elif assignee is None:
        flash("The request is now unassigned.", "success")
    elif assignee == actor.id:
        flash("You have taken this request.", "success")
    else:
        flash("Request given to your colleague.", "success")
    return _back_to_queue() if request.form.get("back_to_queue") else _back(pk)


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
    now = clock.now()
    account = queue_queries.mentioned_account(req)
    hours = business_hours.from_app()
    age = ageing.age_of(req, hours.clock(now))
    code = queue_queries.quoted_code(req.error_message)
    if guide_form is None:
        guide_form = GuideReplyForm(formdata=None, section=code or actions.GUIDES_INDEX)
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
        guide_form=guide_form,
        refer_form=ReferForm(formdata=None),
        account=account,
        expired=queue_queries.mentions_expired_user_id(account, today=today),
        screenshot=screenshot,
        is_resend=req.kind == RequestKind.RESEND_USER_ID.value,
        age=age,
        hours=hours,
        describe_age=business_hours.describe,
        quoted_code=code,
        suggested=queue_queries.suggested_entries(req.suggestions_shown),
        assignee=queue_queries.staff_names({req.assigned_to_id}).get(req.assigned_to_id)
        if req.assigned_to_id
        else None,
        colleagues=queue_queries.colleagues(now, today),
        me=_actor().id,
        assign_form=AssignForm(formdata=None),
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
