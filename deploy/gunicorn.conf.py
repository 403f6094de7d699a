"""gunicorn settings for the Claims Portal Console in production.

    gunicorn -c deploy/gunicorn.conf.py 'app:app'

Command-line options override these (the tests run ``-c deploy/gunicorn.conf.py -w 2 …``).
See docs/deploy.md for the whole production path.
"""

import os
import shutil
import tempfile

from gunicorn.glogging import Logger
from gunicorn.http import wsgi

from portal.log_redaction import redact_tokens

#: Behind a reverse proxy on the same host; set PORTAL_BIND=0.0.0.0:8000 only if you must.
bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")
#: Processes.  Each login hashes with argon2id (64 MiB, a few hundred ms of one core), so about
#: one worker per core; the threads cover requests that wait on the database or SMTP.
workers = int(os.environ.get("PORTAL_WORKERS", "4"))
threads = int(os.environ.get("PORTAL_THREADS", "4"))
worker_class = "gthread"
#: Each worker builds its own app after the fork (database pools, background mail threads and,
#: if PORTAL_SCHEDULER is on, a scheduler thread: threads do not survive a fork).
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
#: Recycle workers now and then (bounded memory growth), not all at once.
max_requests = 5000
max_requests_jitter = 500
#: Only the local reverse proxy may set X-Forwarded-* for gunicorn itself; the app trusts them
#: through PORTAL_PROXY_FIX_HOPS (werkzeug's ProxyFix).
forwarded_allow_ips = os.environ.get("PORTAL_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("PORTAL_LOG_LEVEL", "info").lower()
#: Only for plain gunicorn loggers: PortalLogger below writes the app's own format (JSON lines
#: in production).  No request headers (cookies) and no secrets: see TokenRedactingLogger.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

#: Metrics (docs/deploy.md): each worker writes its counters to files in this folder and
#: /metrics adds them up.  Set before any worker imports prometheus_client; emptied at start.
_METRICS_DIR_MADE = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _METRICS_DIR_MADE:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-metrics-")


def on_starting(server):  # type: ignore[no-untyped-def]
    """Refuse, before any worker is forked, a configuration that a production start refuses
    (portal.checks): gunicorn prints the one message naming each error and exits 1.  Then: a
    restart starts counting from zero (Prometheus handles counter resets)."""
    from portal import refuse_unworkable_settings

    try:
        refuse_unworkable_settings()
    except RuntimeError:
        on_exit(server)
        raise
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker that exits leaves its counters (summed) but not its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    if _METRICS_DIR_MADE:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


class TokenRedactingLogger(Logger):
    """gunicorn's logger, with the tokens in request lines and paths replaced by ``[token]``
    (portal.log_redaction: the same redaction as the development server's log)."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_tokens(atoms[key])
        return atoms


class PortalLogger(TokenRedactingLogger):
    """gunicorn's error and access lines in the app's format (``portal.logs``): JSON lines in
    production, text in development, with the request id, user and route the app set."""

    def setup(self, cfg):  # type: ignore[no-untyped-def]
        super().setup(cfg)
        from portal import logs

        chosen = logs.formatter(logs.log_format(os.environ))
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.setFormatter(chosen)

    def access(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        if not self.access_log_enabled:
            return
        from portal import logs

        atoms = self.atoms(resp, req, environ, request_time)  # tokens already redacted
        headers = dict(getattr(resp, "headers", None) or [])
        fields = {
            "request_id": environ.get(logs.ENVIRON_REQUEST_ID) or headers.get("X-Request-ID"),
            "user": environ.get(logs.ENVIRON_USER),
            "route": environ.get(logs.ENVIRON_ROUTE),
            "method": atoms.get("m"),
            "path": atoms.get("U"),
            "status": int(atoms["s"]) if str(atoms.get("s", "")).isdigit() else atoms.get("s"),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "bytes": atoms.get("B"),
            "remote": atoms.get("h"),
            "user_agent": atoms.get("a"),
        }
        try:
            self.access_log.info(
                "%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields
            )
        except Exception:
            self.error("Failed to write the access log line")


logger_class = PortalLogger


class _NoServerHeaderResponse(wsgi.Response):
    """gunicorn's response without its ``Server: gunicorn`` header (which names the software to
    anyone who asks; docs/rules.md §8).  The reverse proxy may add its own."""

    def default_headers(self) -> list[str]:
        return [h for h in super().default_headers() if not h.lower().startswith("server:")]


# The workers are forked from the process that read this file, so they inherit this.
wsgi.Response = _NoServerHeaderResponse  # type: ignore[misc]
