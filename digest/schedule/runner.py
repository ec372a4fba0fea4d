"""`digest run`: APScheduler glue around the slot runner, and the lease that
lets only one runner send. APScheduler only wakes us up; which slot runs is
decided from the database (digest/schedule/run.py), so a spurious firing is harmless.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

from digest import job
from digest.config import Settings
from digest.deliver.send import ProgressFn
from digest.errors import DigestError, LeaseHeld
from digest.schedule.run import UNFINISHED, SlotResult, run_due
from digest.schedule.slots import next_slot, trigger_for
from digest.schedule.zones import AudienceZones
from digest.store import lease, opened

log = logging.getLogger(__name__)
# A send stopped by an error (SMTP down, unreadable list) is retried this long after.
RETRY_AFTER = timedelta(minutes=5)
# APScheduler may wake us a hair before the slot by the wall clock (its wait
# is monotonic; NTP may slew the wall clock): count that slot as due.
EARLY_TOLERANCE = timedelta(seconds=1)
WATCH_SECONDS = 60
# How often `digest run` reads the bounce mailbox, when there is one.
BOUNCE_POLL = timedelta(minutes=5)


class LeaseGuard(threading.Event):
    """The stop a send checks between messages: set by a signal, and also
    once the lease has run out unrenewed, so a runner that was paused past its
    lease (while another took over) sends no further message."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop
        self.valid_until = 0.0

    def is_set(self) -> bool:
        return self.stop.is_set() or time.time() >= self.valid_until


class Runner:
    """The lease, and the tick APScheduler calls; one per `digest run`."""

    def __init__(self, settings: Settings, stop: threading.Event, role: str = "digest run") -> None:
        self.settings = settings
        self.stop = stop
        self.holder = lease.holder_name(role)
        self.lock_held = lease.RunnerLock(settings.database, self.holder)
        self.zone = ZoneInfo(settings.timezone)
        self.lock = threading.Lock()
        self.scheduler: BackgroundScheduler | None = None
        self.lost: lease.Lease | None = None
        self.results: list[SlotResult] = []
        self.announced = ""
        self.retry_at: datetime | None = None
        self.guard = LeaseGuard(stop)
        self.zones = AudienceZones()

    def try_lease(self) -> lease.Lease | None:
        """Take or renew the lease; the other holder when it is not ours."""
        clock = time.time()
        with opened(self.settings.database) as db:
            other = self.lock_held.acquire(db, self.settings.lease_seconds, clock)
        if other is None:
            self.guard.valid_until = clock + self.settings.lease_seconds
        if self.lock_held.took_over is not None:
            log.warning(
                "took over the runner lease of %s, which no longer runs",
                self.lock_held.took_over.holder,
                extra={"holder": self.holder},
            )
            self.lock_held.took_over = None
        return other

    def wait_for_lease(self, busy: str) -> bool:
        """Hold the lease; when another holds it, wait or raise LeaseHeld (busy="exit")."""
        other = self.try_lease()
        if other is not None and busy == "exit":
            # `digest send` never waits, whatever lease_busy says: do not suggest it.
            standby = (
                ""
                if self.holder.startswith("digest send")
                else (", or set lease_busy = 'wait' to stand by")
            )
            raise LeaseHeld(
                f"the lease is held by {other.holder}, since {other.acquired_at}, until "
                f"{other.expires} unless renewed; only one may send at a time: stop it "
                f"first{standby}"
            )
        if other is not None:
            log.warning("lease held by %s until %s; waiting", other.holder, other.expires)
        while other is not None:
            if self.stop.wait(self.poll_seconds):
                return False
            other = self.try_lease()
        log.info("holding the runner lease as %s", self.holder, extra={"holder": self.holder})
        return True

    @property
    def poll_seconds(self) -> float:
        return max(0.2, min(10.0, self.settings.lease_seconds / 3))

    def renew(self) -> None:
        """Renew the lease; losing it (we hung past its expiry) stops this runner."""
        try:
            other = self.try_lease()
        except (DigestError, sqlite3.Error) as e:
            log.error("cannot renew the runner lease: %s", e)
            return
        if other is not None:
            log.error("lost the runner lease to %s; stopping", other.holder)
            self.lost = other
            self.stop.set()

    def release(self) -> None:
        try:
            with opened(self.settings.database) as db:
                self.lock_held.release(db)
        except DigestError:
            self.lock_held.release(None)

    def tick(self) -> None:
        """Run whatever is due; again after a long send, for slots due meanwhile.

        A send cut short by an error is retried RETRY_AFTER later (by the
        minute check), not every minute; a new slot due retries it at once.
        """
        with self.lock:
            while not self.stop.is_set():
                now = datetime.now(self.zone) + EARLY_TOLERANCE
                resume = self.retry_at is None or now >= self.retry_at
                try:
                    results = run_due(self.settings, now, self.guard, resume, self.zones)
                except (DigestError, sqlite3.Error) as e:
                    log.error("tick failed: %s; retrying in %s", e, RETRY_AFTER)
                    self.retry_at = now + RETRY_AFTER
                    return
                except Exception:
                    # A bug must not turn into a retry every minute, nor end the
                    # runner: log it with its traceback (on one line) and back off.
                    log.exception("tick failed unexpectedly; retrying in %s", RETRY_AFTER)
                    self.retry_at = now + RETRY_AFTER
                    return
                self.results += results
                if any(r.outcome == UNFINISHED for r in results):
                    self.retry_at = now + RETRY_AFTER
                    return
                if results:
                    self.retry_at = None
                if datetime.now(self.zone) - now < timedelta(minutes=1):
                    break  # nothing long ran: no slot can have come due meanwhile
            self.log_next()

    def read_bounces(self) -> None:
        """Poll the bounce mailbox (DIGEST_BOUNCE_SOURCE); a failure is logged
        and tried again next time, never the end of the runner."""
        try:
            run = job.read_bounces(self.settings)
        except (DigestError, sqlite3.Error) as e:
            log.error("bounce mailbox: %s; trying again in %s", e, BOUNCE_POLL)
            return
        except Exception:
            log.exception("bounce mailbox: reading failed unexpectedly")
            return
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(run.tally.counts.items()))
        if counts:
            log.info("bounces read from %s: %s", run.source, counts)
        for email in run.tally.suppressed:
            log.info("suppressed %s: its mail bounced", email)

    def log_next(self) -> None:
        """Name the next slot, once per slot."""
        zones: frozenset[str] = frozenset()
        if self.settings.local_time:
            with opened(self.settings.database) as db:
                zones = self.zones.of(self.settings.subscribers, db)
        upcoming = next_slot(self.settings.schedule_group, datetime.now(self.zone), zones)
        if upcoming is not None and upcoming.id != self.announced:
            self.announced = upcoming.id
            log.info(
                "next slot %s at %s",
                upcoming.id,
                upcoming.at.isoformat(timespec="minutes"),
                extra={"slot": upcoming.id},
            )


def run_scheduler(settings: Settings, stop: threading.Event | None = None) -> None:
    """Hold the lease, run due slots now, then each slot of the schedule until `stop`.

    On `stop` the message in flight finishes, the rest of the ledger stays
    pending, the lease is released, and the next start resumes the send.
    """
    with _holding(settings, stop or threading.Event()) as runner:
        if runner is None:
            return
        _add_slot_jobs(runner)
        while not runner.stop.wait(1.0):
            pass
        log.info("stopping: letting messages in flight finish")


def run_once(settings: Settings, stop: threading.Event | None = None) -> list[SlotResult]:
    """Hold the lease, run what is due now (catch-up and resumes included),
    and return what each slot or edition came to."""
    with _holding(settings, stop or threading.Event()) as runner:
        if runner is None:
            return []
        runner.tick()
        if settings.bounce_source:
            runner.read_bounces()
        return runner.results


@contextmanager
def _holding(
    settings: Settings, stop: threading.Event, role: str = "digest run", busy: str = ""
) -> Iterator[Runner | None]:
    """The lease, kept renewed by a scheduler job, for the block's duration.

    Yields None when `stop` was set while waiting for the lease.
    """
    runner = Runner(settings, stop, role)
    if not runner.wait_for_lease(busy or settings.lease_busy):
        yield None
        return
    # misfire_grace_time=None: APScheduler never drops a late wakeup on its own;
    # the catch-up window is ours (digest.slots.plan). coalesce: many late
    # wakeups are one. max_instances=1: a job never overlaps itself.
    scheduler = BackgroundScheduler(
        timezone=runner.zone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    scheduler.add_job(
        runner.renew, "interval", seconds=runner.poll_seconds, id="lease", name="lease renewal"
    )
    runner.scheduler = scheduler
    try:
        scheduler.start()
        yield runner
    finally:
        runner.scheduler = None
        scheduler.shutdown(wait=True)
        runner.release()
        log.info("stopped; runner lease released")
    if runner.lost is not None:
        raise LeaseHeld(
            f"stopped: the runner lease passed to {runner.lost.holder} while this process "
            "was not renewing it (paused or overloaded?); raise lease_seconds if this recurs"
        )


def _add_slot_jobs(runner: Runner) -> None:
    assert runner.scheduler is not None
    runner.scheduler.add_job(
        runner.tick,
        trigger_for(runner.settings.schedule_group),
        id="slots",
        name="digest slot",
        next_run_time=datetime.now(runner.zone),  # catch up at once on start
    )
    # The cron wakeup waits on a monotonic timer, which stands still while the
    # machine sleeps and ignores wall-clock jumps: a cheap check every minute
    # keeps a slot from running hours late (or being missed) after either.
    runner.scheduler.add_job(runner.tick, "interval", seconds=WATCH_SECONDS, id="watch")
    if runner.settings.bounce_source:
        runner.scheduler.add_job(
            runner.read_bounces,
            "interval",
            seconds=BOUNCE_POLL.total_seconds(),
            id="bounces",
            next_run_time=datetime.now(runner.zone),
        )


def send_now(
    settings: Settings,
    edition_file: Path | None = None,
    *,
    retry_failed: bool = False,
    progress: ProgressFn | None = None,
) -> job.SendResult:
    """`digest send` under the lease, so it never sends beside `digest run`
    (it could otherwise resume the very edition the runner is sending).

    In the main thread, SIGTERM and SIGINT let the message in flight finish.
    """
    stop = threading.Event()
    signals = stop_on_signals(stop) if _main_thread() else nullcontext()
    with signals, _holding(settings, stop, "digest send", busy="exit") as runner:
        assert runner is not None  # only a stop while waiting yields None; we never wait
        return job.send(
            settings,
            edition_file,
            stop=runner.guard,
            retry_failed=retry_failed,
            progress=progress,
        )


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` instead of killing the process mid-message."""

    def handler(signum: int, frame: FrameType | None) -> None:
        again = stop.is_set()
        stop.set()  # before the log line, which tells a watcher the stop is in effect
        if again:
            log.warning("already stopping; waiting for messages in flight to finish")
        else:
            log.info("received %s", signal.Signals(signum).name)

    previous: dict[signal.Signals, Callable[[int, FrameType | None], object] | int | None] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
