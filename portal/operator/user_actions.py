"""The account actions on a user's operator page: re-enable, extend the expiry date, and both
in one step (routes on the ``operator`` blueprint; the factory imports this module).

Each POST goes through :func:`_run`: the form and the optional helpdesk request reference are
parsed, then ``actions`` runs inside ``write_transaction``; bad input or a refusal
(``messages.OPERATOR_REFUSALS``) shows the page again with 422 and changes nothing, success
redirects back to the page (post/redirect/get).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash
from flask import redirect
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal import messages
from portal.access import portal_team_required
from portal.accounts import rules
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import actions as helpdesk_actions
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Status
from portal.mail_queue import QueuedMail
from portal.mail_queue import deliver_soon
from portal.operator import actions
from portal.operator import bp
from portal.operator.forms import EnableForm
from portal.operator.forms import ExpiryForm
from portal.operator.user_page import render_user
from portal.operator.user_page import user_or_404


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
            error = messages.FUTURE_DATE
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


#: An action: (actor, user, linked request) → its decisions, in the order they were taken.
Act = Callable[[User, User, HelpdeskRequest | None], tuple[rules.Decision | None, ...]]
#: What a successful action says: (user, decisions) → the notice.
Done = Callable[[User, tuple[rules.Decision | None, ...]], str]


def _run(
    pk: int, form: EnableForm | ExpiryForm, act: Act, done: Done
) -> Response | tuple[str, int]:
    """Parse, run ``act`` in one write transaction, then show the first refusal (422) or flash
    ``done`` and go back to the user's page."""
    user = user_or_404(pk)
    expiry = form if isinstance(form, ExpiryForm) else None
    linked, refused = _parse(user, form, future_date=expiry is not None)
    if refused is not None:
        return refused
    mails: list[QueuedMail] = []
    resolved = False
    with write_transaction(db.session):
        actor = current_user._get_current_object()
        decisions = act(actor, user, linked)
        any_refused = any(_refusal(d) for d in decisions)
        if linked is not None and form.resolve.data and not any_refused:
            # "and resolve, telling the requester" (docs/rules.md §5): the same transaction.
            resolved = helpdesk_actions.set_status(
                linked.id, Status.RESOLVED, actor=actor, now=clock.now(), mails=mails
            )
    deliver_soon(mails)
    for decision in decisions:
        refusal = _refusal(decision)
        if refusal:
            error = refusal.format(user=user.user_id)
            return render_user(user, linked=linked, error=error, expiry=expiry, status=422)
    notice = done(user, decisions)
    if resolved and linked is not None:
        notice += f" {linked.reference} is resolved and the requester has been told."
    flash(notice, "success")
    return _back(user, linked)


def _refusal(decision: rules.Decision | None) -> str | None:
    return messages.OPERATOR_REFUSALS.get(decision.outcome) if decision else None


@bp.post("/users/<int:pk>/enable")
@portal_team_required
def user_enable(pk: int) -> Response | tuple[str, int]:
    """R6: tick Enabled (Active back on, reason and failures cleared)."""

    def act(actor: User, user: User, linked: HelpdeskRequest | None) -> tuple[rules.Decision]:
        now, today = clock.now(), clock.today()
        return (actions.reenable(actor, user, request=linked, now=now, today=today),)

    def done(user: User, decisions: tuple[rules.Decision | None, ...]) -> str:
        if decisions[0] is not None and decisions[0].changed:
            return f"Access restored for {user.user_id}: Enabled and Active are ticked."
        return f"{user.user_id} already has access: nothing changed."

    return _run(pk, EnableForm(), act, done)


@bp.post("/users/<int:pk>/expiry")
@portal_team_required
def user_extend(pk: int) -> Response | tuple[str, int]:
    """Change the expiry date (access itself is not restored: see ``user_extend_enable``)."""
    form = ExpiryForm()

    def act(actor: User, user: User, linked: HelpdeskRequest | None) -> tuple[rules.Decision]:
        now, today = clock.now(), clock.today()
        new_date = form.expires_on.data
        assert new_date is not None  # validated by _parse
        return (actions.extend(actor, user, new_date, request=linked, now=now, today=today),)

    def done(user: User, decisions: tuple[rules.Decision | None, ...]) -> str:
        if decisions[0] is not None and decisions[0].changed:
            return f"Expiry date of {user.user_id} saved: access ends on {user.expires_on}."
        return f"The expiry date of {user.user_id} was already {user.expires_on}."

    return _run(pk, form, act, done)


@bp.post("/users/<int:pk>/extend-and-enable")
@portal_team_required
def user_extend_enable(pk: int) -> Response | tuple[str, int]:
    """The usual fix for an expired User ID: a new expiry date, then R6, in one step."""
    form = ExpiryForm()

    def act(
        actor: User, user: User, linked: HelpdeskRequest | None
    ) -> tuple[rules.Decision, rules.Decision | None]:
        now, today = clock.now(), clock.today()
        new_date = form.expires_on.data
        assert new_date is not None  # validated by _parse
        return actions.extend_and_reenable(
            actor, user, new_date, request=linked, now=now, today=today
        )

    def done(user: User, decisions: tuple[rules.Decision | None, ...]) -> str:
        enabled = decisions[1]
        restored = (
            "access restored: Enabled and Active are ticked"
            if enabled is not None and enabled.changed
            else "access was already on"
        )
        return (
            f"Expiry date of {user.user_id} saved (access ends on {user.expires_on}); {restored}."
        )

    return _run(pk, form, act, done)
