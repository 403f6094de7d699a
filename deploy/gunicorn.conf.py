"""gunicorn settings for the Claims Portal Console in production.

    gunicorn -c deploy/gunicorn.conf.py 'app:app'

Command-line options override these (the tests run ``-c deploy/gunicorn.conf.py -w 2 …``).
See docs/deploy.md for the whole production path.
"""

import os

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
#: Never log query strings: a password reset link carries its token in the path, not the query,
#: but keep the format free of request headers (cookies) all the same.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
