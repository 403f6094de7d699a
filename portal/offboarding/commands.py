"""``portal org export NAME PATH``, ``portal org delete NAME`` and ``portal users find TEXT``."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import or_
from sqlalchemy import select

from portal import clock
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.accounts.service import find_organisation
from portal.db import write_transaction
from portal.extensions import db
from portal.offboarding import erase as erasing
from portal.offboarding import export as exporting
from portal.search_text import contains_pattern

org_cli = AppGroup("org", help="A firm's data: export it, erase it.")
users_cli = AppGroup("users", help="Users across every firm.")


def _organisation(name: str) -> Organisation:
    org = find_organisation(name)
    if org is None:
        raise click.ClickException(f"No organisation called {name!r}.")
    return org


@org_cli.command("export")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def export(name: str, path: Path) -> None:
    """Write a zip (mode 0600) of the firm's users, audit events and Helpdesk requests (with
    screenshots) as CSV and JSON; manifest.json says how requests were matched."""
    org = _organisation(name)
    if path.exists():
        raise click.ClickException(f"{path} already exists: choose another path.")
    if not path.parent.is_dir():
        raise click.ClickException(f"The folder {path.parent} does not exist.")
    manifest = exporting.write(db.session, org, path, now=clock.now())
    db.session.rollback()
    counts = manifest["counts"]
    click.echo(
        f"Exported {org.name!r} to {path}: {counts['users']} users, {counts['audit']} audit "
        f"events, {counts['requests']} Helpdesk requests."
    )


@org_cli.command("delete")
@click.argument("name")
@click.option(
    "--export",
    "export_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The zip `portal org export` made of this firm, as it is now.",
)
@click.option("--confirm", "typed", help="The firm's name, typed (else asked for).")
def delete(name: str, export_path: Path, typed: str | None) -> None:
    """Erase a firm, its users, their audit events and its Helpdesk requests, for good.

    Needs an export of the firm as it is now (--export) and its name typed again.  Recorded in
    the operator-level audit trail (kind organisation_erased).
    """
    org = _organisation(name)
    try:
        manifest = exporting.read_manifest(export_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if manifest.get("organisation", {}).get("id") != org.id:
        raise click.ClickException(f"{export_path} is an export of another organisation.")
    now_counts = exporting.counts(db.session, org)
    if manifest.get("counts") != now_counts:
        raise click.ClickException(
            f"{export_path} is out of date (then {manifest.get('counts')}, now {now_counts}): "
            "export the firm again."
        )
    if typed is None:
        typed = click.prompt(f"Type the organisation's name ({org.name}) to erase it")
    if typed != org.name:
        raise click.ClickException("The name typed does not match: nothing was deleted.")
    sha = exporting.digest(export_path)
    db.session.rollback()
    with write_transaction(db.session):
        org = _organisation(name)
        counts = erasing.erase(db.session, org, now=clock.now(), export_sha256=sha)
    click.echo(
        f"Erased {name!r}: {counts['users']} users, {counts['audit_events']} audit events, "
        f"{counts['helpdesk_requests']} Helpdesk requests (recorded as organisation_erased)."
    )


@users_cli.command("find")
@click.argument("text")
@click.option("--limit", default=50, show_default=True, help="At most this many users.")
def find(text: str, limit: int) -> None:
    """Users whose User ID, name or email contains TEXT (any case), in every firm."""
    key = normalise_key(text)
    if not key:
        raise click.BadParameter("type some text to look for", param_hint="TEXT")
    if limit < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--limit")
    pattern = contains_pattern(key)
    rows = db.session.execute(
        select(User, Organisation.name)
        .outerjoin(Organisation, User.organisation_id == Organisation.id)
        .where(
            or_(
                User.user_id_key.like(pattern, escape="\\"),
                User.full_name_key.like(pattern, escape="\\"),
                User.email_key.like(pattern, escape="\\"),
            )
        )
        .order_by(User.user_id_key)
        .limit(limit + 1)
    ).all()
    db.session.rollback()
    if not rows:
        click.echo(f"No user matches {text!r}.")
        return
    now, today = clock.now(), clock.today()
    for user, firm in rows[:limit]:
        # The rules decide (docs/rules.md R3): past its expiry date, a user not yet swept has none.
        access = "has access" if states.has_access(user, now, today) else "no access"
        click.echo(
            f"{user.user_id:<24} {user.full_name:<28} {user.email:<32} "
            f"{firm or '(Portal team)':<24} {user.profile:<15} {access}"
        )
    if len(rows) > limit:
        click.echo(f"… more than {limit}: narrow the text or raise --limit.")
