"""The account actions on a user's operator page: re-enable, extend the expiry date, and both
in one step (routes on the ``operator`` blueprint; the factory imports this module).

Each POST is parsed (form, the optional helpdesk request reference), then ``actions`` runs
inside ``write_transaction``; bad input or a refusal shows the page again with 422 and changes
nothing, success redirects back to the page (post/redirect/get).
"""

from __future__ import annotations

from flask import flash
from flask import redirect
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal.access import portal_team_required
from portal.accounts import rules
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.operator import actions
from portal.operator.forms import EnableForm
from portal.operator.forms import ExpiryForm
from portal.operator.views import FUTURE_DATE
from portal.operator.views import bp
from portal.operator.views import render_user
from portal.operator.views import user_or_404

REFUSALS = {
    rules.Outcome.REFUSED_EXPIRED: (
        "The expiry date of {user} has been reached: extend the expiry date first, "
        "or use “Extend and re-enable”."
    ),
    rules.Outcome.REFUSED_PAST_DATE: f"{FUTURE_DATE}.",
}


def _back(user: User, linked: HelpdeskRequest | None) -> Response:
    ref = linked.reference if linked is not None else None
    return redirect(url_for("operator.user_page", pk=user.id, ref=ref))


def _form_errors(form: EnableForm | ExpiryForm) -> str:
    return " ".join(e for errors in form.errors.values() for e in errors)


def _parse(
    user: User, form: EnableForm | ExpiryForm, *, future_date: bool
) -> tuple[HelpdeskRequest | None, tuple[str, int] | None]:
    """The linked request, or the page again (422) with what is wrong: nothing is changed."""
    linked = None
    error = None
    if form.validate_on_submit():
        checked = future_date and isinstance(form, ExpiryForm)
        if checked and not rules.expiry_allowed(
            form.expires_on.data,  # type: ignore[arg-type]  # a date once validated
            today=clock.today(),
        ):
            error = FUTURE_DATE
        else:
            try:
                linked = actions.linked_request(form.reference.data)
            except actions.BadReference as exc:
                error = f"{exc}. Nothing was changed."
    else:
        error = _form_errors(form) or "The form could not be read. Nothing was changed."
    if error is None:
        return linked, None
    expiry = form if isinstance(form, ExpiryForm) else None
    try:
        linked = actions.linked_request(form.reference.data)
    except actions.BadReference:
        linked = None
    return linked, render_user(user, linked=linked, error=error, expiry=expiry, status=422)


@bp.post("/users/<int:pk>/enable")
@portal_team_required
def user_enable(pk: int) -> Response | tuple[str, int]:
    """R6: tick Enabled (Active back on, reason and failures cleared)."""
    user = user_or_404(pk)
    form = EnableForm()
    linked, refused = _parse(user, form, future_date=False)
    if refused is not None:
        return refused
    with write_transaction(db.session):
        decision = actions.reenable(
            current_user._get_current_object(),
            user,
            request=linked,
            now=clock.now(),
            today=clock.today(),
        )
    refusal = REFUSALS.get(decision.outcome)
    if refusal:
        return render_user(user, linked=linked, error=refusal.format(user=user.user_id), status=422)
    if decision.changed:
        flash(f"Access restored for {user.user_id}: Enabled and Active are ticked.", "success")
    else:
        flash(f"{user.user_id} already has access: nothing changed.", "success")
    return _back(user, linked)


@bp.post("/users/<int:pk>/expiry")
@portal_team_required
def user_extend(pk: int) -> Response | tuple[str, int]:
    """Change the expiry date (access itself is not restored: see ``user_extend_enable``)."""
    user = user_or_404(pk)
    form = ExpiryForm()
    linked, refused = _parse(user, form, future_date=True)
    if refused is not None:
        return refused
    with write_transaction(db.session):
        decision = actions.extend(
            current_user._get_current_object(),
            user,
            form.expires_on.data,  # type: ignore[arg-type]
            request=linked,
            now=clock.now(),
            today=clock.today(),
        )
    refusal = REFUSALS.get(decision.outcome)
    if refusal:
        return render_user(user, linked=linked, error=refusal, expiry=form, status=422)
    if decision.changed:
        flash(f"Expiry date of {user.user_id} saved: access ends on {user.expires_on}.", "success")
    else:
        flash(f"The expiry date of {user.user_id} was already {user.expires_on}.", "success")
    return _back(user, linked)


@bp.post("/users/<int:pk>/extend-and-enable")
@portal_team_required
def user_extend_enable(pk: int) -> Response | tuple[str, int]:
    """The usual fix for an expired User ID: a new expiry date, then R6, in one step."""
    user = user_or_404(pk)
    form = ExpiryForm()
    linked, refused = _parse(user, form, future_date=True)
    if refused is not None:
        return refused
    with write_transaction(db.session):
        extended, enabled = actions.extend_and_reenable(
            current_user._get_current_object(),
            user,
            form.expires_on.data,  # type: ignore[arg-type]
            request=linked,
            now=clock.now(),
            today=clock.today(),
        )
    refusal = REFUSALS.get(extended.outcome) or (
        REFUSALS.get(enabled.outcome) if enabled is not None else None
    )
    if refusal:
        return render_user(
            user, linked=linked, error=refusal.format(user=user.user_id), expiry=form, status=422
        )
    restored = (
        "access restored: Enabled and Active are ticked"
        if enabled is not None and enabled.changed
        else "access was already on"
    )
    flash(
        f"Expiry date of {user.user_id} saved (access ends on {user.expires_on}); {restored}.",
        "success",
    )
    return _back(user, linked)
