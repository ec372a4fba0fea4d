"""Commands of the subscribers area: `digest subscribers check|export|unsubscribe`
and `digest serve` (unsubscribe, preferences and the archive on the web).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digest import subscribers, web
from digest.cli import main, settings_of
from digest.subscribers import RowError


def _report(problem: RowError) -> None:
    click.secho(str(problem), fg="yellow", err=True)


@main.group(name="subscribers")
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
    count = subscribers.export_list(settings_of(ctx), out, _report)
    click.echo(f"{count} subscriber(s) written to {out or 'standard output'}.", err=True)


@subscribers_group.command()
@click.argument("addresses", nargs=-1, required=True, metavar="ADDRESS_OR_TOKEN...")
@click.pass_context
def unsubscribe(ctx: click.Context, addresses: tuple[str, ...]) -> None:
    """Unsubscribe addresses (or the token from an unsubscribe email) by hand.

    For requests that arrive by email, such as the List-Unsubscribe mailto.

    Example: digest subscribers unsubscribe ada@example.org
    """
    for email in subscribers.unsubscribe(settings_of(ctx), list(addresses)):
        click.echo(f"unsubscribed {email}")


@main.command()
@click.option("--host", help="Address to listen on (DIGEST_SERVE_HOST, default 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port to listen on (DIGEST_SERVE_PORT, default 8025).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the web pages: unsubscribe, preferences and the archive.

    Put it behind a reverse proxy with HTTPS and set DIGEST_BASE_URL to its
    public address (see the README).

    Example: digest serve --port 8025
    """
    settings = settings_of(ctx)
    server = web.create_server(settings, host, port)
    click.echo(
        f"Serving on http://{server.effective_host}:{server.effective_port} "
        f"for {settings.base_url}; Ctrl-C stops."
    )
    server.run()
