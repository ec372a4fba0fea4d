"""`digest subscribers check|export|unsubscribe`: the subscriber list."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digest import job
from digest.cli.common import settings_of
from digest.deliver import subscribers
from digest.deliver.subscribers import RowError


def _report(problem: RowError) -> None:
    click.secho(str(problem), fg="yellow", err=True)


@click.group(name="subscribers")
def subscribers_group() -> None:
    """Check, export and change the subscriber list.

    Example: digest subscribers check subscribers.csv
    """


@subscribers_group.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def check(ctx: click.Context, file: Path) -> None:
    """Validate a subscriber CSV: every bad row and repeated address, by line.

    Addresses are checked for syntax only (no DNS); section keys against the
    configured sections. Exits 1 when anything is wrong, so it can guard an
    import.

    Example: digest subscribers check subscribers.csv
    """
    known = frozenset(s.key for s in settings_of(ctx).sections)
    summary = subscribers.check(file, _report, known)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "none valid"
    unknown = summary.unknown_sections
    more = f", {unknown} with unknown sections" if unknown else ""
    click.echo(
        f"{file}: {summary.rows} row(s): {statuses}; "
        f"{summary.bad} bad row(s), {summary.duplicates} duplicate(s){more}"
    )
    if not summary.ok:
        sys.exit(1)


@subscribers_group.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file (replaced when done) instead of standard output.",
)
@click.pass_context
def export(ctx: click.Context, out: Path | None) -> None:
    """Write the subscriber list with current statuses and sections.

    Unsubscribes, bounces and web preferences from the database replace the
    CSV's values; every other column is kept. Bad and repeated rows are
    reported and left out.

    Example: digest subscribers export --out subscribers.csv
    """
    count = job.export_subscribers(settings_of(ctx), out, sys.stdout, _report)
    click.echo(f"{count} subscriber(s) written to {out or 'standard output'}.", err=True)


@subscribers_group.command()
@click.argument("addresses", nargs=-1, required=True, metavar="ADDRESS_OR_TOKEN...")
@click.pass_context
def unsubscribe(ctx: click.Context, addresses: tuple[str, ...]) -> None:
    """Unsubscribe addresses (or the token from an unsubscribe email) by hand.

    For requests that arrive by email, such as the List-Unsubscribe mailto.

    Example: digest subscribers unsubscribe ada@example.org
    """
    for email in job.unsubscribe(settings_of(ctx), list(addresses)):
        click.echo(f"unsubscribed {email}")


COMMANDS = (subscribers_group,)
