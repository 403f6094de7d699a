"""The configuration's problems: one home for ``portal check`` and the production start.

Each check is a function of the settings that yields the :class:`Problem` it finds; add one to
:data:`CHECKS` to extend both.  An ``ERROR`` is a setting that cannot work: a production start
refuses it (``portal.create_app``) and ``portal check`` exits 1.  A ``WARNING`` works but
should be fixed: it is logged at start and listed by ``portal check`` (exit 0).  The checks read
nothing but the settings, except the SQLite one, which reads the mounted filesystems through a
reader that tests replace (:func:`run`'s ``read_mounts``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from portal import hosts

#: A shorter SECRET_KEY is refused in production (docs/security.md CF-01).
MIN_SECRET_KEY_LENGTH = 32
#: Filesystem types (``/proc/mounts``) on which SQLite's file locks cannot be trusted.
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "afs", "ceph"}
    | {"glusterfs", "lustre", "davfs", "fuse.rclone"}
)
MOUNTS = Path("/proc/mounts")
MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


class Level(enum.Enum):
    ERROR = "ERROR"
    WARNING = "WARNING"


@dataclass(frozen=True)
class Problem:
    """What is wrong with ``setting`` and what to do about it."""

    level: Level
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.value}: {self.setting}: {self.message}"


Check = Callable[[Mapping[str, Any]], Iterable[Problem]]


def _production(config: Mapping[str, Any]) -> bool:
    return config.get("PORTAL_ENV") == "production"


def secret_key(config: Mapping[str, Any]) -> Iterable[Problem]:
    """Production needs its own long SECRET_KEY (docs/security.md CF-01)."""
    if not _production(config):
        return
    key = config.get("SECRET_KEY")
    if not key:
        yield Problem(
            Level.ERROR,
            "SECRET_KEY",
            f"required: set PORTAL_SECRET_KEY, or SECRET_KEY in instance/config.py ({MAKE_A_KEY})",
        )
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        yield Problem(
            Level.ERROR,
            "SECRET_KEY",
            f"too short: use at least {MIN_SECRET_KEY_LENGTH} random characters ({MAKE_A_KEY})",
        )


def mfa_required(config: Mapping[str, Any]) -> Iterable[Problem]:
    """PORTAL_MFA_REQUIRED names profiles (docs/rules.md R10); production should require the
    second factor of the staff who can change accounts."""
    from portal.second_factor import policy

    value = config.get(policy.SETTING)
    unknown = policy.unknown(value)
    if unknown:
        yield Problem(
            Level.ERROR,
            policy.SETTING,
            f"unknown profiles {', '.join(unknown)}: use a comma-separated list of "
            f"{', '.join(policy.PROFILES)}",
        )
    elif _production(config) and value is not None and not policy.parse(value):
        yield Problem(
            Level.WARNING,
            policy.SETTING,
            "empty: no profile must use a second factor (the production default is "
            f"{policy.PRODUCTION_DEFAULT})",
        )


def base_url(config: Mapping[str, Any]) -> Iterable[Problem]:
    """Production needs the public https address: every emailed link is built from it."""
    if not _production(config):
        return
    url = str(config.get("PORTAL_BASE_URL") or "")
    if config.get("PORTAL_BASE_URL_UNSET") or not url:
        yield Problem(
            Level.ERROR,
            "PORTAL_BASE_URL",
            "unset: set PORTAL_BASE_URL to the portal's public address "
            "(e.g. https://portal.example.com); every link in emails is built from it",
        )
    elif urlsplit(url).scheme != "https" or not urlsplit(url).netloc:
        yield Problem(
            Level.ERROR,
            "PORTAL_BASE_URL",
            f"{url!r} is not an https:// address: set it to the portal's public address "
            "(e.g. https://portal.example.com); the session cookie is Secure, so the links in "
            "emails must lead to https",
        )


def base_url_is_trusted(config: Mapping[str, Any]) -> Iterable[Problem]:
    """The links in emails must lead to a host the portal answers."""
    trusted = config.get("PORTAL_TRUSTED_HOSTS") or ()
    if config.get("PORTAL_BASE_URL_UNSET"):
        return
    host = urlsplit(str(config.get("PORTAL_BASE_URL") or "")).netloc
    if trusted and host and not hosts.is_allowed(host, tuple(hosts.parse(trusted))):
        yield Problem(
            Level.ERROR,
            "PORTAL_TRUSTED_HOSTS",
            f"does not include {hosts.hostname(host)!r}, the host of PORTAL_BASE_URL: "
            "the links in emails would get a 400",
        )


#: Settings that production should set, and why: a warning each while unset.
WANTED_IN_PRODUCTION = {
    "PORTAL_TRUSTED_HOSTS": "unset, so any Host header is answered; set it to the names the "
    "portal is served under (comma-separated, e.g. portal.example.com) so that other names get "
    "a 400",
    "PORTAL_MAIL_SERVER": "unset, so no email is sent (they are written as .eml files to "
    "PORTAL_MAIL_OUTBOX): set PORTAL_MAIL_SERVER (and PORTAL_MAIL_PORT, PORTAL_MAIL_USERNAME…) "
    "to the SMTP server",
}


def wanted_in_production(config: Mapping[str, Any]) -> Iterable[Problem]:
    """Production without trusted hosts answers any Host header; without an SMTP server it
    only writes emails to files."""
    if _production(config):
        for setting, message in WANTED_IN_PRODUCTION.items():
            if not config.get(setting):
                yield Problem(Level.WARNING, setting, message)


def shared_rate_limit_storage(config: Mapping[str, Any]) -> Iterable[Problem]:
    """Memory storage in production (gunicorn runs several workers): each counts on its own."""
    storage = str(config.get("RATELIMIT_STORAGE_URI") or config.get("PORTAL_RATELIMIT_STORAGE"))
    if _production(config) and config.get("RATELIMIT_ENABLED") and storage.startswith("memory"):
        yield Problem(
            Level.WARNING,
            "PORTAL_RATELIMIT_STORAGE",
            "memory://: each worker process keeps its own counts; with several workers use "
            "redis://… so that the limits hold across them",
        )


CHECKS: list[Check] = [
    secret_key,
    base_url,
    base_url_is_trusted,
    wanted_in_production,
    shared_rate_limit_storage,
    mfa_required,
]


def read_proc_mounts() -> str:
    """The host's mounted filesystems (empty where there is no ``/proc/mounts``)."""
    try:
        return MOUNTS.read_text()
    except OSError:
        return ""


def _unescape(field: str) -> str:
    """``/proc/mounts`` writes a space as ``\\040`` (and tab, newline, backslash likewise)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def filesystem_type(path: Path, mounts: str) -> str | None:
    """The type of the filesystem that holds ``path``: the longest mount point above it."""
    best: tuple[int, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(_unescape(fields[1]))
        if (path == point or point in path.parents) and (
            best is None or len(point.parts) >= best[0]
        ):
            best = (len(point.parts), fields[2])
    return best[1] if best else None


def sqlite_folder(url: str) -> Path | None:
    """The folder of a ``sqlite:///PATH`` database file (None for memory or other databases)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not name or name == ":memory:":
        return None
    return Path(name).resolve().parent


def sqlite_on_network_filesystem(read_mounts: Callable[[], str] = read_proc_mounts) -> Check:
    """The check that SQLite's file is on a local disk, reading the mounts with ``read_mounts``."""

    def check(config: Mapping[str, Any]) -> Iterable[Problem]:
        folder = sqlite_folder(str(config.get("SQLALCHEMY_DATABASE_URI") or ""))
        if folder is None:
            return
        kind = filesystem_type(folder, read_mounts())
        if kind in NETWORK_FILESYSTEMS:
            yield Problem(
                Level.WARNING,
                "DATABASE_URL",
                f"the SQLite file's folder {str(folder)!r} is on a network filesystem ({kind}): "
                "its locks are not reliable there and the database can be corrupted; keep the "
                "file on a local disk (PORTAL_INSTANCE_PATH) or use PostgreSQL",
            )

    return check


def run(
    config: Mapping[str, Any],
    checks: Iterable[Check] | None = None,
    *,
    read_mounts: Callable[[], str] = read_proc_mounts,
) -> list[Problem]:
    """Every problem of ``checks`` (default: :data:`CHECKS` and the SQLite filesystem check),
    errors first."""
    if checks is None:
        checks = [*CHECKS, sqlite_on_network_filesystem(read_mounts)]
    found = [problem for check in checks for problem in check(config)]
    return sorted(found, key=lambda p: p.level is not Level.ERROR)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.level is Level.ERROR]


def refusal(problems: Iterable[Problem]) -> str | None:
    """The one message a production start refuses with (None: no error), naming each error."""
    found = errors(problems)
    if not found:
        return None
    lines = [f"the configuration has {len(found)} error(s), so the portal does not start:"]
    lines += [f"  {p}" for p in found]
    lines.append("Run `portal check` to see the whole configuration and every problem.")
    return "\n".join(lines)
