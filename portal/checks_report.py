"""``portal check``'s output: the effective configuration, then every problem and what to do."""

from __future__ import annotations

import click
from flask import Flask

from portal import checks
from portal import effective_config


def show(app: Flask) -> int:
    """Print the report for ``app``'s settings; the exit status: 1 on any error, else 0."""
    config = app.config
    click.echo(f"Configuration ({config['PORTAL_ENV']}; secrets masked):")
    for line in effective_config.lines(config, app.extensions.get(effective_config.SOURCES)):
        click.echo(f"  {line}")
    click.echo("")
    problems = checks.run(config)
    if not problems:
        click.echo("No problems found.")
        return 0
    click.echo(f"Problems ({len(problems)}):")
    for problem in problems:
        click.echo(str(problem))
    return 1 if checks.errors(problems) else 0
