"""The two login doors (one mechanism), logout, and changing one's own password."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import get_flashed_messages
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login import logout_user
from werkzeug.wrappers import Response

from portal import clock
from portal import messages
from portal.access import PUBLIC_ENDPOINTS
from portal.accounts import password_policy
from portal.accounts import rules
from portal.accounts import service
from portal.accounts.forms import ChangePasswordForm
from portal.accounts.forms import LoginForm
from portal.accounts.session import DOOR
from portal.accounts.session import SESSION_ENDED
from portal.accounts.session import start_session
from portal.db import write_transaction
from portal.extensions import db
from portal.extensions import limiter
from portal.landing import home_for
from portal.ops import metrics
from portal.redirects import local_path
from portal.second_factor import session_state

bp = Blueprint("auth", __name__)

#: Set in the session by a login with a one-time password (cleared by the next login).
ONE_TIME_LOGIN = "one_time_login"

#: Endpoints a user who must change a one-time password may still reach (the Helpdesk's public
#: forms too: they are for people who cannot get in).
OPEN_WHILE_CHANGING = {
    "auth.change_password",
    "auth.logout",
    "static",
    "guides.troubleshooting",
    *PUBLIC_ENDPOINTS,
    "guides.index",
    "guides.page",
    "cookies.cookies",
    "cookies.hide_message",
}


def _login_rate_limit() -> str:
    return str(current_app.config["PORTAL_LOGIN_RATE_LIMIT"])


def _login(door: service.Door) -> Response | str | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(home_for(door))
    form = LoginForm()
    message: messages.Message | None = None
    if session.pop(SESSION_ENDED, None):
        message = messages.get(messages.SESSION_ENDED)
    for code in get_flashed_messages(category_filter=["message-code"]):
        message = messages.get(str(code))  # without categories, each is the message itself
    if form.validate_on_submit():
        result = service.attempt_login(
            form.user_id.data or "",
            form.password.data or "",
            door=door,
            now=clock.now(),
            today=clock.today(),
        )
        metrics.count_login(result.outcome)
        if result.outcome == rules.Outcome.SECOND_FACTOR and result.user is not None:
            # R10: not logged in yet: the code step (portal/auth/second_factor.py) finishes.
            session.clear()
            session_state.begin(result.user, door, request.args.get("next"))
            return redirect(url_for("second_factor.login_step"))
        if result.user is not None:
            start_session(result.user, door)
            session_state.logged_in_without_factor(result.user)
            if result.user.must_change_password:
                # This login proved the one-time password: the change does not ask for it again.
                session[ONE_TIME_LOGIN] = True
                return redirect(url_for("auth.change_password"))
            return redirect(local_path(request.args.get("next"), home_for(door)))
        message = messages.for_login(result.outcome, may_self_reset=result.may_self_reset)
    return render_template("auth/login.html", form=form, door=door, message=message)


#: One budget per client address for both doors and the password change (not one each).
login_limit = limiter.shared_limit(_login_rate_limit, scope="login", methods=["POST"])


@bp.route("/portal/login", methods=["GET", "POST"])
@login_limit
def portal_login() -> Response | str | tuple[str, int]:
    return _login(service.Door.PORTAL)


@bp.route("/console/login", methods=["GET", "POST"])
@login_limit
def console_login() -> Response | str | tuple[str, int]:
    return _login(service.Door.CONSOLE)


@bp.post("/logout")
def logout() -> Response:
    door = request.form.get("door") or "portal"
    if current_user.is_authenticated:
        with write_transaction(db.session):
            service.log_out(current_user._get_current_object(), now=clock.now())
        logout_user()
    session.clear()
    return redirect(url_for("auth.console_login" if door == "console" else "auth.portal_login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_limit
@login_required
def change_password() -> Response | str:
    form = ChangePasswordForm()
    user = current_user._get_current_object()
    proven = bool(user.must_change_password and session.get(ONE_TIME_LOGIN))
    if proven:
        del form.current_password  # typed at the login a moment ago
    if form.validate_on_submit():
        cfg = current_app.config
        org = user.organisation.name if user.organisation_id else ""
        problems = password_policy.problems(
            form.password.data or "",
            min_length=cfg["PORTAL_PASSWORD_MIN_LENGTH"],
            max_length=cfg["PORTAL_PASSWORD_MAX_LENGTH"],
            context=password_policy.context_of(user.user_id, user.full_name, org),
        )
        same = (
            service.is_current_password(user, form.password.data or "")
            if proven
            else (form.password.data or "") == (form.current_password.data or "")
        )
        if same:
            problems.append("The new password must be different from the current one")
        if problems:
            form.password.errors = [*form.password.errors, *problems]
        elif service.change_password(
            user,
            current=None if proven else (form.current_password.data or ""),
            new=form.password.data or "",
            now=clock.now(),
        ):
            door = session.get(DOOR, "portal")
            carried = session_state.carry()
            start_session(user, door)  # the token rotated: renew this session only
            session_state.restore(carried)
            flash("Your password has been changed.", "success")
            return redirect(home_for(door))
        else:
            form.current_password.errors = [
                *form.current_password.errors,
                "The current password is wrong",
            ]
    must = user.must_change_password
    return render_template(
        "auth/change_password.html",
        form=form,
        must_change=must,
        proven=proven,
        must_message=messages.get(messages.MUST_CHANGE_PASSWORD),
    )


def require_password_change() -> Response | None:
    """Before every request: a one-time password must be changed before anything else."""
    if request.endpoint in OPEN_WHILE_CHANGING or request.endpoint is None:
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        return redirect(url_for("auth.change_password"))
    return None
