"""``flask --app app portal …``: organisations, users and demo data, through the services."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import click
from flask import current_app
from flask.cli import AppGroup

from portal import clock
from portal import messages
from portal.accounts import rules
from portal.accounts import service
from portal.accounts import states
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.devsetup import write_private
from portal.extensions import db

portal_cli = AppGroup("portal", help="Claims Portal Console administration.")

DEMO_ORG = "Demo Claims Ltd"
DEMO_USERS = (
    ("demo.admin1", "Alex Admin", Profile.ADMINISTRATOR, True),
    ("demo.admin2", "Bea Admin", Profile.ADMINISTRATOR, True),
    ("demo.handler1", "Chris Handler", Profile.CLAIMS_HANDLER, True),
    ("demo.handler2", "Dana Handler", Profile.CLAIMS_HANDLER, True),
    ("demo.handler3", "Eli Handler", Profile.CLAIMS_HANDLER, True),
    ("demo.helpdesk", "Fran Helpdesk", Profile.HELPDESK, False),
    ("demo.portalteam", "Gus Portal-Team", Profile.PORTAL_TEAM, False),
)
#: The demo Administrator with a TOTP second factor (R10): its secret is printed with the logins.
DEMO_MFA_ADMIN = "demo.admin.2fa"


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _find_user_or_fail(user_id: str) -> User:
    user = service.find_user(user_id)
    if user is None:
        _fail(f"No user with the User ID {user_id!r}")
    return user


@portal_cli.command("create-org")
@click.argument("name")
def create_org(name: str) -> None:
    """Create an organisation called NAME."""
    try:
        with write_transaction(db.session):
            org = service.create_organisation(name, actor=None, now=clock.now())
    except service.AccountError as exc:
        _fail(str(exc))
    click.echo(f"Created organisation {org.name!r} (id {org.id}).")


@portal_cli.command("create-user")
@click.option("--org", "org_name", help="The organisation (Claims Handlers and Administrators).")
@click.option("--user-id", required=True)
@click.option("--profile", required=True, type=click.Choice([p.value for p in Profile]))
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True, help="The user's full name.")
@click.option(
    "--expires-on",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Expiry date (YYYY-MM-DD); default PORTAL_DEFAULT_EXPIRY_DAYS from today.",
)
def create_user(
    org_name: str | None, user_id: str, profile: str, email: str, full_name: str, expires_on: object
) -> None:
    """Create a user and print its one-time password (changed at first login)."""
    org = None
    if org_name:
        org = service.find_organisation(org_name)
        if org is None:
            _fail(f"No organisation called {org_name!r} (create it with: portal create-org)")
    today = clock.today()
    expiry: date | None
    if expires_on is not None:
        expiry = expires_on.date()  # type: ignore[attr-defined]
        if not rules.expiry_allowed(expiry, today=today):
            _fail(f"--expires-on must be a date after today ({today})")
    elif Profile(profile) in (Profile.HELPDESK, Profile.PORTAL_TEAM):
        expiry = None
    else:
        expiry = today + timedelta(days=current_app.config["PORTAL_DEFAULT_EXPIRY_DAYS"])
    try:
        with write_transaction(db.session):
            user, password = service.create_user(
                user_id=user_id,
                full_name=full_name,
                email=email,
                profile=profile,
                organisation=org,
                expires_on=expiry,
                actor=None,
                now=clock.now(),
            )
    except service.AccountError as exc:
        _fail(str(exc))
    click.echo(f"Created {user.profile_label} {user.user_id!r}.")
    click.echo(f"One-time password (shown once; must be changed at first login): {password}")


def _demo_password_file() -> Path:
    return Path(current_app.instance_path) / "demo-passwords.txt"


@portal_cli.command("demo-data")
@click.option("--once", is_flag=True, help="Do nothing (but print the logins) if already loaded.")
@click.option("--force", is_flag=True, help="Allow loading demo data outside development.")
def demo_data(once: bool, force: bool) -> None:
    """Load a demo organisation and users, and print how to log in."""
    if current_app.config["PORTAL_ENV"] != "development" and not force:
        _fail("demo-data is for development (PORTAL_ENV=development); use --force to insist")
    pw_file = _demo_password_file()
    if service.find_organisation(DEMO_ORG) is not None:
        if not once:
            _fail(f"Demo data is already loaded ({DEMO_ORG!r} exists)")
        click.echo("Demo data already loaded.")
        if pw_file.exists():
            click.echo(pw_file.read_text())
        return
    now = clock.now()
    expiry = clock.today() + timedelta(days=current_app.config["PORTAL_DEFAULT_EXPIRY_DAYS"])
    lines = ["Demo logins (Admin Console: /console/login, Portal: /portal/login):"]
    with write_transaction(db.session):
        org = service.create_organisation(DEMO_ORG, actor=None, now=now)
        for user_id, name, profile, member in DEMO_USERS:
            password = service.one_time_password()
            service.create_user(
                user_id=user_id,
                full_name=name,
                email=f"{user_id}@example.com",
                profile=profile,
                organisation=org if member else None,
                expires_on=expiry if member else None,
                actor=None,
                now=now,
                password=password,
            )
            lines.append(f"  {profile.label:<15} {user_id:<16} {password}")
        lines += _demo_second_factor(org, expiry, now)
    text = "\n".join(lines) + "\n"
    pw_file.parent.mkdir(parents=True, exist_ok=True)
    write_private(pw_file, text)
    click.echo(text)


def _demo_second_factor(org: object, expiry: object, now: object) -> list[str]:
    """One demo Administrator with a TOTP factor (inside demo-data's transaction): the lines
    that tell how to log in with it."""
    from portal.second_factor import service as second_factor
    from portal.second_factor import totp

    password = service.one_time_password()
    user, _ = service.create_user(
        user_id=DEMO_MFA_ADMIN,
        full_name="Hal Two-Factor",
        email=f"{DEMO_MFA_ADMIN}@example.com",
        profile=Profile.ADMINISTRATOR,
        organisation=org,  # type: ignore[arg-type]
        expires_on=expiry,  # type: ignore[arg-type]
        actor=None,
        now=now,  # type: ignore[arg-type]
        password=password,
    )
    secret = totp.new_secret()
    # Confirmed with the previous step's code, so that the current one works at once.
    earlier = clock.now() - timedelta(seconds=totp.STEP_SECONDS)
    added = second_factor.add_totp(
        user,
        secret=secret,
        code=totp.code_at(secret, earlier),
        name="Demo authenticator",
        now=now,  # type: ignore[arg-type]
    )
    assert added is not None
    return [
        f"  {Profile.ADMINISTRATOR.label:<15} {DEMO_MFA_ADMIN:<16} {password}",
        f"    with a second factor: TOTP secret {secret}",
        f"    (add it to an authenticator app, or: oathtool --totp -b {secret})",
    ]


def _set_enabled_from_cli(user_id: str, enabled: bool) -> None:
    from portal.accounts import management

    user = _find_user_or_fail(user_id)
    now, today = clock.now(), clock.today()
    due = rules.due_disable(user.to_state(), now, today)
    with write_transaction(db.session):
        decision = management.set_enabled(None, user, enabled=enabled, now=now, today=today)
    user = _find_user_or_fail(user_id)
    if decision.outcome not in (rules.Outcome.OK, rules.Outcome.NO_CHANGE):
        _fail(
            messages.cli_refusal(
                decision.outcome,
                user_id=user.user_id,
                expires_on=user.expires_on,
                due=due is not None,
            )
        )
    state = states.state_label(states.state_of(user)).lower()
    verb = "unchanged" if decision.outcome is rules.Outcome.NO_CHANGE else "now"
    if due is not None and enabled:
        why = messages.CLI_DUE[due].format(expires_on=user.expires_on)
        click.echo(f"{user.user_id} was due ({why}): it could not log in.")
    click.echo(f"{user.user_id}: {verb} {state} (audited as done by 'system' from the CLI).")


@portal_cli.command("enable")
@click.argument("user_id")
def enable(user_id: str) -> None:
    """Break-glass: tick Enabled for USER_ID (R6; refused while its expiry date is reached).

    A user whose Enabled is still ticked but who is due (expiry date reached, or inactive for
    more than the R2 limit) is reported as due: disabled by the system first, then re-enabled (or
    refused, for expiry: extend the date with ``portal extend`` first).
    """
    _set_enabled_from_cli(user_id, True)


@portal_cli.command("disable")
@click.argument("user_id")
def disable(user_id: str) -> None:
    """Break-glass: remove the access of USER_ID (both flags unticked, as R4)."""
    _set_enabled_from_cli(user_id, False)


@portal_cli.command("check")
def check() -> None:
    """Show the effective configuration (secrets masked) and every problem: ERRORs (a production
    start refuses them; exit status 1) and WARNINGs (exit status 0)."""
    from portal import checks_report

    raise click.exceptions.Exit(checks_report.show(current_app))


@portal_cli.command("extend")
@click.argument("user_id")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="The new expiry date (YYYY-MM-DD), after today in PORTAL_TIMEZONE.",
)
def extend(user_id: str, to: object) -> None:
    """Set the expiry date of USER_ID (R3: after today), audited as the operator's extend is.

    Access itself is not restored: run ``portal enable USER_ID`` afterwards for a user whose
    expiry date had been reached.
    """
    from portal.accounts import management

    user = _find_user_or_fail(user_id)
    new_date = to.date()  # type: ignore[attr-defined]
    now, today = clock.now(), clock.today()
    old = user.expires_on
    with write_transaction(db.session):
        decision = management.set_expiry(None, user, new_date, now=now, today=today)
    if decision.outcome is rules.Outcome.REFUSED_PAST_DATE:
        _fail(f"{messages.EXPIRY_NOT_AFTER_TODAY} ({today}): {new_date} was refused")
    user = _find_user_or_fail(user_id)
    if decision.outcome is rules.Outcome.NO_CHANGE:
        click.echo(f"{user.user_id}: expiry date unchanged ({new_date}).")
        return
    click.echo(
        f"{user.user_id}: expiry date now {new_date} (was {old or 'none'}; audited as done by "
        "'system' from the CLI)."
    )
    if states.state_of(user) is not rules.Access.HAS_ACCESS:
        click.echo(f"Access is still off: run `portal enable {user.user_id}` to restore it.")


def _register_job_commands() -> None:
    from portal import mail_commands
    from portal.jobs.commands import register

    register(portal_cli)
    mail_commands.register(portal_cli)


_register_job_commands()


def _register_backup_commands() -> None:
    from portal.backup.commands import backup
    from portal.backup.commands import restore

    portal_cli.add_command(backup)
    portal_cli.add_command(restore)


_register_backup_commands()


def _register_offboarding_commands() -> None:
    from portal.offboarding.commands import org_cli
    from portal.offboarding.commands import users_cli

    portal_cli.add_command(org_cli)
    portal_cli.add_command(users_cli)


_register_offboarding_commands()


def _register_second_factor_commands() -> None:
    from portal.second_factor.commands import second_factor_cli

    portal_cli.add_command(second_factor_cli)


_register_second_factor_commands()
