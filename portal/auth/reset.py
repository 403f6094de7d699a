"""Self-service password reset for Administrators (docs/rules.md R7; docs/security.md EN-03…EN-05,
RS-01…RS-08).

``/password-reset`` asks for the User ID and email address and always gives the same answer;
the emailed link ``/password-reset/<token>`` moves the token into the session and redirects to
``/password-reset/new``, where the new password is chosen.  The account work lives in
``portal.accounts.password_reset``.
"""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo

from portal import background
from portal import clock
from portal import mail_queue
from portal import messages
from portal.accounts import password_policy
from portal.accounts import password_reset
from portal.accounts import passwords
from portal.accounts import tokens
from portal.extensions import db
from portal.extensions import limiter

bp = Blueprint("reset", __name__)

#: A User ID is at most 64 characters (what a link may pre-fill).
USER_ID_MAX = 64

#: The session key holding the *hash* of the token being used (the token never leaves the email
#: and the one request that carries it: not in the cookie, not in a later URL or Referer).
SESSION_KEY = "reset_token_hash"

_INVALID_CODES = {
    tokens.Invalid.UNKNOWN: (messages.RESET_INVALID, 404),
    tokens.Invalid.EXPIRED: (messages.RESET_EXPIRED, 410),
    tokens.Invalid.USED: (messages.RESET_USED, 410),
}


class ResetRequestForm(FlaskForm):
    user_id = StringField("User ID", validators=[DataRequired("Enter your User ID")])
    email = StringField(
        "Email address", validators=[DataRequired("Enter the email address of your account")]
    )


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired("Enter a new password")])
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Type the new password again"),
            EqualTo("password", message="The two new passwords do not match"),
        ],
    )


def _reset_rate_limit() -> str:
    return str(current_app.config["PORTAL_RESET_RATE_LIMIT"])


def _request_page(
    form: ResetRequestForm, status: int = 200, message: str | None = None
) -> Response:
    html = render_template(
        "auth/reset_request.html",
        form=form,
        message=messages.get(message) if message else None,
        minutes=current_app.config["PORTAL_RESET_TOKEN_MINUTES"],
    )
    return Response(html, status=status, mimetype="text/html")


@bp.route("/password-reset", methods=["GET", "POST"])
@limiter.limit(_reset_rate_limit, methods=["POST"])
def request_reset() -> Response:
    """Ask for a reset link: the same page, status and timing whatever was typed (EN-03).

    Timing: the look-up, the eligibility checks, the per-account cap, the token and the email
    all run in a background thread (``portal.background``) *after* the form was accepted, in
    every branch alike: the response is rendered from the form alone, so neither its content
    nor its timing can tell an eligible Administrator from an unknown User ID.  (Doing "the
    same amount of work" in each branch instead would still leak the SMTP round trip, which
    only happens when a mail goes.)  The cost is that a mail failure cannot be reported to the
    requester; it is logged, and the page says what to do when nothing arrives.
    """
    form = ResetRequestForm()
    if form.validate_on_submit():
        background.submit(
            password_reset.request_reset,
            form.user_id.data or "",
            form.email.data or "",
            now=clock.now(),
        )
        return _request_page(ResetRequestForm(formdata=None), message=messages.RESET_REQUESTED)
    if request.method == "GET" and not form.user_id.data:
        # "Forgotten your password?" on the login page carries the User ID already typed.
        form.user_id.data = (request.args.get("user_id") or "").strip()[:USER_ID_MAX] or None
    return _request_page(form)


@bp.errorhandler(429)
def rate_limited(_error: HTTPException) -> Response:
    """A friendly page (with its code) instead of the generic 429, and no more mail."""
    return _request_page(
        ResetRequestForm(formdata=None), status=429, message=messages.RESET_RATE_LIMITED
    )


def _invalid_page(problem: tokens.Invalid) -> Response:
    session.pop(SESSION_KEY, None)
    code, status = _INVALID_CODES[problem]
    html = render_template("auth/reset_invalid.html", message=messages.get(code))
    return Response(html, status=status, mimetype="text/html")


@bp.get("/password-reset/<token>")
def open_link(token: str) -> Response:
    """The emailed link: keep the token's hash in the session and leave the URL (RS-07)."""
    problem = tokens.Invalid.UNKNOWN
    if tokens.plausible(token):
        token_hash = tokens.hash_token(token)
        checked = tokens.check(token_hash, now=clock.now())
        db.session.rollback()
        if checked.problem is None:
            session[SESSION_KEY] = token_hash
            response = redirect(url_for("reset.new_password"))
            response.headers["Referrer-Policy"] = "no-referrer"
            return response
        problem = checked.problem
    response = _invalid_page(problem)
    response.headers["Referrer-Policy"] = "no-referrer"  # this URL holds the token
    return response


@bp.route("/password-reset/new", methods=["GET", "POST"])
def new_password() -> Response:
    """Choose the new password (same policy as a change, RS-08); no automatic login (RS-05)."""
    token_hash = session.get(SESSION_KEY)
    if not isinstance(token_hash, str):
        return _invalid_page(tokens.Invalid.UNKNOWN)
    checked = tokens.check(token_hash, now=clock.now())
    if checked.problem is not None or checked.user is None:
        db.session.rollback()
        return _invalid_page(checked.problem or tokens.Invalid.UNKNOWN)
    user = checked.user
    form = NewPasswordForm()
    if form.validate_on_submit():
        cfg = current_app.config
        org = user.organisation.name if user.organisation else ""
        new = form.password.data or ""
        problems = password_policy.problems(
            new,
            min_length=cfg["PORTAL_PASSWORD_MIN_LENGTH"],
            max_length=cfg["PORTAL_PASSWORD_MAX_LENGTH"],
            context=password_policy.context_of(user.user_id, user.full_name, org),
        )
        if problems:
            form.password.errors = [*form.password.errors, *problems]
        else:
            db.session.rollback()  # end the read transaction before the slow part
            new_hash = passwords.hash_password(new)  # never inside the write transaction
            now = clock.now()
            done = password_reset.complete(token_hash, new_hash, now=now, today=clock.today())
            if isinstance(done, tokens.Invalid):
                return _invalid_page(done)
            session.pop(SESSION_KEY, None)
            mail_queue.deliver_soon([done.notice])  # queued with the reset, sent after it
            if done.has_access:
                flash(messages.get(messages.RESET_DONE).text, "success")
            else:
                flash(messages.get(messages.RESET_DONE_EXPIRED).text, "success")
                flash("LOGIN-06", "message-code")  # the login page shows it, with its guide link
            return redirect(url_for("auth.console_login"))
    html = render_template("auth/reset_new.html", form=form, user_id=user.user_id)
    db.session.rollback()
    return Response(html, mimetype="text/html")
