"""The ``portal`` console script: the Flask CLI of the app, with its ``portal`` group on top.

``portal db upgrade``, ``portal sweep``, ``portal backup PATH``, ``portal --version``: the same
commands as ``flask --app app portal …`` in a checkout, for an installed package (no ``app.py``,
no ``--app``).  ``portal portal sweep`` works too (Flask's own group stays reachable).
``portal check`` is the script's own: it reads the settings without building the app, so it
still answers when a production start would be refused.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import click
from flask import Flask
from flask import current_app
from flask.cli import FlaskGroup
from flask.cli import NoAppException
from flask.cli import ScriptInfo

DISTRIBUTION = "claims-portal-console"


def version() -> str:
    """The installed distribution's version (pyproject.toml), or ``unknown`` without metadata."""
    try:
        return package_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def _create_app() -> Flask:
    """The app from the environment; a settings error is a one-line message, not a traceback."""
    from portal import ConfigError
    from portal import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise NoAppException(str(exc)) from None


class PortalCommand(FlaskGroup):
    """Flask's commands (``db``, ``run``, ``shell``…) plus those of the app's ``portal`` group."""

    def _portal_group(self, ctx: click.Context) -> click.Group | None:
        app = ctx.ensure_object(ScriptInfo).load_app()
        if not current_app or current_app._get_current_object() is not app:  # type: ignore[attr-defined]
            ctx.with_resource(app.app_context())
        group = app.cli.commands.get("portal")
        return group if isinstance(group, click.Group) else None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        try:
            group = self._portal_group(ctx)
        except NoAppException:  # Flask's own lookup has printed the reason
            return None
        return group.get_command(ctx, name) if group is not None else None

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        try:
            group = self._portal_group(ctx)
        except NoAppException:  # Flask's own listing has printed the reason
            group = None
        if group is not None:
            names.update(group.list_commands(ctx))
        return sorted(names)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"Claims Portal Console {version()}")
        ctx.exit()


cli = PortalCommand(
    name="portal",
    help="Claims Portal Console administration (the app's Flask CLI).",
    create_app=_create_app,
    add_version_option=False,
    load_dotenv=False,
    params=[
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help="Show the version and exit.",
        )
    ],
)


@cli.command("check", with_appcontext=False)
def check() -> None:
    """Show the effective configuration (secrets masked) and every problem: ERRORs (a production
    start refuses them; exit status 1) and WARNINGs (exit status 0).

    Reads the settings without building the app, so it works when the start is refused.
    """
    from portal import ConfigError
    from portal import checks_report
    from portal import settings_app

    try:
        app = settings_app()
    except ConfigError as exc:  # a setting of the wrong shape (PORTAL_ENV, PORTAL_TIMEZONE…)
        raise click.ClickException(str(exc)) from None
    raise click.exceptions.Exit(checks_report.show(app))


def main() -> None:
    """The console script's entry point."""
    cli.main(prog_name="portal")
