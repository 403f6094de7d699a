"""Claims Portal Console: the application factory."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from flask import Flask

from portal import checks
from portal import hosts
from portal import private_files
from portal.config import DEFAULTS
from portal.config import ENVIRONMENTS
from portal.config import PORTAL_ENVIRONMENTS
from portal.config import from_environment
from portal.config import instance_path
from portal.config import normalise_database_url
from portal.helpdesk import business_hours

log = logging.getLogger(__name__)

#: PORTAL_BASE_URL when unset in development and tests (production refuses to start without).
DEVELOPMENT_BASE_URL = "http://127.0.0.1:5000"
#: Seconds to wait for a PostgreSQL connection before the request gets a 503.
PG_CONNECT_TIMEOUT = 5


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings → their check (a production start refuses errors) → logs (the
    warnings) → extensions → blueprints → CLI → errors → headers → jobs."""
    app = _flask_app()
    load_config(app, config)
    problems = check_config(app)
    register_operations(app)
    log_problems(app, problems)
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    register_error_handlers(app)
    register_security_headers(app)
    start_scheduler_if_enabled(app)
    return app


def _flask_app() -> Flask:
    return Flask(
        __name__,
        instance_path=str(instance_path()),
        instance_relative_config=True,
        template_folder="templates",  # inside the package: a wheel carries them (pyproject)
        static_folder="static",
    )


def settings_app(config: Mapping[str, Any] | None = None) -> Flask:
    """An app with its settings loaded and nothing else, never refused: ``portal check``
    shows the configuration a production start would refuse."""
    app = _flask_app()
    load_config(app, config)
    return app


def refuse_unworkable_settings(config: Mapping[str, Any] | None = None) -> None:
    """Raise the :class:`ConfigError` ``create_app(config)`` would raise for its settings,
    without building the app: gunicorn's master calls it before forking its workers
    (deploy/gunicorn.conf.py), so a refused start is one message, not a traceback per worker."""
    check_config(settings_app(config))


def load_config(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Defaults, then ``instance/config.py``, then the environment, then ``overrides``.

    Where each setting came from is kept in ``app.extensions`` for ``portal check``.
    """
    from portal import effective_config

    app.config.from_mapping(DEFAULTS)
    sources: dict[str, str] = {}
    before = dict(app.config)
    app.config.from_pyfile("config.py", silent=True)
    changed = (k for k, v in app.config.items() if k not in before or v != before[k])
    sources.update((k, "instance/config.py") for k in changed)
    environment = from_environment(os.environ, app.config)
    app.config.update(environment)
    sources.update((k, "environment") for k in environment)
    if overrides:
        app.config.update(overrides)
        sources.update((k, "the factory's mapping") for k in overrides)
    app.extensions[effective_config.SOURCES] = sources
    c = app.config
    if c["PORTAL_ENV"] not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}")
    c["PORTAL_ENVIRONMENT"] = str(c["PORTAL_ENVIRONMENT"]).strip().lower()
    if c["PORTAL_ENVIRONMENT"] not in PORTAL_ENVIRONMENTS:
        raise ConfigError(
            f"PORTAL_ENVIRONMENT must be one of {', '.join(PORTAL_ENVIRONMENTS)} "
            "(which portal this deployment is; Training shows a banner on every page)"
        )
    from portal.second_factor import policy

    unknown_profiles = policy.unknown(c["PORTAL_MFA_REQUIRED"])
    if unknown_profiles:
        raise ConfigError(
            f"PORTAL_MFA_REQUIRED names unknown profiles: {', '.join(unknown_profiles)} "
            f"(use a comma-separated list of {', '.join(policy.PROFILES)}, or nothing)"
        )
    c["PORTAL_MFA_REQUIRED"] = policy.resolve(c)
    try:
        ZoneInfo(c["PORTAL_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"PORTAL_TIMEZONE {c['PORTAL_TIMEZONE']!r} is not a time zone") from None
    try:
        business_hours.WorkingHours.from_config(c)
    except ValueError as error:
        raise ConfigError(f"Helpdesk working hours: {error}") from None
    development = c["PORTAL_ENV"] == "development"
    relaxed = development or c.get("TESTING")  # production's errors refuse the start (below)
    if not c["SECRET_KEY"] and relaxed:
        c["SECRET_KEY"] = secrets.token_hex(32)
        log.warning("no SECRET_KEY set: using a random one; sessions end at restart")
    # Unset in production is an error (portal.checks); development and tests link to the
    # development server, and PORTAL_BASE_URL_UNSET keeps saying it was not set.
    c["PORTAL_BASE_URL_UNSET"] = not c["PORTAL_BASE_URL"]
    if c["PORTAL_BASE_URL_UNSET"] and relaxed:
        c["PORTAL_BASE_URL"] = DEVELOPMENT_BASE_URL
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


def check_config(app: Flask) -> list[checks.Problem]:
    """The settings' problems (``portal.checks``): a production start refuses any error with one
    message naming each (not a traceback).  Tests (TESTING) are not judged."""
    if app.config.get("TESTING"):
        return []
    problems = checks.run(app.config)
    message = checks.refusal(problems)
    if message and app.config["PORTAL_ENV"] == "production":
        raise ConfigError(message)
    return problems


def log_problems(app: Flask, problems: list[checks.Problem]) -> None:
    """One line each in the app's log (JSON in production): the warnings a start accepts (and,
    in development, the errors production would refuse)."""
    for problem in problems:
        level = logging.ERROR if problem.level is checks.Level.ERROR else logging.WARNING
        app.logger.log(level, "configuration %s", problem)


def register_operations(app: Flask) -> None:
    """Logs and request ids, then /healthz, /readyz and /metrics: first, so that every other
    hook's lines and responses carry the request id."""
    from portal import logs
    from portal import request_facts
    from portal.ops import metrics
    from portal.ops import views as ops_views

    logs.init_app(app)
    request_facts.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(ops_views.bp)


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
    # The blueprint idiom (docs/architecture.md §3, rule 3): every route module is listed here,
    # in the order its blueprint is registered; importing it adds its views to ``module.bp``.
    from portal import cookies
    from portal.auth import reset as auth_reset
    from portal.auth import second_factor as auth_second_factor
    from portal.auth import views as auth_views
    from portal.auth.second_factor import require_second_factor
    from portal.auth.views import require_password_change
    from portal.console import audit as console_audit
    from portal.console import bulk_views as console_bulk
    from portal.console import csv_views as console_csv
    from portal.console import dashboard as console_dashboard
    from portal.console import factor_reset as console_factor_reset
    from portal.console import reviews as console_reviews
    from portal.console import users as console_users
    from portal.guides import views as guides_views
    from portal.helpdesk import public as helpdesk_public
    from portal.helpdesk import queue as helpdesk_queue
    from portal.helpdesk import replies as helpdesk_replies
    from portal.helpdesk import report_views as helpdesk_report
    from portal.helpdesk import status_page as helpdesk_status_page
    from portal.newsletter import views as newsletter_views
    from portal.operator import at_risk as operator_at_risk
    from portal.operator import factor_resets as operator_factor_resets
    from portal.operator import user_actions as operator_user_actions
    from portal.operator import views as operator_views
    from portal.portal_home import views as portal_home_views

    route_modules = (
        auth_views,
        auth_reset,
        auth_second_factor,
        portal_home_views,
        console_dashboard,
        console_users,
        console_bulk,
        console_csv,
        console_audit,
        console_factor_reset,
        console_reviews,
        guides_views,
        helpdesk_public,
        helpdesk_queue,
        helpdesk_replies,
        helpdesk_status_page,
        helpdesk_report,
        operator_views,
        operator_user_actions,
        operator_factor_resets,
        operator_at_risk,
        newsletter_views,
        cookies,
    )
    for bp in dict.fromkeys(module.bp for module in route_modules):  # each blueprint once
        app.register_blueprint(bp)
    from portal import layout
    from portal import messages
    from portal.accounts import states

    layout.init_app(app)
    helpdesk_replies.init_app(app)

    from portal import url_cache

    app.jinja_env.globals["url_for"] = url_cache.url_for
    app.jinja_env.globals["message_for_text"] = messages.for_text
    app.jinja_env.globals["has_second_factor"] = _has_second_factor
    app.jinja_env.globals["message_by_code"] = messages.get
    app.jinja_env.globals.update(states.template_globals())
    from portal import clock
    from portal import display
    from portal.audit import kinds as audit_kinds
    from portal.audit import queries as audit_queries

    # One format for every date and time shown (portal/display.py); ``localtime`` is the same
    # filter under its older name.
    app.jinja_env.filters["when"] = display.when
    app.jinja_env.filters["localtime"] = display.when
    app.jinja_env.globals["plural"] = display.plural
    app.jinja_env.globals["today"] = clock.today
    app.jinja_env.globals["console_refusals"] = messages.CONSOLE_REFUSALS
    # The audit log's labels, for every page that shows audit events (one set of labels).
    app.jinja_env.globals["audit_kind_label"] = audit_kinds.label
    app.jinja_env.globals["audit_reason_label"] = audit_queries.reason_label
    app.before_request(require_password_change)
    app.before_request(require_second_factor)  # after: a one-time password is changed first


def _has_second_factor(user_pk: int) -> bool:
    """For one re-rendered row of the users list (a page asks once for all its rows)."""
    from portal.second_factor import service

    return service.has_factor(user_pk)


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
