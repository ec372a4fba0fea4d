"""`digest editions`: every edition with its state and counts; cancelling one."""

from __future__ import annotations

import json

import click

from digest import job
from digest.cli.common import settings_of


@click.group(name="editions", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_context
def editions_group(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List the newest editions: state (built, sending, sent, cancelled) and
    delivery counts per ledger state.

    Example: digest editions
    """
    if ctx.invoked_subcommand is not None:
        return
    rows = job.edition_list(settings_of(ctx), limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No editions yet. Run 'digest send' or 'digest run' to make one.")
        return
    click.echo(f"{'#':>4}  {'EDITION':18} {'STATE':9} {'CREATED':25} DELIVERIES")
    for row in rows:
        deliveries = row["deliveries"]
        assert isinstance(deliveries, dict)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(deliveries.items())) or "none"
        click.echo(
            f"{row['number']:>4}  {row['id']!s:18} {row['state']!s:9} "
            f"{row['created_at']!s:25} {counts}"
        )


@editions_group.command()
@click.argument("edition_id", metavar="ID")
@click.pass_context
def cancel(ctx: click.Context, edition_id: str) -> None:
    """Cancel an unfinished edition: nothing more of it is sent, and the
    articles no subscriber received go back to the pool for the next one.

    Refused while a send or runner is up (stop it first).

    Example: digest editions cancel 2026-11-30T0700
    """
    done = job.cancel(settings_of(ctx), edition_id)
    click.echo(
        f"Cancelled edition {done.edition_id}: {done.rows} delivery(ies) will not be tried; "
        f"{len(done.returned)} article(s) returned to the pool."
    )


COMMANDS = (editions_group,)
