"""Settings: defaults, then ``instance/config.py``, then the environment, then the caller's mapping.

Environment variables: ``DATABASE_URL`` sets the database, and each ``PORTAL_<NAME>`` variable
sets the setting ``PORTAL_<NAME>`` when that is a known setting, otherwise the setting
``<NAME>`` (so ``PORTAL_SECRET_KEY`` sets ``SECRET_KEY`` and ``PORTAL_RATELIMIT_ENABLED`` sets
``RATELIMIT_ENABLED``).  Values are converted to the type of the default (``on``/``off``,
``true``/``false``, ``1``/``0`` for booleans; a JSON object for a mapping such as
``RATELIMIT_STORAGE_OPTIONS``).  Unknown names are ignored.

Flask-Limiter's settings that take a Python callable (``RATELIMIT_KEY_FUNC``,
``RATELIMIT_REQUEST_IDENTIFIER``, the ``*_EXEMPT_WHEN`` / ``*_DEDUCT_WHEN`` /
``*_BREACH_CALLBACK`` ones) cannot come from a string: set them in ``instance/config.py``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("production", "development")
#: PORTAL_ENVIRONMENT: which portal this deployment is (docs/rules.md §6); Training shows a banner.
PORTAL_ENVIRONMENTS = ("live", "training")

DEFAULTS: dict[str, Any] = {
    # --- the deployment
    "PORTAL_ENV": "production",  # "development" relaxes SECRET_KEY and cookie Secure
    "PORTAL_ENVIRONMENT": "live",  # "live" or "training": Training shows a banner on every page
    "PORTAL_TIMEZONE": "Europe/London",
    "PORTAL_SCHEDULER": False,
    "PORTAL_SWEEP_BATCH_SIZE": 20_000,  # users disabled per statement and transaction (sweep)
    # Background jobs (portal/jobs/queue.py): how often the scheduler claims queued work, and
    # the sizes above which the Console's bulk actions and imports run as such a job.
    "PORTAL_JOBS_POLL_SECONDS": 5,
    "PORTAL_BULK_BACKGROUND_OVER": 1_000,  # users in one bulk action
    "PORTAL_IMPORT_BACKGROUND_OVER": 200,  # new users in one import (a password hash each)
    # The public https:// address emailed links are built from: required in production
    # (docs/rules.md §8); unset, development and tests use http://127.0.0.1:5000.
    "PORTAL_BASE_URL": None,
    "PORTAL_PROXY_FIX_HOPS": 0,  # set to the number of reverse proxies in front of the app
    "SECRET_KEY": None,
    "SQLALCHEMY_DATABASE_URI": None,  # default: sqlite:///<instance>/portal.sqlite
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    # --- operations: logs and metrics (docs/deploy.md)
    "PORTAL_LOG_FORMAT": None,  # "json" or "text"; None: JSON lines, text in development
    "PORTAL_LOG_LEVEL": "INFO",
    "PORTAL_METRICS_TOKEN": None,  # /metrics answers 404 until this is set
    # --- passwords (docs/security.md D-3, PW-06)
    "PORTAL_PASSWORD_MIN_LENGTH": 12,
    "PORTAL_PASSWORD_MAX_LENGTH": 128,
    "PORTAL_ARGON2_TIME_COST": 3,
    "PORTAL_ARGON2_MEMORY_COST": 65536,  # KiB (64 MiB), argon2-cffi's RFC 9106 low-memory profile
    "PORTAL_ARGON2_PARALLELISM": 4,
    # --- sessions (docs/security.md section 5)
    "PORTAL_SESSION_IDLE_MINUTES": 30,
    "PORTAL_SESSION_ABSOLUTE_HOURS": 12,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": None,  # None: True in production, False in development
    "SESSION_COOKIE_NAME": None,  # None: "__Host-portal-session" when Secure, else "portal-session"
    "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
    # --- CSRF: bound to the session, never expiring mid-session (docs/security.md CS-03)
    "WTF_CSRF_ENABLED": True,
    "WTF_CSRF_TIME_LIMIT": None,
    # --- the Host header: comma-separated names; empty: no check (IP literals always pass)
    "PORTAL_TRUSTED_HOSTS": "",
    # --- rate limits (Flask-Limiter; every RATELIMIT_* setting below is PORTAL_RATELIMIT_*)
    "RATELIMIT_ENABLED": True,
    "PORTAL_RATELIMIT_STORAGE": "memory://",  # e.g. redis://127.0.0.1:6379/0 for several workers
    "PORTAL_LOGIN_RATE_LIMIT": "20 per minute;200 per hour",
    "RATELIMIT_STORAGE_URI": None,  # None: PORTAL_RATELIMIT_STORAGE
    "RATELIMIT_STORAGE_OPTIONS": {},  # a JSON object in the environment; Redis: 1 s timeouts
    "RATELIMIT_KEY_PREFIX": None,  # None: "portal-live" or "portal-training"
    # Storage out of reach: keep the same limits in this process's memory, keep serving.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_IN_MEMORY_FALLBACK": None,  # other limits for that time (None: the usual ones)
    "RATELIMIT_SWALLOW_ERRORS": True,  # any other limiter error: log it, serve the request
    "RATELIMIT_STRATEGY": "fixed-window",
    "RATELIMIT_FAIL_ON_FIRST_BREACH": True,
    "RATELIMIT_DEFAULT": None,  # limits for every route (none: only the routes' own)
    "RATELIMIT_DEFAULTS_PER_METHOD": False,
    "RATELIMIT_DEFAULTS_COST": 1,
    "RATELIMIT_APPLICATION": None,  # one budget shared by all routes
    "RATELIMIT_APPLICATION_PER_METHOD": False,
    "RATELIMIT_APPLICATION_COST": 1,
    "RATELIMIT_META": None,
    "RATELIMIT_HEADERS_ENABLED": False,
    "RATELIMIT_HEADER_LIMIT": "X-RateLimit-Limit",
    "RATELIMIT_HEADER_REMAINING": "X-RateLimit-Remaining",
    "RATELIMIT_HEADER_RESET": "X-RateLimit-Reset",
    "RATELIMIT_HEADER_RETRY_AFTER": "Retry-After",
    "RATELIMIT_HEADER_RETRY_AFTER_VALUE": None,  # "delta-seconds" (None) or "http-date"
    # --- the public Helpdesk forms (docs/security.md UP-01, UP-05)
    "PORTAL_HELPDESK_RATE_LIMIT": "20 per hour;240 per day",  # form POSTs per client address
    # "Check this first" requests per client address (each may count a page view: deflection)
    "PORTAL_HELPDESK_SUGGESTIONS_RATE_LIMIT": "120 per minute;2000 per hour",
    "MAX_CONTENT_LENGTH": 6 * 1024 * 1024,  # bytes per request (a 5 MB screenshot and the form)
    "PORTAL_SCREENSHOTS_PER_DAY": 300,  # stored screenshots a day, service-wide (0: none)
    "PORTAL_SCREENSHOT_MB_PER_DAY": 500,  # and their re-encoded megabytes a day
    "PORTAL_SCREENSHOT_STORAGE_MB": 5000,  # all stored screenshots together
    # --- accounts
    "PORTAL_DEFAULT_EXPIRY_DAYS": 365,
    # --- second factor (docs/rules.md R10): comma-separated profiles that must use one.  None:
    # "administrator,helpdesk,portal_team" in production, empty in development and tests.
    "PORTAL_MFA_REQUIRED": None,
    # --- access reviews: the next one is due this many days after the last (docs/rules.md §4)
    "PORTAL_ACCESS_REVIEW_DAYS": 90,
    # --- audit events older than this are deleted by the nightly job (6 years)
    "PORTAL_AUDIT_RETENTION_DAYS": 2190,
    # --- site pages: newsletter sign-up (double opt-in) and cookie choices
    "PORTAL_NEWSLETTER_RATE_LIMIT": "5 per minute;30 per hour",  # sign-up POSTs per address
    "PORTAL_NEWSLETTER_CONFIRM_HOURS": 48,  # how long a confirmation link works
    # --- self-service password reset for Administrators (docs/rules.md R7, docs/security.md section
    # 3)
    "PORTAL_RESET_TOKEN_MINUTES": 60,
    "PORTAL_RESET_RATE_LIMIT": "5 per hour",  # reset requests (POSTs) per client address
    "PORTAL_RESET_TOKENS_PER_HOUR": 3,  # emails per account per hour; more are silently dropped
    # --- helpdesk queue: "Send User ID" emails per Administrator account in 24 hours (EN-04)
    "PORTAL_HELPDESK_USER_ID_PER_DAY": 3,
    # --- helpdesk queue: the working day a request's age is counted in (HH:MM on the wall clock
    # of PORTAL_TIMEZONE, weekdays that are not England and Wales bank holidays), and the age in
    # working days past which a request is overdue (portal/helpdesk/business_hours.py)
    "PORTAL_HELPDESK_DAY_STARTS": "09:00",
    "PORTAL_HELPDESK_DAY_ENDS": "17:30",
    "PORTAL_HELPDESK_TARGET_DAYS": 2,
    # --- the requester's status page (/helpdesk/status/<token>; docs/security.md "status link")
    "PORTAL_HELPDESK_STATUS_LINK_DAYS": 90,  # the link works until this long after resolving
    "PORTAL_HELPDESK_REOPEN_DAYS": 30,  # information added within this reopens a resolved one
    "PORTAL_HELPDESK_STATUS_RATE_LIMIT": "30 per minute;300 per day",  # per client address
    # --- email: SMTP when PORTAL_MAIL_SERVER is set, else .eml files in PORTAL_MAIL_OUTBOX
    "PORTAL_MAIL_SERVER": None,
    "PORTAL_MAIL_PORT": 25,
    "PORTAL_MAIL_USE_TLS": False,  # STARTTLS
    "PORTAL_MAIL_USERNAME": None,
    "PORTAL_MAIL_PASSWORD": None,
    "PORTAL_MAIL_SENDER": "Claims Portal Console <no-reply@localhost>",
    "PORTAL_MAIL_TIMEOUT": 10,  # seconds
    "PORTAL_MAIL_OUTBOX": None,  # None: <instance>/outbox
    # --- the durable mail queue: how often the scheduler retries, and for how long
    "PORTAL_MAIL_RETRY_MINUTES": 5,
    "PORTAL_MAIL_RETRY_HOURS": 24,  # then a message is marked failed (shown to the Portal team)
}


def instance_path(environ: Mapping[str, str] | None = None) -> Path:
    """The instance folder (``instance/config.py``, the SQLite file, the outbox, backups).

    ``PORTAL_INSTANCE_PATH`` when set; else ``instance/`` of the checkout when the package runs
    from one (``make run``); else ``<venv>/var/portal-instance`` (Flask's own default for an
    installed package).
    """
    environ = os.environ if environ is None else environ
    configured = environ.get("PORTAL_INSTANCE_PATH", "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "instance"
    return Path(sys.prefix) / "var" / "portal-instance"


#: The type of settings whose default (None) does not show it.
SETTING_TYPES: dict[str, type] = {"SESSION_COOKIE_SECURE": bool}

#: Flask-Limiter settings that hold a Python callable: never from the environment.
CALLABLE_SETTINGS = frozenset(
    {
        "RATELIMIT_KEY_FUNC",
        "RATELIMIT_REQUEST_IDENTIFIER",
        "RATELIMIT_ON_BREACH_CALLBACK",
        "RATELIMIT_ON_META_BREACH_CALLBACK",
        "RATELIMIT_APPLICATION_EXEMPT_WHEN",
        "RATELIMIT_APPLICATION_DEDUCT_WHEN",
        "RATELIMIT_DEFAULTS_EXEMPT_WHEN",
        "RATELIMIT_DEFAULTS_DEDUCT_WHEN",
    }
)


def _convert(raw: str, key: str, default: Any, name: str) -> Any:
    kind = SETTING_TYPES.get(key, type(default))
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{name}={raw!r}: expected on/off, true/false or 1/0")
    if kind is dict:
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(f'{name}={raw!r}: expected a JSON object, e.g. {{"key": 1}}')
        return value
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r}: expected a whole number") from None
    return raw


def from_environment(environ: Mapping[str, str], known: Mapping[str, Any]) -> dict[str, Any]:
    """The settings named by ``PORTAL_*`` variables and ``DATABASE_URL`` in ``environ``."""
    found: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("PORTAL_"):
            continue
        key = name if name in known else name.removeprefix("PORTAL_")
        if key not in known or isinstance(known[key], list | timedelta):
            continue  # unknown, or not settable from a string
        found[key] = _convert(raw, key, known[key], name)
    if environ.get("DATABASE_URL"):
        found["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(environ["DATABASE_URL"])
    return found


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for ``postgres://`` / ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url
