"""The command line: parse, call one core function, print.

Library errors (DigestError) become one line on stderr and a non-zero exit
(README: Exit statuses); --verbose shows the traceback too. Each area's
commands live in their own module and are registered here.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from digest.cli import (
    bounces,
    editions,
    ops,
    preview,
    send,
    serve,
    sources,
    subscribers,
    summarize,
    worker,
)
from digest.cli.common import command_error
from digest.config import load_settings
from digest.errors import DigestError


class DigestGroup(click.Group):
    """Turns a DigestError from any command into a one-line message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as e:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise command_error(e) from e


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
@click.option("--database", help="SQLite file or postgresql:// URL (DIGEST_DATABASE).")
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
    database: str | None,
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


for module in (
    send,
    editions,
    ops,
    worker,
    preview,
    sources,
    subscribers,
    bounces,
    serve,
    summarize,
):
    for command in module.COMMANDS:
        main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
