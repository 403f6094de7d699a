"""What operators and their tools read: ``/healthz``, ``/readyz`` and ``/metrics`` (docs/deploy.md).

The three answer without a session (no cookie is read or set), are never rate-limited, and
carry no version, host name or error text (``/metrics`` only behind its token).
"""

from __future__ import annotations

import hmac

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import jsonify
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest
from werkzeug.wrappers import Response

from portal import clock
from portal.extensions import db
from portal.extensions import limiter
from portal.ops import metrics
from portal.ops import readiness
from portal.ops.figures import DatabaseFigures

bp = Blueprint("ops", __name__)
limiter.exempt(bp)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers.  Never looks at the database."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: 503 while the database is unreachable, unmigrated or behind the code."""
    state = readiness.check(current_app, db.engine)
    return jsonify(state.body()), 200 if state.ready else 503


def _authorised() -> None:
    """404 while no token is set (the route does not exist); 401 without a bearer token;
    403 with a wrong one."""
    token = current_app.config.get("PORTAL_METRICS_TOKEN")
    if not token:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        abort(401)
    if not hmac.compare_digest(given.strip().encode(), str(token).encode()):
        abort(403)


@bp.get("/metrics")
def metrics_page() -> Response:
    _authorised()
    registry = metrics.registry()
    body = generate_latest(registry)
    body += generate_latest(_figures_registry())
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)


def _figures_registry() -> CollectorRegistry:
    figures = CollectorRegistry(auto_describe=False)
    figures.register(DatabaseFigures(clock.now()))
    return figures
