"""Operations commands: `digest run` (the scheduler) and `digest status`.

The work happens in digest/schedule/.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click

from digest import logs, schedule
from digest.cli.common import settings_of, verbose


@click.command()
@click.option("--once", is_flag=True, help="Run what is due now (catch-up included), then exit.")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Run the schedule: one edition per slot, until SIGTERM or Ctrl-C.

    Each slot of the `schedule` cron line (in `timezone`) collects, builds
    and sends. A slot missed by less than catch_up_minutes runs at start.
    Only one runner sends at a time (a lease); a stop lets the messages in
    flight finish, and the next start resumes the send. With --once, the exit
    status is 1 when a slot or send it ran was stopped by an error.

    Example: digest run
    """
    settings = settings_of(ctx)
    logs.configure("debug" if verbose(ctx) else settings.log_level, settings.log_format)
    stop = threading.Event()
    with schedule.stop_on_signals(stop):
        if not once:
            schedule.run_scheduler(settings, stop)
            return
        failed = [r for r in schedule.run_once(settings, stop) if r.failed]
    if failed:
        for result in failed:
            click.echo(f"failed: {result.slot or result.edition}: {result.detail}", err=True)
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the last and next slot, the runner, editions and their deliveries.

    Also the skipped slots, each source's health (failing ones named), the
    number of suppressed addresses, and under each edition its newest
    deferred, bounced or failed deliveries with the server's last reply.

    Example: digest status --json
    """
    facts = schedule.report(settings_of(ctx))
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    for line in _lines(facts):
        click.echo(line)


def _source_lines(found: dict[str, Any]) -> list[str]:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(found["counts"].items()))
    lines = [f"sources       {counts or 'none configured'} (details: digest sources)"]
    for row in found["health"]:
        if row["status"] in ("warning", "error", "failing"):
            lines.append(f"  {row['status']}: {row['source']}: {row['last_error']}")
    if found["problems"]:
        lines.append(f"  {len(found['problems'])} problem(s) at slot {found['checked_at_slot']}:")
        lines += [f"    {p}" for p in found["problems"]]
    return lines


def _lines(facts: dict[str, Any]) -> list[str]:
    last, upcoming, runner = facts["last_slot"], facts["next_slot"], facts["runner"]
    lines = [f"schedule      {facts['schedule']} ({facts['timezone']})"]
    if last:
        shown = f"{last['outcome']}: {last['detail']}" if last["detail"] else last["outcome"]
        lines.append(f"last slot     {last['slot']}  {shown}")
    else:
        lines.append("last slot     none yet (start 'digest run')")
    lines.append(
        f"next slot     {upcoming['at'] if upcoming else 'none: the schedule has no more'}"
    )
    if runner and runner["active"]:
        lines.append(f"runner        {runner['holder']} (lease until {runner['expires']})")
    elif runner:  # a runner that crashed or was killed: its lease ran out
        lines.append(f"runner        none running (last: {runner['holder']}, no longer running)")
    else:
        lines.append("runner        none running")
    for found in facts["workers"]:
        lines.append(f"worker        {found['id']} (heartbeat {found['silent']:.0f} s ago)")
    lines.append(f"skipped slots {facts['skipped_slots']}")
    lines += _source_lines(facts["sources"])
    lines.append(f"suppressed    {facts['suppressions']} address(es)")
    if not facts["editions"]:
        lines.append("editions      none yet. Run 'digest send' or 'digest run' to make one.")
    for row in facts["editions"]:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(row["deliveries"].items()))
        lines.append(
            f"#{row['number']:<4} {row['id']}  {row['state']:9} {row['created']}  "
            f"{counts or 'no deliveries'}"
        )
        for wave in row.get("waves", []):
            counts = ", ".join(f"{n} {s}" for s, n in sorted(wave["deliveries"].items()))
            lines.append(f"      wave {wave['due_at'] or 'at once':25} {counts}")
        lines += [
            f"      {p['status']:<8} {p['email']}  {p['updated_at']}  {p['last_reply']}"
            for p in row.get("problems", [])
        ]
    return lines


COMMANDS = (run, status)
