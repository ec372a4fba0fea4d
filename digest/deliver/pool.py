"""The connection pool: worker threads, each with its own channel, taking
rendered messages from one queue, signing them (DKIM) and putting the
server's answers on another.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

from digest.deliver.dkim import DkimKey, signed
from digest.deliver.message import Message, MessageSkeleton
from digest.deliver.pacing import Pacer
from digest.deliver.transports import Channel, Outcome, Transport
from digest.errors import DeliveryError, DigestError
from digest.store import ledger

log = logging.getLogger(__name__)
# Pauses in a row (5 s doubling to 300 s: about ten minutes) before giving up.
GIVE_UP_STREAK = 8


@dataclass(frozen=True)
class Job:
    """One ledger row on its way: who, which message variant, which try."""

    email: str  # the ledger key (lower case)
    address: str  # as written in the list (then in its envelope form)
    name: str
    skeleton: MessageSkeleton
    message_id: str
    attempt: int = 1
    extra: tuple[tuple[str, str], ...] = ()  # further CSV columns, for field() slots
    sender: str = ""  # the envelope sender (return path); the skeleton's when empty
    line: int = 0  # the row's line in the subscriber list, for reports


@dataclass(frozen=True)
class Result:
    """An answer for a job; neither outcome nor error means it was never tried."""

    job: Job
    outcome: Outcome | None = None
    error: DigestError | None = None


class Pool:
    """`transport.connections` workers; `halt` makes them hand back untried jobs."""

    def __init__(
        self,
        transport: Transport,
        pacer: Pacer,
        stop: threading.Event | None = None,
        dkim: DkimKey | None = None,
    ) -> None:
        self.transport = transport
        self.pacer = pacer
        # Signing here, in the workers, overlaps its waits (for a signing
        # child, see signer.py) with the send loop rendering the next message.
        self.dkim = dkim
        self.halt = pacer.stop
        # The caller's stop (a signal), seen by each worker before its next
        # message: queued messages stay untried even while the send loop waits.
        self.stop = stop or threading.Event()
        self.jobs: queue.Queue[tuple[Job, Message] | None] = queue.Queue()
        self.results: queue.Queue[Result] = queue.Queue()
        self.in_flight = 0
        self.threads = [
            threading.Thread(target=self._work, name=f"digest-smtp-{n}", daemon=True)
            for n in range(max(1, transport.connections))
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, job: Job, message: Message) -> None:
        self.in_flight += 1
        self.jobs.put((job, message))

    def next_result(self, timeout: float | None) -> Result | None:
        try:
            result = self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
        except queue.Empty:
            return None
        self.in_flight -= 1
        return result

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()

    def _work(self) -> None:
        channel: Channel | None = None
        try:
            while (item := self.jobs.get()) is not None:
                job, message = item
                if not self.halt.is_set():
                    self.pacer.wait()
                if self.halt.is_set() or self.stop.is_set():
                    self.results.put(Result(job))
                    continue
                try:
                    data = signed(message, self.dkim)
                    channel = channel or self.transport.open()
                    sender = job.sender or job.skeleton.sender
                    result = Result(job, channel.send(sender, job.address, data))
                except DigestError as e:  # sender-wide: no message can go
                    self.halt.set()
                    result = Result(job, error=e)
                except Exception as e:  # a bug met on one message fails that delivery
                    result = Result(job, _unexpected(job, e))
                    _close(channel)
                    channel = None
                self.results.put(self._pace(result))
        finally:
            if channel is not None:
                channel.close()

    def _pace(self, result: Result) -> Result:
        """Slow down or speed up by the answer; a server that has said to slow
        down after every pause for long (GIVE_UP_STREAK pauses, about ten
        minutes) stops the send: the rest stays pending for a later one."""
        outcome = result.outcome
        if outcome is None or outcome.status == ledger.PENDING:
            return result
        if not outcome.throttled:
            self.pacer.relax()
            return result
        self.pacer.throttle()
        if self.pacer.streak < GIVE_UP_STREAK or result.error is not None:
            return result
        self.halt.set()
        error = DeliveryError(
            f"{self.transport.description} kept refusing ({outcome.reply}) after "
            f"{self.pacer.streak} pauses; the rest stays pending for the next send"
        )
        return Result(result.job, outcome, error)


def _unexpected(job: Job, error: Exception) -> Outcome:
    # Only the type: an exception's repr may hold its arguments, and those
    # may be a credential (smtplib once put the password in one).
    log.warning("sending to %s failed unexpectedly", job.address, exc_info=True)
    return Outcome(ledger.FAILED, unexpected(error))


def unexpected(error: Exception) -> str:
    """The ledger's reply for a delivery a bug in digest failed."""
    return (
        f"digest failed on this message ({type(error).__name__}); please report it with "
        "the traceback `digest -v send` logs"
    )


def _close(channel: Channel | None) -> None:
    """A channel that met an unexpected error is in an unknown state: a new one."""
    if channel is not None:
        with contextlib.suppress(Exception):
            channel.close()
