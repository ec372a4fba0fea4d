"""`digest serve`: sign-up, unsubscribe, preferences and the archive on the web."""

from __future__ import annotations

import signal
from types import FrameType

import click

from digest import web
from digest.cli.common import settings_of


@click.command()
@click.option("--host", help="Address to listen on (DIGEST_SERVE_HOST, default 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port to listen on (DIGEST_SERVE_PORT, default 8089).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the web pages: sign-up, unsubscribe, preferences and the archive.

    Put it behind a reverse proxy with HTTPS and set DIGEST_BASE_URL to its
    public address (see the README).

    Example: digest serve --port 8089
    """
    settings = settings_of(ctx)
    server = web.create_server(settings, host, port)
    click.echo(
        f"Serving on http://{server.effective_host}:{server.effective_port} "
        f"for {settings.base_url}; Ctrl-C or SIGTERM stops."
    )
    signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C: a clean stop, exit status 0
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


COMMANDS = (serve,)
