"""``flask --app app portal mail list | retry``: the durable mail queue from the command line."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal import clock
from portal import mail_queue
from portal.extensions import db
from portal.mail_queue import QueuedMail

mail_cli = AppGroup("mail", help="The mail queue: what waits, what went, what failed.")


def age(moment: datetime | None, now: datetime) -> str:
    """A short age ("45s", "12m", "25h", "3d") of ``moment`` (in the future: "in 12m")."""
    if moment is None:
        return "-"
    delta = now - moment
    prefix = ""
    if delta < timedelta(0):
        prefix, delta = "in ", -delta
    seconds = int(delta.total_seconds())
    for unit, size, from_ in (("d", 86_400, 172_800), ("h", 3_600, 3_600), ("m", 60, 60)):
        if seconds >= from_:
            return f"{prefix}{seconds // size}{unit}"
    return f"{prefix}{seconds}s"


@mail_cli.command("list")
@click.option(
    "--status",
    type=click.Choice(mail_queue.STATUSES),
    help="Only messages with this status (default: all).",
)
@click.option("--limit", default=50, show_default=True, help="How many messages, newest first.")
def list_mail(status: str | None, limit: int) -> None:
    """List queued messages: status, purpose, recipient, attempts, ages and the last error."""
    if limit < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--limit")
    query = select(QueuedMail).order_by(QueuedMail.created_at.desc(), QueuedMail.id.desc())
    if status is not None:
        query = query.where(QueuedMail.status == status)
    rows = db.session.scalars(query.limit(limit)).all()
    counts = mail_queue.counts_by_status()
    db.session.rollback()
    now = clock.now()
    click.echo("  ".join(f"{name} {count}" for name, count in counts.items()))
    if not rows:
        click.echo("No message" + (f" with status {status}." if status else " in the queue."))
        return
    click.echo(
        f"{'id':>6}  {'status':<8} {'purpose':<24} {'to':<32} {'tries':>5}  "
        f"{'queued':>7} {'tried':>7} {'next':>9}"
    )
    for row in rows:
        next_try = age(row.next_attempt_at, now) if row.status == mail_queue.PENDING else "-"
        flags = " (secret, wiped)" if row.wiped else " (secret, sealed)" if row.sealed else ""
        click.echo(
            f"{row.id:>6}  {row.status:<8} {row.purpose[:24]:<24} {row.to_address[:32]:<32} "
            f"{row.attempts:>5}  {age(row.created_at, now):>7} "
            f"{age(row.last_attempt_at, now):>7} {next_try:>9}{flags}"
        )
        if row.last_error:
            click.echo(f"        last error: {row.last_error}")


@mail_cli.command("retry")
@click.option(
    "--pending-only", is_flag=True, help="Leave failed messages as they are; retry pending ones."
)
def retry(pending_only: bool) -> None:
    """Try every pending message now, and give each failed one one more attempt.

    Messages whose secret was wiped (expired, or failed) cannot be sent again: the user asks
    for a new link.
    """
    counts = mail_queue.retry_now(include_failed=not pending_only)
    click.echo(
        f"Tried {counts['tried']} message(s): {counts['sent']} sent, "
        f"{counts['still_pending']} not sent (still pending or failed); "
        f"{counts['expired']} expired unsent."
    )


def register(group: AppGroup) -> None:
    """Add ``mail`` to the ``portal`` group."""
    group.add_command(mail_cli)
