"""gunicorn settings for the Claims Portal Console in production.

    gunicorn -c deploy/gunicorn.conf.py 'app:app'

Command-line options override these (the tests run ``-c deploy/gunicorn.conf.py -w 2 …``).
See docs/deploy.md for the whole production path.
"""

import os

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
loglevel = os.environ.get("PORTAL_LOG_LEVEL", "info")
#: No request headers (cookies) in the access log, and no secrets: see TokenRedactingLogger.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


class TokenRedactingLogger(Logger):
    """gunicorn's logger, with the tokens in request lines and paths replaced by ``[token]``
    (portal.log_redaction: the same redaction as the development server's log)."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_tokens(atoms[key])
        return atoms


logger_class = TokenRedactingLogger


class _NoServerHeaderResponse(wsgi.Response):
    """gunicorn's response without its ``Server: gunicorn`` header (which names the software to
    anyone who asks; SPEC §8).  The reverse proxy may add its own."""

    def default_headers(self) -> list[str]:
        return [h for h in super().default_headers() if not h.lower().startswith("server:")]


# The workers are forked from the process that read this file, so they inherit this.
wsgi.Response = _NoServerHeaderResponse  # type: ignore[misc]
