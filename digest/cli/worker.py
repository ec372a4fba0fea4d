"""`digest worker`: a sender that takes ledger rows of any edition going out
(PostgreSQL), on any number of hosts."""

from __future__ import annotations

import threading

import click

from digest import logs, schedule
from digest.cli.common import settings_of, verbose
from digest.deliver.worker import work


@click.command()
@click.option("--once", is_flag=True, help="Exit when nothing is left to claim.")
@click.pass_context
def worker(ctx: click.Context, once: bool) -> None:
    """Deliver ledger rows of every edition going out, until SIGTERM or Ctrl-C.

    Needs DIGEST_DATABASE=postgresql://...; runs on any number of hosts,
    each through its own SMTP settings and rate limits. Rows are claimed in
    batches (FOR UPDATE SKIP LOCKED), so none goes to two workers; a worker
    that stops beating its heart for DIGEST_WORKER_TIMEOUT seconds has its
    rows given back, with their Message-ID. SIGTERM lets the messages in
    flight finish and gives the rest back.

    Example: digest worker
    """
    settings = settings_of(ctx)
    logs.configure("debug" if verbose(ctx) else settings.log_level, settings.log_format)
    stop = threading.Event()
    with schedule.stop_on_signals(stop):
        report = work(settings, stop, once)
    for edition_id, sent in report.editions.items():
        counts = ", ".join(f"{n} {s}" for s, n in sorted(sent.counts.items()))
        click.echo(f"edition {edition_id}: {counts or 'nothing'}")


COMMANDS = (worker,)
