"""Two-person second-factor resets in the Portal team's area (docs/rules.md R10;
docs/security.md, "The two-person rule").  Routes on the ``operator`` blueprint:

* ``POST /operator/users/<pk>/second-factor-reset``: a member asks, naming a helpdesk request
  (field ``helpdesk_reference``, ``HD-…``, which must exist);
* ``GET /operator/second-factor-resets``: what waits for a second member, and what was decided;
* ``POST /operator/second-factor-resets/<id>/approve`` and ``…/cancel``.

``resets`` decides and audits; a refusal shows the page again with 422 and changes nothing.
"""

from __future__ import annotations

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal import mail_queue
from portal.access import portal_team_required
from portal.db import write_transaction
from portal.extensions import db
from portal.operator import actions
from portal.operator import bp
from portal.operator.user_page import render_user
from portal.operator.user_page import user_or_404
from portal.second_factor import resets


def _list_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    now = clock.now()
    page = render_template(
        "second_factor/operator_resets.html",
        open_rows=resets.open_rows(now),
        recent=resets.recent_rows(now),
        now=now,
        me=current_user,
        error=error,
    )
    return page, status


@bp.get("/second-factor-resets")
@portal_team_required
def factor_resets() -> tuple[str, int]:
    return _list_page()


@bp.post("/users/<int:pk>/second-factor-reset")
@portal_team_required
def factor_reset_request(pk: int) -> Response | tuple[str, int]:
    user = user_or_404(pk)
    text = (request.form.get("helpdesk_reference") or "").strip()
    try:
        linked = actions.linked_request(text)
    except actions.BadReference as exc:
        return render_user(user, linked=None, error=f"{exc}. Nothing was changed.", status=422)
    if linked is None:
        error = (
            "Give the reference of the helpdesk request this reset is for (like HD-000123). "
            "Nothing was changed."
        )
        return render_user(user, linked=None, error=error, status=422)
    with write_transaction(db.session):
        result = resets.request_reset(
            current_user._get_current_object(),
            user,
            linked,
            now=clock.now(),
            today=clock.today(),
        )
    user = user_or_404(pk)
    if result.refused:
        return render_user(user, linked=linked, error=result.message(user.user_id), status=422)
    flash(
        f"Reset of the second factor of {user.user_id} asked for ({linked.reference}). "
        "Another member of the Portal team must approve it within 24 hours: it is listed "
        "under “Second-factor resets”.",
        "success",
    )
    return redirect(url_for("operator.user_page", pk=user.id, ref=linked.reference))


def _decide(request_id: int, approving: bool) -> Response | tuple[str, int]:
    actor = current_user._get_current_object()
    decide = resets.approve if approving else resets.cancel
    with write_transaction(db.session):
        result = decide(actor, request_id, now=clock.now(), today=clock.today())
    if result is None:
        abort(404)
    mail_queue.deliver_soon(result.mails)
    assert result.request is not None or result.refused
    user = user_or_404(result.request.user_id) if result.request is not None else None
    user_id = user.user_id if user is not None else ""
    if result.refused:
        return _list_page(result.message(user_id), 422)
    if approving:
        flash(
            f"Approved: the second factor of {user_id} was reset, every session of {user_id} "
            "ended, and they have been told by email.",
            "success",
        )
    else:
        flash(f"The reset request for {user_id} was cancelled: nothing was changed.", "success")
    return redirect(url_for("operator.factor_resets"))


@bp.post("/second-factor-resets/<int:pk>/approve")
@portal_team_required
def factor_reset_approve(pk: int) -> Response | tuple[str, int]:
    return _decide(pk, approving=True)


@bp.post("/second-factor-resets/<int:pk>/cancel")
@portal_team_required
def factor_reset_cancel(pk: int) -> Response | tuple[str, int]:
    return _decide(pk, approving=False)
