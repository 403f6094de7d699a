"""What every page's layout needs (base.html): Live or Training, the cookie message."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import current_app

from portal.cookies import message_hidden

ENVIRONMENT_NAMES = {"live": "Live", "training": "Training"}


def layout_context() -> dict[str, Any]:
    environment = current_app.config.get("PORTAL_ENVIRONMENT", "live")
    return {
        "portal_environment": environment,
        "environment_name": ENVIRONMENT_NAMES.get(environment, environment),
        "is_training": environment == "training",
        "cookie_message_hidden": message_hidden(),
    }


def init_app(app: Flask) -> None:
    app.context_processor(layout_context)
