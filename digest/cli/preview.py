"""`digest preview`: the editor's live preview, served on 127.0.0.1."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path

import click

from digest.cli.common import settings_of
from digest.preview import PreviewServer


@click.command()
@click.option(
    "--edition",
    "edition_file",
    type=click.Path(path_type=Path),
    help="Preview this edition file (re-rendered whenever it changes).",
)
@click.option("--port", type=int, help="Port on 127.0.0.1 (DIGEST_PREVIEW_PORT; 0 picks one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in a browser.")
@click.pass_context
def preview(
    ctx: click.Context, edition_file: Path | None, port: int | None, open_browser: bool
) -> None:
    """Serve a live preview of the next edition; nothing is sent or marked.

    Shows desktop and mobile side by side, the text twin, subject, preheader
    and size, as any subscriber of the list would get it, and reloads when a
    template, digest.toml, an article file or the edition file changes.

    Example: digest preview --edition out/edition.json --open
    """
    settings = settings_of(ctx)  # a bad digest.toml stops here, with its message
    try:
        server = PreviewServer(ctx.find_root().obj["load"], edition_file, port)
    except OSError as e:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{settings.preview_port if port is None else port}: "
            f"{e.strerror}; choose another --port"
        ) from e
    server.start()
    click.echo(f"Preview at {server.url} (Ctrl-C stops it)")
    if open_browser:
        webbrowser.open(server.url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("Stopping the preview.")
    finally:
        server.stop()


COMMANDS = (preview,)
