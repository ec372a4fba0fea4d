"""What every command shares: the settings, loaded once on first use, and
how warnings and a library error are shown."""

from __future__ import annotations

from typing import Any

import click

from digest.config import Settings
from digest.errors import DigestError


class CommandError(click.ClickException):
    """A DigestError as one line on stderr, exiting with status 1."""


class NothingNewError(CommandError):
    """Nothing to build or send: not an error, but exit status 3 for scripts."""

    exit_code = 3

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


def command_error(error: DigestError) -> CommandError:
    """The click exception for a library error, with the error's exit status."""
    kind = NothingNewError if error.exit_code == NothingNewError.exit_code else CommandError
    return kind(str(error))


def settings_of(ctx: click.Context) -> Settings:
    """Settings are loaded once, on first use, and shared by the command."""
    obj = ctx.find_root().obj
    if "settings" not in obj:
        try:
            obj["settings"] = obj["load"]()
        except DigestError as e:
            raise command_error(e) from e
    settings: Settings = obj["settings"]
    return settings


def verbose(ctx: click.Context) -> bool:
    return bool(ctx.find_root().obj.get("verbose"))


def warn_problems(problems: Any) -> None:
    for problem in problems:
        click.secho(f"warning: {problem.source}: {problem.message}", fg="yellow", err=True)
