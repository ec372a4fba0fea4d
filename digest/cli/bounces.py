"""`digest bounces`: read the bounce mailbox and apply what it reports."""

from __future__ import annotations

import json

import click

from digest import job
from digest.cli.common import settings_of

LABELS = (
    ("hard", "hard"),
    ("soft", "soft"),
    ("delay", "delayed (still retried out there: nothing final)"),
    ("unmatched", "naming no delivery of ours"),
    ("none", "other mail"),
    ("already", "read before"),
)


@click.command(name="bounces")
@click.argument("source", required=False, metavar="[SOURCE]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def bounces(ctx: click.Context, source: str | None, as_json: bool) -> None:
    """Read bounce reports and apply them to their deliveries.

    SOURCE is a Maildir folder, an mbox file or imaps://user@host/INBOX
    (the password in DIGEST_BOUNCE_PASSWORD); DIGEST_BOUNCE_SOURCE by
    default. A hard bounce suppresses the address at once, soft ones after
    DIGEST_SOFT_BOUNCE_LIMIT in a row. Every message read is marked (a
    Maildir moves it into .digest-bounces or .digest-other, an mbox file
    gets an X-Digest-Bounce header, IMAP a keyword), so a second run does
    nothing.

    Example: digest bounces /var/mail/bounces/
    """
    run = job.read_bounces(settings_of(ctx), source or "")
    counts = run.tally.counts
    if as_json:
        found = {"source": run.source, "counts": counts, "suppressed": run.tally.suppressed}
        click.echo(json.dumps(found, indent=2))
        return
    shown = ", ".join(f"{counts[key]} {label}" for key, label in LABELS if counts.get(key))
    click.echo(f"{run.source}: {sum(counts.values())} message(s) read: {shown or 'nothing new'}")
    for email in run.tally.suppressed:
        click.echo(f"suppressed {email}")


COMMANDS = (bounces,)
