"""The send loop: reads ledger rows still to deliver, hands rendered messages
to the pool, records the server's answers, retries what may be retried.

A group of rows is marked `sending` in one commit before its messages go to
the pool, and answers are recorded per group: a crash can repeat at most the
rows left `sending`, and they keep their Message-ID.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from digest.deliver.dkim import DkimKey
from digest.deliver.message import (
    MessageSkeleton,
    envelope_address,
    render_message,
    return_path,
)
from digest.deliver.pacing import Limits, Pacer, backoff
from digest.deliver.pool import Job, Pool, Result, unexpected
from digest.deliver.transports import (
    Channel,
    MaildirTransport,
    Outcome,
    SmtpTransport,
    Transport,
    make_transport,
)
from digest.errors import DigestError
from digest.model import Delivery
from digest.store import audience, ledger
from digest.store.db import Database, now

__all__ = [
    "Channel",
    "DeliveryReport",
    "MaildirTransport",
    "Outcome",
    "Policy",
    "Progress",
    "SmtpTransport",
    "Transport",
    "deliver",
    "make_transport",
]

log = logging.getLogger(__name__)
BATCH = 500  # ledger rows read at a time
GROUP = 50  # rows marked `sending`, and answers recorded, per commit
FLUSH_AFTER = 1.0  # seconds an answer may wait for its group's commit


@dataclass(frozen=True)
class Policy:
    """How hard to try: attempts per run, back-off, limits, signing."""

    max_attempts: int = 3
    retry_delay: float = 5.0
    limits: Limits = field(default_factory=Limits)
    dkim: DkimKey | None = None
    # Which rows to try: the unfinished ones, or (a retry) deferred and failed ones.
    statuses: tuple[str, ...] = (ledger.PENDING, ledger.DEFERRED)
    # Only rows last tried before this ISO time (the runner's deferred rounds).
    tried_before: str | None = None
    # Only rows due by this ISO time: a later wave (local time) waits for its own.
    due_by: str | None = None


@dataclass
class DeliveryReport:
    """Counts for one run of the send loop."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped_suppressed: int = 0
    skipped_empty: int = 0
    stopped: bool = False
    # (line in the list, why): rows that cannot go this way and stay pending.
    row_problems: list[tuple[int, str]] = field(default_factory=list)

    def add(self, status: str, n: int = 1) -> None:
        if n:
            self.counts[status] = self.counts.get(status, 0) + n

    @property
    def done(self) -> int:
        return sum(n for state, n in self.counts.items() if state != ledger.PENDING)


@dataclass(frozen=True)
class Progress:
    """Handed to the caller's callback after each recorded group."""

    done: int
    counts: dict[str, int]
    total: int = 0  # rows this run set out to try


SkeletonFor = Callable[[str], MessageSkeleton]
ProgressFn = Callable[[Progress], None]


def deliver(
    edition: str,
    skeleton_for: SkeletonFor,
    transport: Transport,
    db: Database,
    base_url: str,
    policy: Policy | None = None,
    stop: threading.Event | None = None,
    progress: ProgressFn | None = None,
    worker: str = "",
) -> DeliveryReport:
    """Send the edition to every ledger row in `policy.statuses`.

    Rows are claimed for `worker` BATCH at a time (with PostgreSQL, next to
    any other senders). `skeleton_for` gives the prepared message of a
    variant. Setting `stop` ends the send between messages: in-flight ones
    finish and are recorded, the rest go back to pending. A sender-wide
    failure raises DeliveryError after the same tidy-up.
    """
    policy = policy or Policy()
    run = _Run(edition, transport, db, base_url, policy, stop, progress, worker)
    run.total = ledger.count_in(db, edition, policy.statuses, policy.due_by)
    try:
        for jobs in _claimed(run, skeleton_for):
            run.dispatch(jobs)
            if run.halted:
                break
        run.finish()
    finally:
        run.close()
    if run.error is not None:
        raise run.error
    return run.report


def _claimed(run: _Run, skeleton_for: SkeletonFor) -> Iterator[list[Job]]:
    """Jobs for rows claimed BATCH at a time: pending ones first, then the
    others in `statuses` (deferred, failed) last tried before this run began,
    so a row this run gave up on is not taken again. Only rows due by
    `policy.due_by` (their wave, with local time). Rows whose address was
    suppressed since the fan-out are settled."""
    while not run.halted and (rows := _claim(run)):
        reasons = audience.suppressed_among(run.db, [r.email for r in rows])
        gone = [(r.email, f"suppressed: {reasons[r.email]}") for r in rows if r.email in reasons]
        if gone:
            ledger.settle(run.db, run.edition, gone, ledger.SUPPRESSED)
            run.report.skipped_suppressed += len(gone)
        yield [_job(r, skeleton_for(r.variant)) for r in rows if r.email not in reasons]


def _job(row: Delivery, skeleton: MessageSkeleton) -> Job:
    sender = return_path(skeleton, row.message_id)
    return Job(
        row.email,
        # An international domain goes in its ASCII form; only a non-ASCII
        # local part needs SMTPUTF8 (the transport says when it cannot).
        envelope_address(row.address),
        row.name,
        skeleton,
        row.message_id,
        extra=row.fields,
        sender=sender,
        line=row.line,
    )


def _claim(run: _Run) -> list[Delivery]:
    statuses, before = run.policy.statuses, run.policy.tried_before
    if ledger.PENDING in statuses and before is None:
        rows = ledger.claim(
            run.db, run.edition, (ledger.PENDING,), run.worker, run.batch, None, run.policy.due_by
        )
        if rows:
            return rows
    others = tuple(s for s in statuses if s != ledger.PENDING or before is not None)
    bound = min(before or run.started, run.started)
    if not others:
        return []
    return ledger.claim(
        run.db, run.edition, others, run.worker, run.batch, bound, run.policy.due_by
    )


def claim_size(limits: Limits) -> int:
    """Rows taken per claim: BATCH, or about two seconds' worth under a rate
    limit, so that senders sharing an edition share it evenly."""
    if limits.per_second:
        return max(GROUP, min(BATCH, int(limits.per_second * 2)))
    return BATCH


class _Run:
    """The mutable state of one send: the pool, buffers, retries, the report."""

    def __init__(
        self,
        edition: str,
        transport: Transport,
        db: Database,
        base_url: str,
        policy: Policy,
        stop: threading.Event | None,
        progress: ProgressFn | None,
        worker: str = "",
    ) -> None:
        self.edition, self.db, self.base_url, self.policy = edition, db, base_url, policy
        self.worker = worker or "local"
        self.started = now()
        self.batch = claim_size(policy.limits)
        self.stop = stop or threading.Event()
        self.progress = progress
        pacer = Pacer(policy.limits, threading.Event())
        self.pool = Pool(transport, pacer, self.stop, policy.dkim)
        self.window = max(8, 8 * transport.connections)
        self.report = DeliveryReport()
        self.error: DigestError | None = None
        self.retries: list[tuple[float, int, Job, str]] = []
        self.busy: set[str] = set()  # waiting for a retry or given up in this run
        self.answers: list[tuple[str, str, str]] = []
        self.oldest_answer = 0.0
        self.bounced: list[tuple[str, str]] = []
        self.untried: list[str] = []
        self.total = 0

    @property
    def halted(self) -> bool:
        if self.stop.is_set() and not self.pool.halt.is_set():
            self.report.stopped = True
            self.pool.halt.set()
        return self.pool.halt.is_set()

    def dispatch(self, jobs: list[Job]) -> None:
        for start in range(0, len(jobs), GROUP):
            group = jobs[start : start + GROUP]
            if self.halted:
                ledger.release(self.db, self.edition, [j.email for j in jobs[start:]])
                return
            for index, job in enumerate(group):
                self._make_room()
                if self.halted:
                    untried = [j.email for j in group[index:]] + [
                        j.email for j in jobs[start + GROUP :]
                    ]
                    ledger.release(self.db, self.edition, untried)
                    return
                self._submit(job)

    def _submit(self, job: Job) -> None:
        try:
            message = render_message(
                job.skeleton, self.base_url, job.address, job.name, job.message_id, job.extra
            )
        except Exception as e:  # one subscriber's data fails that delivery, never the send
            log.warning("building the message to %s failed", job.address, exc_info=True)
            self._take(Result(job, Outcome(ledger.FAILED, unexpected(e))))
            return
        self.pool.submit(job, message)

    def _make_room(self) -> None:
        while (result := self.pool.next_result(None)) is not None:
            self._take(result)
        self._flush_if_due()
        self._send_due_retries()
        while self.pool.in_flight >= self.window and not self.halted:
            self._wait_for_answer(0.2)

    def _wait_for_answer(self, timeout: float) -> None:
        result = self.pool.next_result(timeout)
        if result is not None:
            self._take(result)
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        # A full group, or a slow send whose answers would otherwise wait long.
        if len(self.answers) >= GROUP or (
            self.answers and time.monotonic() - self.oldest_answer > FLUSH_AFTER
        ):
            self._flush()

    def _take(self, result: Result) -> None:
        job, outcome = result.job, result.outcome
        if result.error is not None and self.error is None:
            self.error = result.error
        if outcome is None:
            self.untried.append(job.email)
            return
        retry = outcome.status == ledger.DEFERRED and (
            outcome.busy or job.attempt < self.policy.max_attempts
        )
        status = outcome.status
        if retry and not self.halted:
            self._retry_later(job, outcome.reply, outcome.busy)
            status = ledger.SENDING  # still ours: no other sender may take it meanwhile
        else:
            self.report.add(outcome.status)
        if outcome.status == ledger.BOUNCED:
            self.bounced.append((job.email, f"bounced: {outcome.reply}"))
        if outcome.status == ledger.PENDING:
            self.report.row_problems.append((job.line, f"{outcome.reply}; left pending"))
        if not self.answers:
            self.oldest_answer = time.monotonic()
        self.answers.append((job.email, status, outcome.reply))

    def _retry_later(self, job: Job, reply: str, busy: bool = False) -> None:
        delay = backoff(job.attempt, self.policy.retry_delay)
        again = replace(job, attempt=job.attempt + 1)
        if busy:
            # The server said to slow down, not that this message is wrong: it
            # goes again when the pool's pause ends, and spends none of its
            # tries (the pool gives up if the server never recovers).
            delay = max(0.0, self.pool.pacer.paused_until - time.monotonic())
            again = job
        self.busy.add(job.email)
        heapq.heappush(self.retries, (time.monotonic() + delay, id(job), again, reply))

    def _send_due_retries(self) -> None:
        now = time.monotonic()
        while self.retries and self.retries[0][0] <= now and not self.halted:
            job = heapq.heappop(self.retries)[2]
            self._flush()  # its answer so far is recorded before it goes out again
            self._submit(job)

    def _flush(self) -> None:
        if self.answers:
            ledger.record_results(self.db, self.edition, self.answers, self.bounced)
            self.answers, self.bounced = [], []
            if self.progress is not None:
                self.progress(Progress(self.report.done, dict(self.report.counts), self.total))
        if self.untried:
            ledger.release(self.db, self.edition, self.untried)
            self.report.add(ledger.PENDING, len(self.untried))
            self.untried = []

    def finish(self) -> None:
        """Wait for retries and in-flight answers; whatever is left stays deferred."""
        while (self.retries or self.pool.in_flight) and not self.halted:
            self._send_due_retries()
            wait = self.retries[0][0] - time.monotonic() if self.retries else 0.2
            self._wait_for_answer(min(0.2, max(0.001, wait)))
        while self.pool.in_flight:
            self._wait_for_answer(0.2)
        # Retries not made (attempts used up, or a stop) leave their rows deferred.
        self._flush()
        self.report.add(ledger.DEFERRED, len(self.retries))
        left = [(job.email, reply) for _, _, job, reply in self.retries]
        ledger.settle(self.db, self.edition, left, ledger.DEFERRED)
        self.retries = []

    def close(self) -> None:
        self.pool.halt.set()
        self.pool.close()
        while (result := self.pool.next_result(None)) is not None:
            self._take(result)
        self._flush()
