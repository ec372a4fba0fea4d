"""`digest sources`: each source's health, as a table or as JSON."""

from __future__ import annotations

import json

import click

from digest import job
from digest.cli.common import settings_of

COLOURS = {"failing": "red", "error": "yellow", "warning": "yellow", "new": "cyan"}


@click.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def sources_command(ctx: click.Context, as_json: bool) -> None:
    """List every source with its last success, last error, consecutive
    failures and item counts; failing sources come first, in red.

    Example: digest sources --json
    """
    rows = job.source_health(settings_of(ctx))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No sources configured. Add some to [[sections]] in digest.toml.")
        return
    click.echo(f"{'STATUS':8} {'FAILS':>5} {'ITEMS':>5} {'NEW':>4}  {'LAST SUCCESS':25} SOURCE")
    for row in rows:
        status = str(row["status"])
        shown = status.upper() if status == "failing" else status
        line = (
            f"{shown:8} {row['failures']:>5} {row['items']:>5} {row['new_items']:>4}  "
            f"{row['last_success'] or '-':25} {row['source']}"
        )
        click.secho(line, fg=COLOURS.get(status), bold=status == "failing")
        if row["last_error"] and status != "ok":
            click.echo(f"{'':8} last error ({row['last_error_at']}): {row['last_error']}")
    failing = [r for r in rows if r["status"] == "failing"]
    if failing:
        threshold = settings_of(ctx).source_failure_threshold
        click.secho(
            f"{len(failing)} source(s) FAILING ({threshold} or more failed runs in a row):"
            " fix or remove them.",
            fg="red",
            bold=True,
            err=True,
        )


COMMANDS = (sources_command,)
