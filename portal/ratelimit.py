"""The rate limiter: Flask-Limiter, made to degrade rather than break (the spec's §8).

When its storage (Redis) cannot be reached, every limit is kept in this process's memory
instead (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``), requests are served as usual, the storage
is tried again now and then (Flask-Limiter backs off up to about half a minute) and used again
as soon as it answers.  The limiter's warnings go to the log at most once a minute each, one
line each, without a traceback (:class:`OncePerInterval`), however many requests see the fault.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_limiter import Limiter

#: Flask-Limiter's logger.
LOGGER_NAME = "flask-limiter"
#: At most one record of each warning (or error) a minute.
WARNING_INTERVAL_SECONDS = 60.0

#: Attributes that Flask-Limiter fills from the first app's settings and then keeps for the
#: life of the process (the settings of a later app in the same process would be ignored).
#: :meth:`PortalLimiter.init_app` puts them back as the constructor left them, so each app is
#: limited by its own settings (the tests build many apps in one process).
_PER_APP_STATE = (
    "_default_limits_per_method",
    "_default_limits_exempt_when",
    "_default_limits_deduct_when",
    "_default_limits_cost",
    "_application_limits_per_method",
    "_application_limits_exempt_when",
    "_application_limits_deduct_when",
    "_application_limits_cost",
    "_in_memory_fallback",
    "_in_memory_fallback_enabled",
    "_headers_enabled",
    "_header_mapping",
    "_retry_after",
    "_strategy",
    "_storage_options",
    "_swallow_errors",
    "_fail_on_first_breach",
    "_on_breach",
    "_on_meta_breach",
    "_key_prefix",
    "_request_identifier",
    "_meta_limits",
    "_storage_dead",
    "_fallback_limiter",
)

#: Redis client options used unless RATELIMIT_STORAGE_OPTIONS names them: a Redis that does
#: not answer (a dropped connection, not a refused one) costs a request at most this long
#: before the limiter falls back to memory.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 1}


class PortalLimiter(Limiter):
    """Flask-Limiter's ``Limiter``, whose every setting comes from the app it is bound to."""

    def __init__(self, key_func: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(key_func=key_func, **kwargs)
        self._pristine = {name: copy.copy(getattr(self, name)) for name in _PER_APP_STATE}

    def init_app(self, app: Flask) -> None:
        for name, value in self._pristine.items():
            setattr(self, name, copy.copy(value))
        # RATELIMIT_DEFAULT and RATELIMIT_APPLICATION are read only while none are set.
        self.limit_manager.set_default_limits([])
        self.limit_manager.set_application_limits([])
        # Its back-off between tries of a dead storage starts afresh too.
        self._Limiter__check_backend_count = 0
        self._Limiter__last_check_backend = time.time()
        storage = str(app.config.get("RATELIMIT_STORAGE_URI") or "")
        if storage.startswith(("redis://", "rediss://", "redis+")):
            app.config["RATELIMIT_STORAGE_OPTIONS"] = {
                **REDIS_TIMEOUTS,
                **(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}),
            }
        super().init_app(app)

    @property
    def falling_back(self) -> bool:
        """True while the storage is out of reach and limits are kept in memory."""
        return bool(self._storage_dead)


class OncePerInterval(logging.Filter):
    """Lets through one warning-or-worse record per message in each ``interval`` seconds.

    The first record after a quiet interval says how many like it were held back meanwhile.
    Records below WARNING always pass.  ``clock`` is injectable for tests (monotonic seconds).
    """

    def __init__(
        self, interval: float = WARNING_INTERVAL_SECONDS, clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock or time.monotonic
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def reset(self, clock: Callable[[], float] | None = None) -> None:
        """Forget what was let through (and use ``clock`` from now on, when given)."""
        with self._lock:
            self._last.clear()
            self._held.clear()
            if clock is not None:
                self.clock = clock

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = str(record.msg)
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.getMessage()} ({held} more like this since the last one)"
            record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            # "Failed to rate limit. Swallowing error" comes with the storage's traceback (a
            # Redis connection reset mid-command): the fault is expected and its stack says
            # nothing, so the error goes on the same line instead.
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def install_log_throttle(logger_name: str = LOGGER_NAME) -> OncePerInterval:
    """Put one :class:`OncePerInterval` on the named logger (once per process) and return it.

    Flask-Limiter gives its logger a ``NullHandler``, which keeps its warnings out of a log
    that nobody configured (Python's last-resort handler, stderr, which gunicorn logs): it is
    removed, so the operator sees them wherever the app's other warnings go.
    """
    logger = logging.getLogger(logger_name)
    for handler in list(logger.handlers):
        if isinstance(handler, logging.NullHandler):
            logger.removeHandler(handler)
    for existing in logger.filters:
        if isinstance(existing, OncePerInterval):
            return existing
    throttle = OncePerInterval()
    logger.addFilter(throttle)
    return throttle
