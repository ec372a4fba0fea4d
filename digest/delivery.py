"""The send loop: claims ledger rows, hands rendered messages to the pool,
records the server's answers, retries what may be retried.

A group of rows is marked `sending` in one commit before its messages go to
the pool, and answers are recorded per group: a crash can repeat at most the
rows left `sending`, and they keep their Message-ID.
"""

from __future__ import annotations

import heapq
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from digest import store, store_ledger
from digest.errors import DigestError
from digest.mail import DkimKey, MessageSkeleton, dkim_sign, message_id, render_message
from digest.model import Subscriber
from digest.pacing import Limits, Pacer, backoff
from digest.pool import Job, Pool, Result
from digest.transports import (
    Channel,
    MaildirTransport,
    Outcome,
    SmtpTransport,
    Transport,
    make_transport,
)

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
BATCH = 500  # subscribers claimed per ledger transaction
GROUP = 50  # rows marked `sending`, and answers recorded, per commit
FLUSH_AFTER = 1.0  # seconds an answer may wait for its group's commit


@dataclass(frozen=True)
class Policy:
    """How hard to try: attempts per run, back-off, limits, signing."""

    max_attempts: int = 3
    retry_delay: float = 5.0
    limits: Limits = field(default_factory=Limits)
    dkim: DkimKey | None = None
    retry_failed: bool = False
    retry_only: bool = False  # a retry: rows already in the ledger, nobody new


@dataclass
class DeliveryReport:
    """Counts for one run of the send loop."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped_suppressed: int = 0
    skipped_empty: int = 0
    stopped: bool = False

    def add(self, status: str, n: int = 1) -> None:
        if n:
            self.counts[status] = self.counts.get(status, 0) + n

    @property
    def done(self) -> int:
        return sum(n for state, n in self.counts.items() if state != store.PENDING)


@dataclass(frozen=True)
class Progress:
    """Handed to the caller's callback after each recorded group."""

    done: int
    counts: dict[str, int]
    total: int = 0  # an estimate, filled in by the caller when it knows one


SkeletonFor = Callable[[Subscriber], MessageSkeleton | None]
ProgressFn = Callable[[Progress], None]


def deliver(
    edition: str,
    skeleton_for: SkeletonFor,
    subscribers: Iterable[Subscriber],
    transport: Transport,
    db: sqlite3.Connection,
    base_url: str,
    policy: Policy | None = None,
    stop: threading.Event | None = None,
    progress: ProgressFn | None = None,
) -> DeliveryReport:
    """Send the edition to every subscriber not yet delivered, ledger first.

    `skeleton_for` gives the message variant for a subscriber's sections, or
    None when none of their sections has anything in this edition. Setting
    `stop` ends the send between messages: in-flight ones finish and are
    recorded, the rest stay pending. A sender-wide failure raises
    DeliveryError after the same tidy-up.
    """
    store_ledger.ensure(db)
    run = _Run(edition, transport, db, base_url, policy or Policy(), stop, progress)
    left = store_ledger.reset_sending(db, edition)
    if left:
        log.info("%d message(s) were in flight when a send stopped; sending them again", left)
    claimed = _claimed(run, skeleton_for, subscribers)
    try:
        for jobs in claimed:
            run.dispatch(jobs)
            if run.halted:
                break
        run.finish()
        if run.halted:
            _claim_ahead(run, claimed)
    finally:
        run.close()
    if run.error is not None:
        raise run.error
    return run.report


def _claimed(
    run: _Run, skeleton_for: SkeletonFor, subscribers: Iterable[Subscriber]
) -> Iterator[list[Job]]:
    """Jobs for the rows still to deliver, claimed in the ledger BATCH at a time."""
    statuses = (store.PENDING, store.DEFERRED) + (
        (store.FAILED,) if run.policy.retry_failed else ()
    )
    for batch in batches(subscribers, BATCH):
        wanted: dict[str, tuple[Subscriber, MessageSkeleton]] = {}
        suppressed = store_ledger.suppressed_among(run.db, [s.email.lower() for s in batch])
        for sub in batch:
            key = sub.email.lower()
            skeleton = skeleton_for(sub)
            if key in suppressed:
                run.report.skipped_suppressed += 1
            elif skeleton is None:
                run.report.skipped_empty += 1
            elif key not in run.busy:
                wanted.setdefault(key, (sub, skeleton))
        pairs = [(key, message_id(sk, key)) for key, (_, sk) in wanted.items()]
        claimed = store_ledger.claim_deliveries(
            run.db, run.edition, pairs, statuses, insert=not run.policy.retry_only
        )
        yield [
            Job(
                key,
                wanted[key][0].email,
                wanted[key][0].name,
                wanted[key][1],
                mid,
                extra=wanted[key][0].extra,
            )
            for key, mid in claimed
        ]


def _claim_ahead(run: _Run, claimed: Iterator[list[Job]]) -> None:
    """A stop or error between two batches leaves every claimed row final,
    and the ledger would look done to the next `digest send`: claim the next
    rows still to deliver (as pending), so that it resumes this edition."""
    if store_ledger.has_unfinished(run.db, run.edition):
        return
    for jobs in claimed:
        if jobs:
            return


def batches(items: Iterable[Subscriber], size: int) -> Iterator[list[Subscriber]]:
    batch: list[Subscriber] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Run:
    """The mutable state of one send: the pool, buffers, retries, the report."""

    def __init__(
        self,
        edition: str,
        transport: Transport,
        db: sqlite3.Connection,
        base_url: str,
        policy: Policy,
        stop: threading.Event | None,
        progress: ProgressFn | None,
    ) -> None:
        self.edition, self.db, self.base_url, self.policy = edition, db, base_url, policy
        self.stop = stop or threading.Event()
        self.progress = progress
        self.pool = Pool(transport, Pacer(policy.limits, threading.Event()), self.stop)
        self.window = max(8, 8 * transport.connections)
        self.report = DeliveryReport()
        self.error: DigestError | None = None
        self.retries: list[tuple[float, int, Job]] = []
        self.busy: set[str] = set()  # waiting for a retry or given up in this run
        self.answers: list[tuple[str, str, str]] = []
        self.oldest_answer = 0.0
        self.bounced: list[tuple[str, str]] = []
        self.untried: list[str] = []

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
                return
            store_ledger.mark_sending(self.db, self.edition, [job.email for job in group])
            for index, job in enumerate(group):
                self._make_room()
                if self.halted:
                    store_ledger.reset_pending(
                        self.db, self.edition, [j.email for j in group[index:]]
                    )
                    return
                self._submit(job)

    def _submit(self, job: Job) -> None:
        message = render_message(
            job.skeleton, self.base_url, job.address, job.name, job.message_id, job.extra
        )
        if self.policy.dkim is not None:
            message = dkim_sign(message, self.policy.dkim)
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
        if outcome is None:
            self.untried.append(job.email)
            if result.error is not None and self.error is None:
                self.error = result.error
            return
        retry = outcome.status == store.DEFERRED and job.attempt < self.policy.max_attempts
        if retry and not self.halted:
            self._retry_later(job)
        else:
            self.report.add(outcome.status)
        if outcome.status == store.BOUNCED:
            self.bounced.append((job.email, f"bounced: {outcome.reply}"))
        if not self.answers:
            self.oldest_answer = time.monotonic()
        self.answers.append((job.email, outcome.status, outcome.reply))

    def _retry_later(self, job: Job) -> None:
        delay = backoff(job.attempt, self.policy.retry_delay)
        self.busy.add(job.email)
        heapq.heappush(
            self.retries, (time.monotonic() + delay, id(job), replace(job, attempt=job.attempt + 1))
        )

    def _send_due_retries(self) -> None:
        now = time.monotonic()
        while self.retries and self.retries[0][0] <= now and not self.halted:
            job = heapq.heappop(self.retries)[2]
            self._flush()  # its deferred answer is recorded before it goes out again
            store_ledger.mark_sending(self.db, self.edition, [job.email])
            self._submit(job)

    def _flush(self) -> None:
        if self.answers:
            store_ledger.record_results(self.db, self.edition, self.answers, self.bounced)
            self.answers, self.bounced = [], []
            if self.progress is not None:
                self.progress(Progress(self.report.done, dict(self.report.counts)))
        if self.untried:
            store_ledger.reset_pending(self.db, self.edition, self.untried)
            self.report.add(store.PENDING, len(self.untried))
            self.untried = []

    def finish(self) -> None:
        """Wait for retries and in-flight answers; whatever is left stays deferred."""
        while (self.retries or self.pool.in_flight) and not self.halted:
            self._send_due_retries()
            wait = self.retries[0][0] - time.monotonic() if self.retries else 0.2
            self._wait_for_answer(min(0.2, max(0.001, wait)))
        while self.pool.in_flight:
            self._wait_for_answer(0.2)
        self.report.add(store.DEFERRED, len(self.retries))
        self.retries = []
        self._flush()

    def close(self) -> None:
        self.pool.halt.set()
        self.pool.close()
        while (result := self.pool.next_result(None)) is not None:
            self._take(result)
        self._flush()
