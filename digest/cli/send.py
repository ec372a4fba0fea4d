"""The main commands: `digest collect`, `digest build` and `digest send`."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from digest import job, schedule
from digest.cli.common import settings_of, warn_problems
from digest.deliver import Progress
from digest.deliver.audience import SEND


@click.command()
@click.pass_context
def collect(ctx: click.Context) -> None:
    """Fetch the configured sources and store the articles that are new.

    Example: digest collect
    """
    count, problems = job.collect_now(settings_of(ctx))
    warn_problems(problems)
    click.echo(f"{count} new article(s) collected.")


@click.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="PATH_OR_URL",
    help="Build from just this source (repeatable), in one section.",
)
@click.option(
    "--edition",
    "edition_file",
    type=click.Path(path_type=Path),
    help="Re-render this edition file instead of building a new one.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for edition.json, digest.html and digest.txt.",
)
@click.pass_context
def build(
    ctx: click.Context, sources: tuple[str, ...], edition_file: Path | None, out: Path
) -> None:
    """Build an edition and write edition.json, digest.html and digest.txt.

    Nothing is recorded or marked sent: build is for looking and editing.
    With nothing new it says so, writes nothing and exits with status 3.

    Example: digest build --source samples/technology --out out
    """
    result = job.build(settings_of(ctx), list(sources), edition_file, out)
    warn_problems(result.problems)
    for kind, path in result.paths.items():
        click.echo(f"{kind:8} {path}")
    click.echo(f"{result.articles} article(s); HTML {result.html_bytes / 1024:.1f} KB")


@click.command()
@click.option(
    "--edition",
    "edition_file",
    type=click.Path(path_type=Path),
    help="Send this edition file (after an editor changed it).",
)
@click.option(
    "--to", "address", metavar="ADDRESS", help="Test send: only to ADDRESS; marks nothing sent."
)
@click.option("--dry-run", is_flag=True, help="Show what would happen; send nothing.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Retry now the deferred and failed deliveries of the newest edition that has some.",
)
@click.pass_context
def send(
    ctx: click.Context,
    edition_file: Path | None,
    address: str | None,
    dry_run: bool,
    retry_failed: bool,
) -> None:
    """Finish an unfinished edition, or collect, build and send a new one.

    An edition is recorded before its first message and stays unfinished
    until every subscriber has a final ledger row: whatever stops a send
    (SIGTERM, Ctrl-C, a missing list, the server down) leaves it for the
    next `digest send` or `digest run`. Nobody gets an edition twice.

    Example: digest send --dry-run
    """
    settings = settings_of(ctx)
    if dry_run:
        report = job.dry_run(settings, edition_file)
        click.echo(json.dumps(report, indent=2))
        return
    if address:
        result = job.test_send(settings, address, edition_file)
    else:
        with progress_bar() as progress:
            result = schedule.send_now(
                settings, edition_file, retry_failed=retry_failed, progress=progress
            )
    warn_problems(result.problems)
    print_send_result(result, retry_failed)
    if result.edition is not None and not settings.smtp_host:
        box = settings.outbox.resolve()
        click.echo(f"The messages are files in {box / 'new'}; read them with: mutt -f {box}")
    if address and not result.test_ok:
        sys.exit(1)


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[Progress], None]]:
    """A bar with messages done, rate and ETA (shown on a terminal only)."""
    started = time.monotonic()
    bars: list[Any] = []

    def show(p: Progress) -> None:
        if not bars:
            bar: Any = click.progressbar(
                length=max(p.total, p.done, 1),
                label="Sending",
                file=sys.stderr,
                show_pos=True,
                item_show_func=lambda rate: f"{rate} msg/s" if rate else None,
            )
            bars.append(bar.__enter__())
        rate = p.done / max(time.monotonic() - started, 1e-6)
        bars[0].update(p.done - bars[0].pos, current_item=f"{rate:.0f}")

    try:
        yield show
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


def print_send_result(result: job.SendResult, retry_failed: bool) -> None:
    delivered = result.delivered
    for row_error in delivered.row_errors[:20]:
        click.secho(f"warning: skipped {row_error}", fg="yellow", err=True)
    if len(delivered.row_errors) > 20:
        click.secho(f"warning: {len(delivered.row_errors) - 20} more row(s) skipped", err=True)
    if result.edition is None:
        what = "no deferred or failed deliveries" if retry_failed else "no edition was made"
        click.echo(f"Nothing {'to retry' if retry_failed else 'new to send'}: {what}.")
        return
    if delivered.fan_out is not None:
        others = ", ".join(
            f"{n} {reason.replace('_', ' ')}"
            for reason, n in sorted(delivered.fan_out.counts.items())
            if reason != SEND
        )
        click.echo(
            f"Edition {result.edition.id}: {delivered.fan_out.recipients} recipient(s)"
            + (f"; no copy for {others}" if others else "")
        )
    verb = "Resumed" if result.resumed else "Sent"
    if result.test_reply:
        verb = "Test copy of"
    elif result.stopped:
        verb = "Stopped (run 'digest send' again to finish)"
    counts = ", ".join(f"{n} {state}" for state, n in sorted(delivered.report.counts.items()))
    click.echo(
        f"{verb} edition {result.edition.id} (#{result.edition.number}): "
        f"{counts or 'nothing left to deliver'}; into {delivered.destination}"
    )
    if result.test_reply:
        click.echo(f"Server answered: {result.test_reply}")
    if delivered.waiting:
        click.echo(
            f"{delivered.waiting} wait for their local time, the next wave at "
            f"{delivered.next_wave}: 'digest run' sends each wave when it comes "
            "(or run 'digest send' again then)"
        )


COMMANDS = (collect, build, send)
