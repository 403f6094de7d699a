"""``flask --app app portal second-factor reset USER_ID``: break-glass (docs/rules.md R10).

For deployments with fewer than two Portal team members, and for the day the two-person rule
cannot be followed: whoever has a shell on the server may reset a user's second factor.  It is
audited with the operating-system account that ran it, and the user is told by email, as for
every other reset (``resets.reset_factors``).
"""

from __future__ import annotations

import getpass

import click
from flask.cli import AppGroup

from portal import clock
from portal import mail_queue
from portal.accounts import service
from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor import resets

second_factor_cli = AppGroup("second-factor", help="Second factors: break-glass reset.")


def operator_name() -> str:
    """The operating-system account running this command (for the audit log)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the uid will do
        import os

        return f"uid {os.getuid()}"


@second_factor_cli.command("reset")
@click.argument("user_id")
def reset(user_id: str) -> None:
    """Remove every second factor of USER_ID and end its sessions (audited; the user is told
    by email).  At its next login the user sets up a factor again."""
    user = service.find_user(user_id)
    if user is None:
        raise click.ClickException(f"No user with the User ID {user_id!r}")
    operator = operator_name()
    with write_transaction(db.session):
        mail = resets.break_glass(user, now=clock.now(), operator=operator)
    mail_id = mail.id
    sent = mail_queue.deliver(mail_id)
    user = service.find_user(user_id)
    assert user is not None
    click.echo(
        f"{user.user_id}: every second factor removed and every session ended "
        f"(audited as done by operator {operator!r} from the CLI)."
    )
    click.echo(
        f"The user was told by email at {user.email}."
        if sent
        else "The email to the user is queued: `portal mail list` shows it."
    )
