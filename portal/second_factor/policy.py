"""``PORTAL_MFA_REQUIRED``: the profiles that must use a second factor (docs/rules.md R10).

A comma-separated list of profiles.  Unset (None), it is ``administrator,helpdesk,portal_team``
in production and empty in development and tests (which pass it explicitly).  An unknown
profile is a configuration error at start (``portal.create_app``) and in ``portal check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The profiles (``Profile`` values) spelt out here: ``portal.config`` may not import models.
PROFILES = ("claims_handler", "administrator", "helpdesk", "portal_team")
PRODUCTION_DEFAULT = "administrator,helpdesk,portal_team"
SETTING = "PORTAL_MFA_REQUIRED"


def parse(value: object) -> tuple[str, ...]:
    """The profiles named in ``value`` (a comma-separated string, or a list), trimmed and
    lower-cased, in order, without repeats."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return tuple(dict.fromkeys(str(v).strip().lower() for v in items if str(v).strip()))


def unknown(value: object) -> list[str]:
    return [p for p in parse(value) if p not in PROFILES]


def resolve(config: Mapping[str, Any]) -> str:
    """The setting's value with its default applied (as stored in the app's config)."""
    value = config.get(SETTING)
    if value is None:
        production = config.get("PORTAL_ENV") == "production" and not config.get("TESTING")
        return PRODUCTION_DEFAULT if production else ""
    return ",".join(parse(value))


def required(config: Mapping[str, Any], profile: str) -> bool:
    """Must a user of ``profile`` use a second factor?"""
    return profile in parse(config.get(SETTING))
