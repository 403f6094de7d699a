"""What every page's layout needs (base.html): Live or Training, the cookie message."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import current_app
from flask import has_request_context
from flask import request

ENVIRONMENT_NAMES = {"live": "Live", "training": "Training"}
#: The one cookie choice (/cookies): its name and the value that hides the message.
CHOICE_COOKIE = "portal-cookie-message"
HIDDEN = "hidden"


def message_hidden() -> bool:
    """Whether this browser hid the cookie message (False outside a request: a mail template)."""
    return has_request_context() and request.cookies.get(CHOICE_COOKIE) == HIDDEN


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
