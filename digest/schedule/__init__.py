"""Schedule: `digest run` (APScheduler glue, slots, catch-up, the lease),
`digest send` under the same lease, and what `digest status` reports."""

from digest.schedule.run import UNFINISHED, SlotResult, run_due
from digest.schedule.runner import run_once, run_scheduler, send_now, stop_on_signals
from digest.schedule.status import report

__all__ = [
    "UNFINISHED",
    "SlotResult",
    "report",
    "run_due",
    "run_once",
    "run_scheduler",
    "send_now",
    "stop_on_signals",
]
