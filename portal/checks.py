"""``portal check``: configuration problems and recommendations for a deployment.

Each check is a function of the settings that returns what it finds; add one to :data:`CHECKS`
to extend the command.  A *problem* is something that does not work as configured (the command
exits 1); a *recommendation* is something that works but should be set (exit 0).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from portal import hosts


class Level(enum.Enum):
    PROBLEM = "problem"
    RECOMMENDATION = "recommendation"


@dataclass(frozen=True)
class Finding:
    level: Level
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.value}: {self.setting}: {self.message}"


Check = Callable[[Mapping[str, Any]], Iterable[Finding]]


def _production(config: Mapping[str, Any]) -> bool:
    return config.get("PORTAL_ENV") == "production"


def trusted_hosts(config: Mapping[str, Any]) -> Iterable[Finding]:
    """Production without PORTAL_TRUSTED_HOSTS answers any Host header."""
    if _production(config) and not config.get("PORTAL_TRUSTED_HOSTS"):
        yield Finding(
            Level.RECOMMENDATION,
            "PORTAL_TRUSTED_HOSTS",
            "unset, so any Host header is answered; set it to the names the portal is served "
            "under (comma-separated, e.g. portal.example.com) so that other names get a 400",
        )


def base_url_is_trusted(config: Mapping[str, Any]) -> Iterable[Finding]:
    """The links in emails must lead to a host the portal answers."""
    trusted = config.get("PORTAL_TRUSTED_HOSTS") or ()
    host = urlsplit(str(config.get("PORTAL_BASE_URL") or "")).netloc
    if trusted and host and not hosts.is_allowed(host, tuple(trusted)):
        yield Finding(
            Level.PROBLEM,
            "PORTAL_TRUSTED_HOSTS",
            f"does not include {hosts.hostname(host)!r}, the host of PORTAL_BASE_URL: "
            "the links in emails would get a 400",
        )


def shared_rate_limit_storage(config: Mapping[str, Any]) -> Iterable[Finding]:
    """Memory storage in production: each worker process counts on its own."""
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "")
    if _production(config) and config.get("RATELIMIT_ENABLED") and storage.startswith("memory"):
        yield Finding(
            Level.RECOMMENDATION,
            "PORTAL_RATELIMIT_STORAGE",
            "memory://: each worker process keeps its own counts; with several workers use "
            "redis://… so that the limits hold across them",
        )


CHECKS: list[Check] = [trusted_hosts, base_url_is_trusted, shared_rate_limit_storage]


def run(config: Mapping[str, Any], checks: Iterable[Check] = CHECKS) -> list[Finding]:
    """Every finding of every check, problems first."""
    found = [finding for check in checks for finding in check(config)]
    return sorted(found, key=lambda f: f.level != Level.PROBLEM)
