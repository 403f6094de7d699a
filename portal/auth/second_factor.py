"""The second factor's pages (docs/rules.md R10): the login's code step and the enrolment page.

**Half-logged-in.**  After a right password, a user with a factor is *not* logged in
(Flask-Login knows nothing of it): the signed session holds only :data:`PENDING` (the user's
primary key, its session token at that moment, the time, the door, where to go next, whether
the password was a one-time password).  ``/login/second-factor`` finishes the login with
``start_session`` once a code is right; after :data:`PENDING_MINUTES` the half-login is void.
A password change, lockout or reset meanwhile rotates the session token and voids it too.

**Enrolment** at ``/account/second-factor`` (docs/rules.md §9 names): the TOTP secret in
``<code id="totp-secret">`` and a QR code, confirmed by POSTing ``code``; recovery codes then
shown once (class ``recovery-code``).  The first factor of an existing account needs the code
emailed to its stored address (``email_code``) unless this login used a one-time password just
issued by an Administrator.  Adding or removing a factor asks for a current one again when the
last check is older than :data:`RECHECK_MINUTES`.  Profiles in ``PORTAL_MFA_REQUIRED`` without
a factor are sent here before anything else (:func:`require_second_factor`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from portal import clock
from portal import htmx
from portal import mail_queue
from portal import mail_secrets
from portal import messages
from portal.access import PUBLIC_ENDPOINTS
from portal.accounts import rules
from portal.accounts.session import start_session
from portal.db import write_transaction
from portal.extensions import db
from portal.extensions import limiter
from portal.ops import metrics
from portal.redirects import local_path
from portal.second_factor import email_proof
from portal.second_factor import passkeys
from portal.second_factor import policy
from portal.second_factor import recovery
from portal.second_factor import service
from portal.second_factor import session_state
from portal.second_factor import totp

bp = Blueprint("second_factor", __name__)
log = logging.getLogger(__name__)

PENDING = session_state.PENDING
CHECKED_AT = session_state.CHECKED_AT
OTP_LOGIN = session_state.OTP_LOGIN
EMAIL_PROVEN = session_state.EMAIL_PROVEN
NEW_SECRET = session_state.NEW_SECRET
#: A half-login older than this is void (R10).
PENDING_MINUTES = 5
#: Adding or removing a factor asks for a current one when the last check is older.
RECHECK_MINUTES = 5

#: Endpoints open to a user who must still set up a second factor.
OPEN_WHILE_ENROLLING = {
    "second_factor.enrol",
    "second_factor.login_step",
    "auth.change_password",
    "auth.logout",
    "static",
    "guides.troubleshooting",
    "guides.index",
    "guides.page",
    "cookies.cookies",
    "cookies.hide_message",
    *PUBLIC_ENDPOINTS,
}


def _login_rate_limit() -> str:
    return str(current_app.config["PORTAL_LOGIN_RATE_LIMIT"])


#: The login doors' budget (the same scope: one budget per client address for every step).
login_limit = limiter.shared_limit(_login_rate_limit, scope="login", methods=["POST"])


def require_second_factor() -> Response | None:
    """Before every request: a profile that must use a second factor and has none sets one up
    before anything else (after a one-time password is changed: that hook runs first)."""
    if request.endpoint in OPEN_WHILE_ENROLLING or request.endpoint is None:
        return None
    if not current_user.is_authenticated or current_user.must_change_password:
        return None
    if not policy.required(current_app.config, current_user.profile):
        return None
    if service.has_factor(current_user.id):
        return None
    target = url_for("second_factor.enrol")
    if htmx.is_htmx():  # a whole page, not a fragment swapped into this one
        response = Response("", status=200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


# --- the code step of the login -------------------------------------------------------------


def _pending() -> dict[str, Any] | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    at = pending.get("at")
    if not isinstance(at, int | float) or not isinstance(pending.get("pk"), int):
        return None
    return pending


def _back_to_login(door: str, code: str | None) -> Response:
    session.pop(PENDING, None)
    if code is not None:
        flash(code, "message-code")
    return redirect(url_for("auth.console_login" if door == "console" else "auth.portal_login"))


@bp.route("/login/second-factor", methods=["GET", "POST"])
@login_limit
def login_step() -> Response | str:
    pending = _pending()
    if pending is None:
        return redirect(url_for("auth.portal_login"))
    door = str(pending.get("door") or "portal")
    now = clock.now()
    if now.timestamp() - float(pending["at"]) > PENDING_MINUTES * 60:
        return _back_to_login(door, messages.CODE_TIMED_OUT)
    message = None
    result: service.CodeResult | None = None
    if request.method == "POST":
        code = (request.form.get("code") or "").strip()
        credential = request.form.get("credential")
        verify = None
        if credential is not None:  # "Use a passkey" (mfarecover; docs/security.md PK-04)
            code, verify = credential, passkeys.login_verifier(pending["pk"])
        if not code:
            message = messages.get(
                messages.PASSKEY_NOT_ACCEPTED if credential is not None else messages.CODE_EMPTY
            )
        else:
            try:
                result = service.attempt_code(
                    pending["pk"],
                    str(pending["token"]),
                    code,
                    now=now,
                    today=clock.today(),
                    verify=verify,
                )
            except passkeys.NotAnAttempt:
                result = None
                message = messages.get(messages.PASSKEY_NOT_ACCEPTED)
        if result is not None:
            metrics.count_login(result.outcome)
            if result.user is not None:
                return _finish(result.user, pending, door)
            if result.outcome is rules.Outcome.BAD_CODE:
                message = messages.get(
                    messages.PASSKEY_MISMATCH if verify is not None else messages.CODE_WRONG
                )
            elif result.outcome is rules.Outcome.CODE_LOCKOUT:
                return _back_to_login(door, messages.CODE_LOCKOUT)
            elif result.outcome is rules.Outcome.BAD_PASSWORD:
                return _back_to_login(door, messages.SESSION_ENDED)
            else:
                shown = messages.for_login(result.outcome, may_self_reset=result.may_self_reset)
                return _back_to_login(door, shown.code if shown else None)
    return render_template(
        "auth/second_factor.html",
        door=door,
        message=message,
        passkey_options=passkey_login_options(pending),
    )


def passkey_login_options(pending: Mapping[str, Any]) -> Any:
    """mfarecover: the options (JSON, a new single-use challenge) for the "Use a passkey"
    button of the code step; None (no button) for a user without a passkey."""
    with write_transaction(db.session):
        return passkeys.login_options_json(int(pending["pk"]), now=clock.now())


def _finish(user: Any, pending: Mapping[str, Any], door: str) -> Response:
    otp = bool(pending.get("otp"))
    start_session(user, door)  # renews the session: the half-login goes with it
    session[CHECKED_AT] = clock.now().timestamp()
    session[OTP_LOGIN] = otp
    if user.must_change_password:
        return redirect(url_for("auth.change_password"))
    home = url_for(
        "console.home" if door == "console" and user.is_administrator else "portal_home.home"
    )
    return redirect(local_path(pending.get("next"), home))


# --- enrolment -------------------------------------------------------------------------------


def _fresh(now: float) -> bool:
    checked = session.get(CHECKED_AT)
    return isinstance(checked, int | float) and now - checked <= RECHECK_MINUTES * 60


def _needs_email_proof(user: Any, has_factor: bool) -> bool:
    return not has_factor and not session.get(OTP_LOGIN) and session.get(EMAIL_PROVEN) != user.id


def _new_secret() -> str:
    sealed = session.get(NEW_SECRET)
    if isinstance(sealed, str):
        try:
            return totp.unseal(sealed)
        except mail_secrets.Unreadable:
            session.pop(NEW_SECRET, None)  # the secret key changed: make a new one
    secret = totp.new_secret()
    session[NEW_SECRET] = totp.seal(secret)
    return secret


def _send_email_code(user: Any, now: Any) -> bool:
    with write_transaction(db.session):
        queued = email_proof.send(user, now=now)
    if queued is not None:
        mail_queue.deliver_soon([queued])
    return queued is not None


@bp.route("/account/second-factor", methods=["GET", "POST"])
@login_limit
@login_required
def enrol() -> Response | str | tuple[str, int]:
    user = current_user._get_current_object()
    now = clock.now()
    has_factor = service.has_factor(user.id)
    message: messages.Message | None = None
    notice: str | None = None
    recovery_codes: list[str] = []
    status = 200
    form = request.form if request.method == "POST" else {}
    action = form.get("action", "")
    for code in get_flashed_messages(category_filter=["message-code"]):
        message = messages.get(str(code))

    if request.method == "POST":
        if "email_code" in form:
            with write_transaction(db.session):
                ok = email_proof.confirm(user, form.get("email_code", ""), now=now)
            if ok:
                session[EMAIL_PROVEN] = user.id
                notice = "Thank you: your email address is confirmed."
            else:
                message, status = messages.get(messages.EMAIL_CODE_WRONG), 422
        elif action == "send_email_code":
            if _send_email_code(user, now):
                notice = "We have sent a new code to your email address."
            else:
                notice = "Several codes were sent in the last hour: use the newest one."
        elif "current_code" in form:
            queued: list[mail_queue.QueuedMail] = []
            with write_transaction(db.session):
                ok = service.check_again(user, form.get("current_code", ""), now=now, queued=queued)
            mail_queue.deliver_soon(queued)
            if ok:
                session[CHECKED_AT] = now.timestamp()
                notice = "Thank you: you can now change your second factors."
            else:
                return _after_wrong_check_again(user)
        elif "credential" in form:  # a passkey (mfarecover; docs/security.md PK-01, PK-02)
            if _needs_email_proof(user, has_factor) or (has_factor and not _fresh(now.timestamp())):
                message = messages.get(
                    messages.CHECK_AGAIN if has_factor else messages.ENROL_REQUIRED
                )
                status = 422
            else:
                notice, message = _add_passkey(user, form, now)
                if message is None:
                    session[CHECKED_AT] = now.timestamp()
                    has_factor = True
                    if recovery.remaining(user.id) == 0:
                        with write_transaction(db.session):
                            recovery_codes = service.issue_recovery_codes(user, now=now)
                else:
                    status = 422
        elif "code" in form:
            blocked = _needs_email_proof(user, has_factor) or (
                has_factor and not _fresh(now.timestamp())
            )
            code = form.get("code", "").strip()
            if blocked:
                message, status = (
                    messages.get(messages.CHECK_AGAIN if has_factor else messages.ENROL_REQUIRED),
                    422,
                )
            elif not code:
                message, status = messages.get(messages.CODE_EMPTY), 422
            else:
                secret = _new_secret()
                with write_transaction(db.session):
                    codes = service.add_totp(
                        user, secret=secret, code=code, name=form.get("name", ""), now=now
                    )
                if codes is None:
                    message, status = messages.get(messages.CODE_WRONG), 422
                else:
                    session.pop(NEW_SECRET, None)
                    session[CHECKED_AT] = now.timestamp()
                    has_factor = True
                    recovery_codes = codes
                    notice = "Your authenticator app is set up."
        elif action == "recovery_codes":
            if not has_factor or not _fresh(now.timestamp()):
                message, status = messages.get(messages.CHECK_AGAIN), 422
            else:
                with write_transaction(db.session):
                    recovery_codes = service.issue_recovery_codes(user, now=now)
                notice = "Your new recovery codes are below; the old ones no longer work."

    needs_proof = _needs_email_proof(user, has_factor)
    if needs_proof and request.method == "GET" and email_proof.live_code(user, now=now) is None:
        _send_email_code(user, now)
    fresh = _fresh(now.timestamp())
    required = policy.required(current_app.config, user.profile)
    if message is None and required and not has_factor:
        message = messages.get(messages.ENROL_REQUIRED)
    context: dict[str, Any] = {
        "factors": service.factors(user.id),
        "has_factor": has_factor,
        "required": required,
        "needs_email_proof": needs_proof,
        "needs_check_again": has_factor and not fresh,
        "message": message,
        "notice": notice,
        "recovery_codes": recovery_codes,
        "recovery_left": recovery.remaining(user.id),
        "email": user.email,
        "passkey_section": passkey_enrolment(user, fresh=fresh),
    }
    if not needs_proof and (fresh or not has_factor) and not recovery_codes:
        secret = _new_secret()
        uri = totp.provisioning_uri(secret, account=user.user_id)
        context.update(secret=secret, qr=totp.qr_data_uri(uri))
    return render_template("auth/second_factor_enrol.html", **context), status


def passkey_enrolment(user: Any, *, fresh: bool) -> Any:
    """mfarecover: the registration options (JSON, a new single-use challenge) for the passkey
    section, when a factor may be added now (the same gates as for TOTP); else None (the
    section then says what to do first)."""
    if _needs_email_proof(user, service.has_factor(user.id)) or (
        service.has_factor(user.id) and not fresh
    ):
        return None
    with write_transaction(db.session):
        return passkeys.enrolment_options_json(user, now=clock.now())


def _add_passkey(
    user: Any, form: Mapping[str, str], now: Any
) -> tuple[str | None, messages.Message | None]:
    """Check and store the passkey the browser made; (notice, None) or (None, the refusal)."""
    name = form.get("passkey_name", "")
    try:
        with write_transaction(db.session):
            try:
                passkeys.register(user, form.get("credential", ""), name=name, now=now)
            except passkeys.PasskeyError as exc:  # the challenge stays used up: commit
                log.info("passkey registration refused for user %s: %s", user.id, exc)
                return None, messages.get(messages.PASSKEY_NOT_ACCEPTED)
    except ValueError:
        return None, messages.get(messages.PASSKEY_NAME_NEEDED)
    except IntegrityError:  # that credential is registered already
        return None, messages.get(messages.PASSKEY_NOT_ACCEPTED)
    return f"Passkey “{' '.join(name.split())}” added: use it at your next login.", None


def _after_wrong_check_again(user: Any) -> Response | tuple[str, int]:
    """A wrong code when asked again: counted like one at login (the fifth locks, and the
    session has then ended)."""
    db.session.refresh(user)
    if not user.enabled:
        door = session.get("door", "portal")
        session.clear()
        return _back_to_login(str(door), messages.CODE_LOCKOUT)
    flash(messages.CODE_WRONG, "message-code")
    return redirect(url_for("second_factor.enrol"))


@bp.post("/account/second-factor/<int:pk>/remove")
@login_limit
@login_required
def remove(pk: int) -> Response:
    """Remove the user's own factor ``pk`` (a factor's primary key)."""
    user = current_user._get_current_object()
    now = clock.now()
    if not _fresh(now.timestamp()):
        flash(messages.CHECK_AGAIN, "message-code")
        return redirect(url_for("second_factor.enrol"))
    try:
        with write_transaction(db.session):
            service.remove_factor(
                user,
                pk,
                required=policy.required(current_app.config, user.profile),
                now=now,
            )
    except service.FactorError as error:
        flash(str(error), "error")
    else:
        flash("The second factor was removed.", "success")
    return redirect(url_for("second_factor.enrol"))
