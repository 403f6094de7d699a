"""Email bodies, rendered from the templates in ``portal/templates/email/``.

One way to write an email: a ``.txt`` template per message, rendered by :func:`render` with
the values it needs, then queued with ``portal.mail_queue.enqueue``.  The templates are the
text as sent: autoescaping is off for ``.txt`` (a name with "&" stays "&"), the file's final
newline is kept, and a block tag (``{% if %}``, ``{% for %}``) takes its own line without
leaving a blank one behind.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from jinja2 import Environment
from jinja2 import select_autoescape

#: The product's name as the emails spell it.
APP_NAME = "Claims Portal Console"
#: Where the templates are, under the app's template folder.
FOLDER = "email"
EXTENSION_KEY = "portal.emails"


def _environment() -> Environment:
    """The app's Jinja environment (its loader and filters) with the settings for plain text;
    made once per app, with a cache of its own (templates compiled for web pages differ).
    ``app_name`` is passed to every template by :func:`render`."""
    env = current_app.extensions.get(EXTENSION_KEY)
    if env is None:
        env = current_app.jinja_env.overlay(
            autoescape=select_autoescape(["html"], default_for_string=False),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            cache_size=50,
        )
        current_app.extensions[EXTENSION_KEY] = env
    return env


def render(template: str, /, **values: Any) -> str:
    """The body of the email ``portal/templates/email/<template>`` (e.g. ``"lockout_user.txt"``)
    with ``values`` and ``app_name``."""
    return _environment().get_template(f"{FOLDER}/{template}").render(app_name=APP_NAME, **values)
