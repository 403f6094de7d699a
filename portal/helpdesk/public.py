"""The public Helpdesk forms (docs/rules.md §5): Contact Us and Resend Admin User ID, no login
needed.

* ``/helpdesk/contact``: the form (prefilled when logged in; ``?code=LOGIN-06`` from a login
  page prefills the exact message, ``?console=portal`` the console).  Sent → the request and
  its acknowledgement are committed together, the email is tried after the commit, and the
  browser is redirected to ``/helpdesk/contact/sent``, which shows the reference kept in *this*
  session (the URL holds no reference: nobody reads another request's confirmation).
* ``/helpdesk/contact/suggestions?error_message=…``: the "Check this first" fragment, fetched
  by HTMX while the message is typed.  The codes it shows are remembered in the session, and
  the request stores them (``suggestions_shown``): what this browser was really shown, not
  what a hidden field claims.  A refused form shows the suggestions too (no JavaScript needed).
* ``/helpdesk/resend-admin-user-id``: always the same answer (docs/security.md EN-03); the request
  goes to the queue, where staff do the look-up.

Abuse (docs/security.md UP-01, UP-05, UP-06): CSRF (Flask-WTF, app-wide), one per-address rate limit
shared by the two forms' POSTs (``PORTAL_HELPDESK_RATE_LIMIT``), a honeypot field (filled: the
same answer as a real send, nothing stored), ``MAX_CONTENT_LENGTH`` (a friendly 413 page from
``portal.errors``), and no line breaks in fields that may reach a mail header.
"""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from portal import clock
from portal import mail_queue
from portal import messages
from portal.db import write_transaction
from portal.extensions import db
from portal.extensions import limiter
from portal.helpdesk import page_views
from portal.helpdesk import submissions
from portal.helpdesk import suggestions
from portal.helpdesk import upload_quota
from portal.helpdesk.forms import ContactForm
from portal.helpdesk.forms import ResendUserIdForm
from portal.helpdesk.models import Console
from portal.helpdesk.models import parse_reference
from portal.helpdesk.models import reference
from portal.helpdesk.models import take_request_number
from portal.helpdesk.screenshots import MAX_BYTES
from portal.helpdesk.screenshots import MAX_PIXELS

log = logging.getLogger(__name__)

bp = Blueprint("helpdesk_public", __name__, url_prefix="/helpdesk")

#: The reference of the request this browser sent last (read by the confirmation page only).
SENT_KEY = "helpdesk_sent"
#: The reference of the Resend Admin User ID request this browser sent last.
RESEND_SENT_KEY = "helpdesk_resend_sent"
#: The guide codes suggested to this browser since it opened the Contact Us form.
SUGGESTED_KEY = "helpdesk_suggested"


def _rate_limit() -> str:
    return str(current_app.config["PORTAL_HELPDESK_RATE_LIMIT"])


#: One budget per client address for the POSTs of both forms.
helpdesk_limit = limiter.shared_limit(_rate_limit, scope="helpdesk-forms", methods=["POST"])


def _suggestions_limit() -> str:
    return str(current_app.config["PORTAL_HELPDESK_SUGGESTIONS_RATE_LIMIT"])


def _page(template: str, status: int = 200, **context: object) -> Response:
    html = render_template(
        template,
        max_mb=MAX_BYTES // (1024 * 1024),
        max_megapixels=MAX_PIXELS // 1_000_000,
        **context,
    )
    return Response(html, status=status, mimetype="text/html")


# --- Check this first -------------------------------------------------------------------------


def _suggested_so_far() -> list[str]:
    kept = session.get(SUGGESTED_KEY)
    if not isinstance(kept, list):
        return []
    return [code for code in kept if isinstance(code, str) and code in messages.BY_CODE]


def _show_suggestions(text: str | None, page_view: str | None) -> list[messages.Message]:
    """The entries matching ``text``, remembered as shown to this browser, and counted for the
    page view (``page_views``: deflection, from aggregates)."""
    found = suggestions.matching(text)
    if found:
        shown = _suggested_so_far()
        new = [m.code for m in found if m.code not in shown]
        if new:
            session[SUGGESTED_KEY] = shown + new
        if page_view is not None:
            with write_transaction(db.session):
                page_views.suggestions_shown(page_view, clock.now())
    return found


@bp.get("/contact/suggestions")
@limiter.limit(_suggestions_limit)
def contact_suggestions() -> Response:
    page_view = page_views.parse(request.args.get(page_views.FIELD))
    found = _show_suggestions(request.args.get("error_message", ""), page_view)
    return _page("helpdesk/_suggestions.html", suggestions=found)


# --- Contact Us -------------------------------------------------------------------------------


def _prefill(form: ContactForm) -> None:
    """What we know already: the account when logged in, the message a login page showed."""
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        form.full_name.data = user.full_name
        form.email.data = user.email
        form.organisation.data = user.organisation.name if user.organisation_id else ""
        form.user_id.data = user.user_id
    message = messages.BY_CODE.get(request.args.get("code", ""))
    if message is not None:
        form.error_message.data = f"{message.code}: {message.text}"
    if request.args.get("console") in {c.value for c in Console}:
        form.console.data = request.args["console"]


def _sender(form: ContactForm | ResendUserIdForm) -> submissions.Sender:
    user = current_user._get_current_object() if current_user.is_authenticated else None
    return submissions.Sender(
        name=form.full_name.data or "",
        email=form.email.data or "",
        organisation=form.organisation.data or "",
        user=user,
    )


def _sent(ref: str) -> Response:
    session.pop(SUGGESTED_KEY, None)
    session[SENT_KEY] = ref
    return redirect(url_for("helpdesk_public.contact_sent"))


@bp.route("/contact", methods=["GET", "POST"])
@helpdesk_limit
def contact() -> Response:
    form = ContactForm()
    # One id per rendering of the form, kept across a refused send (a new page view otherwise).
    signed_view = request.form.get(page_views.FIELD, "")
    page_view = page_views.parse(signed_view)
    if page_view is None:
        signed_view = page_views.new_id()
        page_view = page_views.parse(signed_view)
    if request.method == "POST" and form.has_screenshot():
        form.screenshot_refusal = upload_quota.refusal(clock.now())
    if request.method == "GET":
        session.pop(SUGGESTED_KEY, None)  # a fresh form: nothing suggested yet
        _prefill(form)
    elif form.validate_on_submit():
        if form.is_robot():
            # The answer a real sender gets: the next number of the same sequence (the next
            # real request follows it), with no row and nothing of what the robot sent.
            log.info("helpdesk contact form: honeypot filled, nothing stored")
            with write_transaction(db.session):
                number = take_request_number(db.session.connection())
            return _sent(reference(number))
        details = submissions.ContactDetails(
            environment=form.environment.data,
            stated_role=form.role.data,
            console=form.console.data,
            user_id=form.user_id.data or None,
            error_message=form.error_message.data or None,
            details=form.details.data or None,
        )
        try:
            with write_transaction(db.session):
                sent, ack = submissions.submit_contact(
                    _sender(form),
                    details,
                    form.clean_screenshot,
                    suggestions_shown=_suggested_so_far(),
                    now=clock.now(),
                )
                page_views.form_sent(page_view, clock.now())
        except upload_quota.UploadQuotaReached as reached:
            form.screenshot.errors = [*form.screenshot.errors, str(reached)]
        else:
            mail_queue.deliver_soon([ack])
            return _sent(sent.reference)
    refused = request.method == "POST"
    return _page(
        "helpdesk/contact.html",
        status=422 if refused else 200,
        form=form,
        suggestions=_show_suggestions(form.error_message.data, page_view),
        choose_file_again=refused and form.has_screenshot(),
        page_view=signed_view,
    )


@bp.get("/contact/sent")
def contact_sent() -> Response:
    ref = session.get(SENT_KEY)
    if not isinstance(ref, str) or parse_reference(ref) is None:
        return redirect(url_for("helpdesk_public.contact"))
    return _page("helpdesk/contact_sent.html", reference=ref)


# --- Resend Admin User ID ---------------------------------------------------------------------


@bp.route("/resend-admin-user-id", methods=["GET", "POST"])
@helpdesk_limit
def resend_user_id() -> Response:
    """The same answer whatever was typed: nothing is looked up until staff do it."""
    form = ResendUserIdForm()
    if form.validate_on_submit():
        if form.is_robot():
            log.info("helpdesk resend form: honeypot filled, nothing stored")
            with write_transaction(db.session):
                number = take_request_number(db.session.connection())
            ref = reference(number)
        else:
            with write_transaction(db.session):
                sent, ack = submissions.submit_resend_user_id(
                    _sender(form), environment=form.environment.data, now=clock.now()
                )
            mail_queue.deliver_soon([ack])
            ref = sent.reference
        session[RESEND_SENT_KEY] = ref
        return redirect(url_for("helpdesk_public.resend_user_id_sent"))
    status = 422 if request.method == "POST" else 200
    return _page("helpdesk/resend_user_id.html", status=status, form=form)


@bp.get("/resend-admin-user-id/sent")
def resend_user_id_sent() -> Response:
    ref = session.get(RESEND_SENT_KEY)
    if not isinstance(ref, str) or parse_reference(ref) is None:
        return redirect(url_for("helpdesk_public.resend_user_id"))
    return _page("helpdesk/resend_user_id_sent.html", reference=ref)


@bp.errorhandler(429)
def rate_limited(_error: HTTPException) -> Response:
    """A page that says what happened and what to do, instead of the generic 429."""
    return _page("helpdesk/rate_limited.html", status=429)
