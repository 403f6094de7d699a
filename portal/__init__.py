"""Claims Portal Console: the application factory."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from flask import Flask

from portal import hosts
from portal import private_files
from portal.config import DEFAULTS
from portal.config import ENVIRONMENTS
from portal.config import PORTAL_ENVIRONMENTS
from portal.config import from_environment
from portal.config import instance_path
from portal.config import normalise_database_url

log = logging.getLogger(__name__)

MIN_SECRET_KEY_LENGTH = 32
#: Seconds to wait for a PostgreSQL connection before the request gets a 503.
PG_CONNECT_TIMEOUT = 5


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings → extensions → blueprints → CLI → errors → headers → jobs."""
    app = Flask(
        __name__,
        instance_path=str(instance_path()),
        instance_relative_config=True,
        template_folder="templates",  # inside the package: a wheel carries them (pyproject)
        static_folder="static",
    )
    load_config(app, config)
    register_operations(app)
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    register_error_handlers(app)
    register_security_headers(app)
    start_scheduler_if_enabled(app)
    return app


def load_config(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Defaults, then ``instance/config.py``, then the environment, then ``overrides``."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(from_environment(os.environ, app.config))
    if overrides:
        app.config.update(overrides)
    c = app.config
    if c["PORTAL_ENV"] not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}")
    c["PORTAL_ENVIRONMENT"] = str(c["PORTAL_ENVIRONMENT"]).strip().lower()
    if c["PORTAL_ENVIRONMENT"] not in PORTAL_ENVIRONMENTS:
        raise ConfigError(
            f"PORTAL_ENVIRONMENT must be one of {', '.join(PORTAL_ENVIRONMENTS)} "
            "(which portal this deployment is; Training shows a banner on every page)"
        )
    try:
        ZoneInfo(c["PORTAL_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"PORTAL_TIMEZONE {c['PORTAL_TIMEZONE']!r} is not a time zone") from None
    development = c["PORTAL_ENV"] == "development"
    if not c["SECRET_KEY"]:
        if not (development or c.get("TESTING")):
            raise ConfigError(
                "SECRET_KEY is required: set PORTAL_SECRET_KEY, or SECRET_KEY in "
                "instance/config.py (python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        c["SECRET_KEY"] = secrets.token_hex(32)
        log.warning("no SECRET_KEY set: using a random one; sessions end at restart")
    elif len(c["SECRET_KEY"]) < MIN_SECRET_KEY_LENGTH and not (development or c.get("TESTING")):
        raise ConfigError(
            f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} random characters "
            "(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if c["SQLALCHEMY_DATABASE_URI"] is None:
        private_files.private_folder(Path(app.instance_path))
        c["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{app.instance_path}/portal.sqlite"
    c["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(c["SQLALCHEMY_DATABASE_URI"])
    if c["SESSION_COOKIE_SECURE"] is None:
        c["SESSION_COOKIE_SECURE"] = not development and not c.get("TESTING")
    if c["SESSION_COOKIE_NAME"] is None:
        secure = c["SESSION_COOKIE_SECURE"]
        c["SESSION_COOKIE_NAME"] = "__Host-portal-session" if secure else "portal-session"
    c["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=c["PORTAL_SESSION_ABSOLUTE_HOURS"])
    if not c.get("RATELIMIT_STORAGE_URI"):
        c["RATELIMIT_STORAGE_URI"] = c["PORTAL_RATELIMIT_STORAGE"]
    if not c.get("RATELIMIT_KEY_PREFIX"):
        # One Redis may serve the live and the training portal: their counts stay apart.
        c["RATELIMIT_KEY_PREFIX"] = f"portal-{c['PORTAL_ENVIRONMENT']}"
    c["PORTAL_TRUSTED_HOSTS"] = hosts.parse(c.get("PORTAL_TRUSTED_HOSTS"))
    # Never put bound values (password hashes, session tokens) into error logs.
    c["SQLALCHEMY_ENGINE_OPTIONS"] = {"hide_parameters": True, **c["SQLALCHEMY_ENGINE_OPTIONS"]}
    if c["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # A connection killed or a server restarted: found at checkout and replaced, and a
        # server that does not answer is given up after a few seconds (a 503, not a hang).
        options = c["SQLALCHEMY_ENGINE_OPTIONS"]
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT, **options.get("connect_args", {})}
        c["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_pre_ping": True,
            **options,
            "connect_args": connect_args,
        }


def register_operations(app: Flask) -> None:
    """Logs and request ids, then /healthz, /readyz and /metrics: first, so that every other
    hook's lines and responses carry the request id."""
    from portal import logs
    from portal.ops import views

    logs.init_app(app)
    views.init_app(app)


def register_extensions(app: Flask) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    from portal import log_redaction
    from portal import models  # noqa: F401  (every model is mapped before Flask-Migrate looks)
    from portal import ratelimit
    from portal.accounts import passwords
    from portal.accounts import session
    from portal.db import configure_sqlite
    from portal.db import include_name
    from portal.extensions import csrf
    from portal.extensions import db
    from portal.extensions import limiter
    from portal.extensions import migrate

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            path = private_files.sqlite_database_path(db.engine.url.database)
            if path is not None and path.parent.is_dir():
                private_files.private_file(path)  # 0600 before SQLite creates it 0644
            configure_sqlite(db.engine)
    migrate.init_app(
        app,
        db,
        directory=os.path.join(app.root_path, "migrations"),
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,  # search indexes made by hand in migrations (portal.db)
    )
    csrf.init_app(app)
    limiter.init_app(app)
    ratelimit.install_log_throttle()
    hosts.init_app(app)  # after the limiter: its Host check runs first
    log_redaction.install_werkzeug_redaction()
    session.init_app(app)
    passwords.init_app(app)
    hops = app.config["PORTAL_PROXY_FIX_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )


def register_blueprints(app: Flask) -> None:
    from portal import input_guard

    input_guard.init_app(app)  # before any rule is added: <int:…> is bounded
    from portal.auth.reset import bp as reset_bp
    from portal.auth.views import bp as auth_bp
    from portal.auth.views import require_password_change
    from portal.console import audit as _audit  # noqa: F401  (each module adds its routes)
    from portal.console import bp as console_bp
    from portal.console import dashboard as _dashboard  # noqa: F401
    from portal.console import users as _users  # noqa: F401
    from portal.cookies import bp as cookies_bp
    from portal.guides.views import bp as guides_bp
    from portal.helpdesk.public import bp as helpdesk_public_bp
    from portal.helpdesk.queue import bp as helpdesk_queue_bp
    from portal.newsletter.views import bp as newsletter_bp
    from portal.operator import bp as operator_bp
    from portal.operator import user_actions as _user_actions  # noqa: F401  (its routes)
    from portal.operator import views as _operator_views  # noqa: F401  (its routes)
    from portal.portal_home.views import bp as portal_home_bp

    for bp in (auth_bp, reset_bp, portal_home_bp, console_bp, guides_bp, helpdesk_public_bp):
        app.register_blueprint(bp)
    for bp in (helpdesk_queue_bp, operator_bp, newsletter_bp, cookies_bp):
        app.register_blueprint(bp)
    from portal import layout
    from portal import messages
    from portal.accounts import states

    layout.init_app(app)

    app.jinja_env.globals["message_for_text"] = messages.for_text
    app.jinja_env.globals.update(states.template_globals())
    app.jinja_env.filters["localtime"] = _localtime
    app.before_request(require_password_change)


def _localtime(moment: datetime) -> str:
    """An aware UTC time shown in PORTAL_TIMEZONE, e.g. "3 Nov 2026 14:05"."""
    from flask import current_app

    local = moment.astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"]))
    return f"{local.day} {local:%b %Y %H:%M}"


def register_cli(app: Flask) -> None:
    from portal.cli import portal_cli

    app.cli.add_command(portal_cli)


def register_error_handlers(app: Flask) -> None:
    from portal import errors

    errors.init_app(app)


def register_security_headers(app: Flask) -> None:
    from portal import security

    security.init_app(app)


def start_scheduler_if_enabled(app: Flask) -> None:
    """Start the nightly jobs only when PORTAL_SCHEDULER is on (``make run``), never in tests,
    and only in a process that serves requests (not the reloader's parent, not other CLI
    commands: see ``runner.wanted``)."""
    if not app.config["PORTAL_SCHEDULER"]:
        return
    import click

    from portal.jobs import runner

    if runner.wanted(app.config, os.environ, click.get_current_context(silent=True)):
        runner.start(app)
