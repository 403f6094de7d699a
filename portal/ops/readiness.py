"""Is this node ready for traffic?  The database answers, its schema is not behind the code,
and (reported, never blocking) the rate-limit Redis answers.

Each check runs on a connection of its own, so a failure never leaves the request's session
in a failed transaction, and nothing is cached between probes: the first probe after the
database goes (or comes back) says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

#: The database's state, as /readyz reports it.
OK = "ok"
UNREACHABLE = "unreachable"
UNMIGRATED = "unmigrated"
BEHIND = "behind"
AHEAD = "ahead"
#: Redis: a reachability only ("degraded" never makes the node unready).
DEGRADED = "degraded"
NOT_USED = "not_used"

#: How long a Redis ping may take before it counts as down (seconds).
REDIS_TIMEOUT = 0.5
_HEADS_KEY = "portal.migration_heads"


@dataclass
class Readiness:
    database: str
    redis: str
    warnings: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.database in (OK, AHEAD)

    def body(self) -> dict[str, Any]:
        """The JSON answer: states only, never a version, a host name or an error text."""
        if not self.ready:
            status = "unavailable"
        elif self.warnings or self.redis == DEGRADED:
            status = "degraded"
        else:
            status = "ok"
        answer: dict[str, Any] = {
            "status": status,
            "checks": {"database": self.database, "redis": self.redis},
        }
        if self.warnings:
            answer["warnings"] = self.warnings
        return answer


def _script(app: Flask) -> tuple[frozenset[str], ScriptDirectory]:
    """The code's migration heads, read once per process from the migrations folder."""
    cached = app.extensions.get(_HEADS_KEY)
    if cached is None:
        script = ScriptDirectory(app.extensions["migrate"].directory)
        cached = (frozenset(script.get_heads()), script)
        app.extensions[_HEADS_KEY] = cached
    return cached


def schema_state(stored: set[str], heads: frozenset[str], script: ScriptDirectory) -> str:
    """``ok``, ``unmigrated``, ``behind`` or ``ahead`` for the revisions the database holds."""
    if not stored:
        return UNMIGRATED
    if heads <= stored:
        return OK
    for revision in stored:
        try:
            found = script.get_revision(revision)
        except Exception:  # alembic raises several kinds for an id it does not know
            found = None
        if found is None:
            return AHEAD  # a newer release migrated first (a rolling upgrade)
    return BEHIND


def database_state(engine: Engine, app: Flask) -> str:
    heads, script = _script(app)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            try:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            except Exception:
                return UNMIGRATED  # no alembic_version table: never migrated
    except Exception as exc:
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        return UNREACHABLE
    return schema_state({str(row[0]) for row in rows}, heads, script)


def redis_state(storage_uri: str) -> str:
    """Ping the rate-limit Redis named by ``PORTAL_RATELIMIT_STORAGE`` (independent of the
    limiter, which may have fallen back to memory)."""
    if not storage_uri.startswith(("redis://", "rediss://")):
        return NOT_USED
    import redis

    client = redis.Redis.from_url(
        storage_uri, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    try:
        client.ping()
    except Exception as exc:
        log.warning("readiness: rate-limit Redis unreachable (%s)", type(exc).__name__)
        return DEGRADED
    finally:
        client.close()
    return OK


def check(app: Flask, engine: Engine) -> Readiness:
    state = Readiness(
        database=database_state(engine, app),
        redis=redis_state(str(app.config.get("PORTAL_RATELIMIT_STORAGE") or "")),
    )
    if state.database == AHEAD:
        state.warnings.append(
            "the database schema is newer than this code (a rolling upgrade?): "
            "upgrade this node soon"
        )
    return state
