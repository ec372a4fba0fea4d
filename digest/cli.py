"""The command line: parse, call one core function, print.

Library errors (DigestError) become one line on stderr and a non-zero exit;
--verbose shows the traceback too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from digest import job, plan, schedule
from digest.config import Settings, load_settings
from digest.delivery import Progress
from digest.errors import DigestError


class DigestGroup(click.Group):
    """Turns a DigestError from any command into a one-line message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as e:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise click.ClickException(str(e)) from e


@click.group(cls=DigestGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="digest.toml to use (default: ./digest.toml).",
)
@click.option(
    "--env-file",
    type=click.Path(path_type=Path),
    help="Environment file to read (default: ./.env when present).",
)
@click.option("--database", type=click.Path(path_type=Path), help="SQLite file (DIGEST_DATABASE).")
@click.option(
    "--subscribers", type=click.Path(path_type=Path), help="Subscriber CSV (DIGEST_SUBSCRIBERS)."
)
@click.option("--outbox", type=click.Path(path_type=Path), help="Maildir (DIGEST_OUTBOX).")
@click.option("-v", "--verbose", is_flag=True, help="Log more and show tracebacks.")
@click.version_option(package_name="digest")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: Path | None,
    env_file: Path | None,
    database: Path | None,
    subscribers: Path | None,
    outbox: Path | None,
    verbose: bool,
) -> None:
    """Build a newsletter digest from feeds, pages and files, and send it.

    Example: digest send
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["load"] = lambda: load_settings(
        config_path,
        env_file,
        {"database": database, "subscribers": subscribers, "outbox": outbox},
    )


def settings_of(ctx: click.Context) -> Settings:
    """Settings are loaded once, on first use, and shared by the command."""
    if "settings" not in ctx.obj:
        try:
            ctx.obj["settings"] = ctx.obj["load"]()
        except DigestError as e:
            raise click.ClickException(str(e)) from e
    settings: Settings = ctx.obj["settings"]
    return settings


def warn_problems(problems: Any) -> None:
    for problem in problems:
        click.secho(f"warning: {problem.source}: {problem.message}", fg="yellow", err=True)


@main.command()
@click.pass_context
def collect(ctx: click.Context) -> None:
    """Fetch the configured sources and store the articles that are new.

    Example: digest collect
    """
    count, problems = job.collect_now(settings_of(ctx))
    warn_problems(problems)
    click.echo(f"{count} new article(s) collected.")


@main.command()
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

    Nothing is marked sent: build is for looking and editing.

    Example: digest build --source samples/technology --out out
    """
    result = job.build(settings_of(ctx), list(sources), edition_file, out)
    warn_problems(result.problems)
    for kind, path in result.paths.items():
        click.echo(f"{kind:8} {path}")
    click.echo(f"{result.articles} article(s); HTML {result.html_bytes / 1024:.1f} KB")
    if sources and not result.articles and result.problems:
        raise click.ClickException(
            "no article could be read from the given sources; see the warnings above"
        )


@main.command()
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
    """Collect, build and send a new edition to every active subscriber.

    An unfinished send is resumed first; nobody gets an edition twice.
    SIGTERM or Ctrl-C stops between messages: what is in flight finishes and
    is recorded, the rest stays pending for the next `digest send`.

    Example: digest send --dry-run
    """
    settings = settings_of(ctx)
    if dry_run:
        click.echo(json.dumps(plan.dry_run(settings, edition_file), indent=2))
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
    for row_error in result.row_errors[:20]:
        click.secho(f"warning: skipped {row_error}", fg="yellow", err=True)
    if len(result.row_errors) > 20:
        click.secho(f"warning: {len(result.row_errors) - 20} more row(s) skipped", err=True)
    if result.edition is None:
        what = "no deferred or failed deliveries" if retry_failed else "no edition was made"
        click.echo(f"Nothing {'to retry' if retry_failed else 'new to send'}: {what}.")
        return
    verb = "Resumed" if result.resumed else "Sent"
    if result.stopped:
        verb = "Stopped (run 'digest send' again to finish)"
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.report.counts.items()))
    click.echo(
        f"{verb} edition {result.edition.id} (#{result.edition.number}): "
        f"{counts or 'nothing left to deliver'}; into {result.destination}"
    )
    if result.test_reply:
        click.echo(f"Server answered: {result.test_reply}")


# Commands of each area live in their own module (digest/cli_<area>.py) and
# register themselves on `main`; import them here, one line each.
from digest import cli_areas  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
