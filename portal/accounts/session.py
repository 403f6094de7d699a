"""Flask-Login wiring.  The user loader re-checks the rules and the session token on every
request (R8, docs/security.md D-5, SE-01) and enforces idle and absolute timeouts (SE-04)."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask
from flask import current_app
from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask_login import login_user
from sqlalchemy import bindparam
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal import clock
from portal import htmx
from portal.accounts.models import User
from portal.extensions import db
from portal.extensions import login_manager

AUTH_AT = "auth_at"
SEEN_AT = "seen_at"
DOOR = "door"
#: Seconds between two writes of SEEN_AT (the idle timeout's clock) into the session cookie.
SEEN_AT_STEP = 60
#: Set in an anonymous session when a logged-in one was ended (LOGIN-10 on the next login page).
SESSION_ENDED = "session_ended"


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    # "basic": a changed address or browser only marks the session non-fresh.  Sessions are
    # bound server-side by the per-user token and the idle/absolute timeouts; "strong" would
    # also clear (a remember cookie we never set) on every anonymous request that carries a
    # CSRF token.
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(unauthorized)


def start_session(user: User, door: str) -> None:
    """Renew the session (docs/security.md SE-03) and log ``user`` in; no remember-me."""
    session.clear()
    login_user(user, remember=False)
    stamp = clock.now().timestamp()
    session[AUTH_AT] = stamp
    session[SEEN_AT] = stamp
    session[DOOR] = door


def _timed_out(now: float) -> bool:
    cfg = current_app.config
    auth_at = session.get(AUTH_AT)
    seen_at = session.get(SEEN_AT)
    if not isinstance(auth_at, int | float) or not isinstance(seen_at, int | float):
        return True
    idle = cfg["PORTAL_SESSION_IDLE_MINUTES"] * 60
    absolute = cfg["PORTAL_SESSION_ABSOLUTE_HOURS"] * 3600
    return now - seen_at > idle or now - auth_at > absolute


#: :func:`load_user`'s statement, built once: it runs on every request of a logged-in user, and
#: a statement built each time (``Session.get``) costs more than the look-up itself.
_USER_BY_PK = select(User).where(User.id == bindparam("pk"))


def load_user(alt_id: str) -> User | None:
    """Return the user only while the session is valid and the account has access."""
    try:
        pk_text, token = alt_id.split(":", 1)
        pk = int(pk_text)
    except ValueError:
        _end_session()
        return None
    now = clock.now().timestamp()
    if _timed_out(now):
        _end_session()
        return None
    user = db.session.execute(_USER_BY_PK, {"pk": pk}).scalar_one_or_none()
    if (
        user is None
        or not hmac.compare_digest(user.session_token.encode(), token.encode())
        or not user.is_active
    ):
        _end_session()
        return None
    if now - session[SEEN_AT] >= SEEN_AT_STEP:
        # Written at most once a minute: a page read within the same minute leaves the cookie
        # as it was (no re-signed Set-Cookie on every GET; issue 12 point 6).  The stored time
        # is then up to a minute older than the last request, so the idle timeout can only
        # come sooner, never later (docs/security.md SE-04).
        session[SEEN_AT] = now
    return user


def _end_session() -> None:
    """Forget the session; when it was a logged-in one, the next login page says so (LOGIN-10)
    whatever page noticed it first (a public page, the login page itself, or a protected one)."""
    door = session.get(DOOR)
    session.clear()
    if door:
        g.session_ended = door
        # Not a flash: the page that noticed may be a public one, whose layout shows (and so
        # uses up) every flashed message.  The login page pops this key (auth/views.py).
        session[SESSION_ENDED] = door
    return None


def login_url_for_request() -> str:
    is_console = (request.blueprint or "").startswith("console")
    door = "console" if is_console or g.get("session_ended") == "console" else "portal"
    nxt = request.full_path.rstrip("?") if request.method == "GET" else None
    return url_for(f"auth.{door}_login", next=nxt)


def unauthorized() -> Any:
    """Anonymous (or ended) sessions go to the right login page; HTMX gets ``HX-Redirect``."""
    target = login_url_for_request()
    if htmx.is_htmx():
        response = Response("", status=200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)
