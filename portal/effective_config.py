"""The effective configuration as ``portal check`` prints it: each setting, where it came from,
and never a secret (keys, tokens and passwords are masked, and so is the password in a URL)."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from portal.config import DEFAULTS

MASK = "********"
#: Settings shown besides DEFAULTS' own (set by the factory or by hand in instance/config.py).
EXTRA_SETTINGS = ("SECRET_KEY_FALLBACKS", "PERMANENT_SESSION_LIFETIME")
#: A setting (or an options key) whose name ends with one of these words is a secret as a whole
#: (``SECRET_KEY``, ``PORTAL_METRICS_TOKEN``, ``PORTAL_MAIL_PASSWORD``), and so is anything
#: named after the secret key (``SECRET_KEY_FALLBACKS``: the mail encryption keys come from it).
SECRET_WORDS = frozenset({"KEY", "TOKEN", "PASSWORD", "PASSWD", "SECRET"})
#: The key of the app's setting sources (``portal.load_config``) in ``app.extensions``.
SOURCES = "portal.setting_sources"


def is_secret(name: str) -> bool:
    upper = name.upper()
    return "SECRET_KEY" in upper or upper.replace("-", "_").split("_")[-1] in SECRET_WORDS


def mask_url(url: str) -> str:
    """``scheme://user:password@host/…`` → ``scheme://user:********@host/…``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or "@" not in parts.netloc:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    if ":" not in credentials:
        return url
    user = credentials.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def masked(name: str, value: Any) -> Any:
    """``value`` as it may be shown: no secret, no password in a URL or an options mapping."""
    if value is None or value == "" or value == ():
        return value
    if is_secret(name):
        return MASK
    if isinstance(value, Mapping):
        return {k: masked(str(k), v) for k, v in value.items()}
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def setting_names(config: Mapping[str, Any]) -> list[str]:
    """The settings that matter: DEFAULTS' own, then the extra ones that are set."""
    return [*DEFAULTS, *(name for name in EXTRA_SETTINGS if name in config)]


def lines(config: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> Iterable[str]:
    """``NAME = value  (source)`` for each setting, secrets masked."""
    sources = sources or {}
    for name in setting_names(config):
        value = masked(name, config.get(name))
        if name == "PORTAL_BASE_URL" and config.get("PORTAL_BASE_URL_UNSET"):
            source = "unset" if value is None else "unset: the development default"
        elif name in sources:
            source = sources[name]
        else:
            source = "default" if config.get(name) == DEFAULTS.get(name) else "derived"
        yield f"{name} = {value!r}  ({source})"
