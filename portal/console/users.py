"""Users of the organisation: the list with inline Enabled (HTMX), create, a user's page.

Views are thin: parse → ``management``/``service`` inside ``write_transaction`` → render.
Changes are POSTs that *set* a state; HTMX gets a fragment, a browser without JavaScript a
redirect back (post/redirect/get).
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort
from flask import current_app
from flask import flash
from flask import get_template_attribute
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal import display
from portal import htmx
from portal import messages
from portal import shown_once
from portal import url_cache
from portal.accounts import management
from portal.accounts import queries
from portal.accounts import rules
from portal.accounts import service
from portal.accounts.forms import UserCreateForm
from portal.accounts.forms import UserDetailsForm
from portal.accounts.forms import UserExpiryForm
from portal.accounts.models import User
from portal.console import bp
from portal.console.decorators import admin_required
from portal.console.decorators import organisation_user_or_404
from portal.db import write_transaction
from portal.extensions import db
from portal.redirects import local_path

#: How many of a user's audit events its page shows.
TRAIL_LIMIT = 100
CONFIRM_REMOVE = messages.REMOVE_ACCESS_QUESTION
USERS_CHANGED = "users-changed"

DONE = {
    True: "Access restored for {user}: Enabled and Active are ticked.",
    False: "Access removed for {user}: Enabled and Active are unticked.",
}


def _back_to_list() -> str:
    """The list page the form came from (its ``next`` field), or the users list."""
    return local_path(request.form.get("next"), url_for("console.users"), under="/console/")


@bp.get("/users")
@admin_required
def users() -> Response:
    filters = queries.UserFilters.from_args(request.args)
    page = queries.users_page(
        current_user.organisation_id, filters, now=clock.now(), today=clock.today()
    )
    context = {"page": page, "filters": filters, "confirm_remove": CONFIRM_REMOVE}
    return htmx.page_or_fragment(
        "user-results", "console/users/_results.html", "console/users/index.html", **context
    )


@bp.post("/users/enabled")
@admin_required
def users_set_enabled() -> Response:
    """The no-JavaScript buttons of a users table: one form per table, each button named by what
    it does and valued by the user's id (``remove=<pk>`` or ``enable=<pk>``), so that no row
    carries a form, a CSRF token and a ``next`` of its own (issue 12 point 6)."""
    for name, wanted in (("remove", "false"), ("enable", "true")):
        pk = request.form.get(name, type=int)
        if pk is not None:
            return _set_enabled(pk, wanted)
    abort(400, "remove or enable must name a user")


@bp.post("/users/<int:pk>/enabled")
@admin_required
def user_set_enabled(pk: int) -> Response:
    """Set Enabled to the value posted (``enabled=true|false``): never a flip."""
    return _set_enabled(pk, request.form.get("enabled", ""))


def _set_enabled(pk: int, wanted: str) -> Response:
    if wanted not in ("true", "false"):
        organisation_user_or_404(pk)  # an unknown user is a 404 whatever was posted
        abort(400, "enabled must be true or false")
    enabled = wanted == "true"
    if not enabled and not htmx.is_htmx() and request.form.get("confirmed") != "yes":
        # Without JavaScript there is no hx-confirm: ask on a page of its own.
        return make_response(
            render_template(
                "console/users/confirm_remove.html",
                user=organisation_user_or_404(pk),
                question=CONFIRM_REMOVE,
                back=_back_to_list(),
            )
        )
    actor = current_user._get_current_object()
    now = clock.now()
    with write_transaction(db.session):
        found = management.lock_listed_user(actor.organisation_id, pk)
        if found is None:
            abort(404)  # another organisation's user does not exist here (docs/security.md AC-02)
        user, has_factor = found
        decision = management.set_enabled(
            actor, user, enabled=enabled, now=now, today=clock.today(), locked=True
        )
    refusal = messages.CONSOLE_REFUSALS.get(decision.outcome)
    notice = refusal or (DONE[enabled].format(user=user.user_id) if decision.changed else None)
    if not htmx.is_htmx():
        if notice:
            flash(notice, "error" if refusal else "success")
        return redirect(_back_to_list())
    if user.enabled:
        disabled_by = {}
    elif decision.changed:  # disabled just now, by this Administrator: no need to ask
        disabled_by = {
            user.id: queries.DisableInfo(rules.EventKind.ACCESS_REMOVED.value, actor.user_id, now)
        }
    else:
        disabled_by = queries.latest_disables([user.id])
    users_url = url_cache.url_for("console.users")
    next_page = request.form.get("next") or users_url
    per_page = {
        "users_url": users_url + "/",
        "today": clock.today(),
        "me": actor.id,
        "second_factor": frozenset([user.id]) if has_factor else frozenset(),
    }
    # The row's macro called directly (get_template_attribute): the answer to the hottest
    # write is one row, and a whole template render (context, processors, an include) cost
    # several times the row itself.
    row_response = get_template_attribute("console/users/_row.html", "row_response")
    body = str(
        row_response(user, disabled_by, next_page, CONFIRM_REMOVE, per_page, refusal, notice)
    )
    if next_page == url_cache.url_for("console.user_page", pk=user.id):
        # On the user's own page its audit trail changes with the row.
        trail = queries.audit_trail(user.id, limit=TRAIL_LIMIT)
        body += render_template("console/users/_trail.html", oob=True, user=user, trail=trail)
    response = make_response(body, 422 if refusal else 200)
    if decision.changed:
        htmx.trigger(response, USERS_CHANGED)
    return response


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_create() -> Response | str:
    form = UserCreateForm()
    if request.method == "GET":
        days = current_app.config["PORTAL_DEFAULT_EXPIRY_DAYS"]
        form.expires_on.data = clock.today() + timedelta(days=days)
        if request.args.get("profile") == "administrator":  # the lockout warning's fix
            form.profile.data = "administrator"
    valid = form.validate_new(clock.today(), user_id_taken=service.user_id_taken)
    if valid:
        try:
            with write_transaction(db.session):
                user, password = service.create_user(
                    user_id=form.user_id.data or "",
                    full_name=form.full_name.data or "",
                    email=form.email.data or "",
                    profile=form.profile.data or "",
                    organisation=current_user.organisation,
                    expires_on=form.expires_on.data,
                    actor=current_user._get_current_object(),
                    now=clock.now(),
                )
        except service.AccountError as exc:
            form.add_account_error(exc)
        else:
            return render_template(
                "console/users/one_time_password.html",
                user=user,
                password=password,
                created=True,
            )
    return render_template("console/users/new.html", form=form)


@bp.get("/users/<int:pk>")
@admin_required
def user_page(pk: int) -> str:
    user = organisation_user_or_404(pk)
    details = UserDetailsForm(obj=user)
    expiry = UserExpiryForm(expires_on=user.expires_on)
    return _render_user_page(user, details, expiry)


def _render_user_page(
    user: User, details: UserDetailsForm, expiry: UserExpiryForm, status: int = 200
) -> str:
    trail = queries.audit_trail(user.id, limit=TRAIL_LIMIT)
    disabled_by = queries.latest_disables([user.id]) if not user.enabled else {}
    return render_template(
        "console/users/show.html",
        user=user,
        details=details,
        expiry=expiry,
        trail=trail,
        disabled_by=disabled_by,
        confirm_remove=CONFIRM_REMOVE,
    )


@bp.post("/users/<int:pk>")
@admin_required
def user_update(pk: int) -> Response | tuple[str, int]:
    user = organisation_user_or_404(pk)
    details = UserDetailsForm()
    if details.validate_on_submit():
        try:
            with write_transaction(db.session):
                change = management.update_details(
                    current_user._get_current_object(),
                    user,
                    full_name=details.full_name.data or "",
                    email=details.email.data or "",
                    profile=details.profile.data or "",
                    now=clock.now(),
                )
        except service.AccountError as exc:
            details.add_account_error(exc)
        else:
            refusal = messages.PROFILE_REFUSALS.get(change.outcome)
            if refusal is None:
                flash("Details saved." if change.changed else "Nothing changed.", "success")
                return redirect(url_for("console.user_page", pk=pk))
            details.form_errors.append(refusal)
    user = organisation_user_or_404(pk)
    return _render_user_page(user, details, UserExpiryForm(expires_on=user.expires_on)), 422


@bp.post("/users/<int:pk>/expiry")
@admin_required
def user_set_expiry(pk: int) -> Response:
    user = organisation_user_or_404(pk)
    form = UserExpiryForm()
    error = None
    if form.validate_on_submit():
        with write_transaction(db.session):
            decision = management.set_expiry(
                current_user._get_current_object(),
                user,
                form.expires_on.data,  # type: ignore[arg-type]  # a date once validated
                now=clock.now(),
                today=clock.today(),
            )
        error = messages.CONSOLE_REFUSALS.get(decision.outcome)
        changed = decision.changed
    else:
        error = "; ".join(e for errors in form.errors.values() for e in errors)
        changed = False
    user = organisation_user_or_404(pk)
    if not htmx.is_htmx():
        saved = messages.EXPIRY_SAVED.format(date=display.when(user.expires_on))
        flash(error or saved, "error" if error else "success")
        return redirect(url_for("console.user_page", pk=pk))
    # The whole Access section again, and the audit trail out of band: everything the page
    # shows about this user reflects the change (or the refusal, which is audited too).
    response = make_response(
        render_template(
            "console/users/_access_response.html",
            user=user,
            expiry=form if error else UserExpiryForm(expires_on=user.expires_on),
            error=error,
            saved=changed,
            trail=queries.audit_trail(user.id, limit=TRAIL_LIMIT),
            disabled_by=queries.latest_disables([user.id]) if not user.enabled else {},
            confirm_remove=CONFIRM_REMOVE,
            announcement=error
            or (
                messages.EXPIRY_SAVED.format(date=display.when(user.expires_on))
                if changed
                else None
            ),
        ),
        422 if error else 200,
    )
    if changed:
        htmx.trigger(response, USERS_CHANGED)
    return response


@bp.get("/users/<int:pk>/password-reset")
@admin_required
def user_confirm_reset_password(pk: int) -> str:
    """Ask first (works without JavaScript): a reset ends the user's sessions at once."""
    user = organisation_user_or_404(pk)
    return render_template(
        "console/users/confirm_action.html",
        user=user,
        question=messages.CONFIRM_RESET_PASSWORD.format(user=user.user_id),
        explanation=messages.CONFIRM_RESET_PASSWORD_DETAIL,
        action=url_for("console.user_reset_password", pk=pk),
        button="Reset password",
    )


@bp.post("/users/<int:pk>/password-reset")
@admin_required
def user_reset_password(pk: int) -> Response:
    """Reset, then redirect (303) to the page that shows the one-time password once: a refresh
    there resets nothing (portal/shown_once.py keeps the password sealed in between)."""
    user = organisation_user_or_404(pk)
    actor = current_user._get_current_object()
    now = clock.now()
    with write_transaction(db.session):
        password = management.reset_password(actor, user, now=now)
        token = shown_once.keep(password, subject_id=user.id, actor_id=actor.id, now=now)
    return redirect(url_for("console.user_one_time_password", pk=pk, token=token), code=303)


@bp.get("/users/<int:pk>/one-time-password/<token>")
@admin_required
def user_one_time_password(pk: int, token: str) -> Response:
    user = organisation_user_or_404(pk)
    with write_transaction(db.session):
        taken = shown_once.take(
            token, subject_id=user.id, actor_id=current_user.id, now=clock.now()
        )
    response = make_response(
        render_template(
            "console/users/one_time_password.html",
            user=user,
            password=taken.secret,
            created=False,
            already_shown=messages.ONE_TIME_PASSWORD_GONE,
        )
    )
    response.headers["Cache-Control"] = "no-store"  # never from the browser's cache either
    return response


@bp.get("/users/<int:pk>/sign-out")
@admin_required
def user_confirm_sign_out(pk: int) -> str:
    user = organisation_user_or_404(pk)
    return render_template(
        "console/users/confirm_action.html",
        user=user,
        question=messages.CONFIRM_SIGN_OUT.format(user=user.user_id),
        explanation=messages.CONFIRM_SIGN_OUT_DETAIL,
        action=url_for("console.user_sign_out", pk=pk),
        button="Sign out everywhere",
    )


@bp.post("/users/<int:pk>/sign-out")
@admin_required
def user_sign_out(pk: int) -> Response:
    user = organisation_user_or_404(pk)
    with write_transaction(db.session):
        management.sign_out_everywhere(current_user._get_current_object(), user, now=clock.now())
    flash(messages.SIGNED_OUT_EVERYWHERE, "success")
    return redirect(url_for("console.user_page", pk=pk), code=303)
