"""Bulk actions on the users list: ``POST /console/users/bulk`` and the result page of an
operation (docs/rules.md §4 "Housekeeping at scale", §9 for the field names).

Removing access asks R4's question once, with the number of users beside it: in the browser
(``static/bulk.js``), or without JavaScript on a confirmation page that posts the same fields
again with ``confirmed=yes``.  The POST stores the operation and redirects to its page (a
refresh repeats nothing); a large one shows a progress bar while the scheduler works it.
"""

from __future__ import annotations

from flask import abort
from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal import htmx
from portal import messages
from portal.accounts import queries
from portal.console import bp
from portal.console import bulk
from portal.console.decorators import admin_required
from portal.db import write_transaction
from portal.extensions import db

FILTER_FIELDS = ("q", "profile", "state", "reason", "expiring", "dormant")


def _back() -> str:
    filters = queries.UserFilters.from_args(request.form)
    return url_for("console.users", **filters.args(page=1))


@bp.post("/users/bulk")
@admin_required
def users_bulk() -> Response:
    org_id = current_user.organisation_id
    try:
        req = bulk.parse_request(
            request.form.get("action", ""),
            request.form.get("expires_on", ""),
            request.form.get("months", ""),
            today=clock.today(),
        )
    except bulk.BulkError as exc:
        flash(str(exc), "error")
        return redirect(_back(), 303)
    select_all = request.form.get("select_all") == "yes"
    filters = queries.UserFilters.from_args(request.form)
    ids: list[int | str]
    if select_all:
        ids = list(bulk.matching_ids(org_id, filters))
    else:
        ids = bulk.parse_ids(request.form.getlist("user"))
    if not ids:
        flash("Select at least one user (or all that match) first.", "error")
        return redirect(_back(), 303)
    if req.action == bulk.REMOVE_ACCESS and request.form.get("confirmed") != "yes":
        return make_response(
            render_template(
                "console/users/bulk_confirm.html",
                question=messages.REMOVE_ACCESS_QUESTION,
                count=len(ids),
                select_all=select_all,
                ids=[] if select_all else request.form.getlist("user"),
                filters={f: request.form.get(f, "") for f in FILTER_FIELDS},
                back=_back(),
            )
        )
    with write_transaction(db.session):
        op = bulk.create(
            current_user._get_current_object(),
            req,
            ids,
            now=clock.now(),
            background_over=int(current_app.config["PORTAL_BULK_BACKGROUND_OVER"]),
        )
        op_id = op.id
        background = op.background
    if not background:
        try:
            bulk.work(op_id)
        except Exception:
            db.session.rollback()
            bulk.mark_failed(op_id)
            raise
    return redirect(url_for("console.bulk_result", pk=op_id), 303)


def _operation(op_id: int) -> bulk.BulkOperation:
    op = bulk.find(current_user.organisation_id, op_id)
    if op is None:
        abort(404)
    return op


@bp.get("/users/bulk/<int:pk>")
@admin_required
def bulk_result(pk: int) -> Response:
    op = _operation(pk)
    context = {
        "op": op,
        "action_label": bulk.ACTIONS[op.action],
        "counts": bulk.summary_counts(op.id) if op.finished else {},
        "outcomes": bulk.OUTCOMES,
        "items": {k: bulk.items(op.id, k) for k in bulk.OUTCOMES} if op.finished else {},
    }
    if htmx.target() == "bulk-progress":
        response = make_response(render_template("console/users/_bulk_progress.html", **context))
        if op.finished:
            response.headers["HX-Refresh"] = "true"  # the whole page, with the summary
        return htmx.add_vary(response)
    return htmx.add_vary(
        make_response(render_template("console/users/bulk_result.html", **context))
    )
