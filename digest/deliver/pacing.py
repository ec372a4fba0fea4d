"""Pacing: rate limits shared by every connection, the pace a server asks for
when it says to slow down, and the back-off schedule for retried messages.

A throttling answer (421, a refused session, a timeout) pauses every
connection once and halves the pace; answers that arrive during the pause
are echoes of messages already in flight and change nothing. Each answer
that follows brings the pace back up a little (AIMD, as TCP does).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_PAUSE = 300.0
# The pace after a throttle: seconds between two messages over all connections.
MIN_GAP, MAX_GAP = 0.01, 10.0
RECOVERY = 0.95  # each answer after a throttle shortens the gap by 5%


@dataclass(frozen=True)
class Limits:
    """0 means unlimited; `sent_last_hour` counts this hour's earlier runs."""

    per_second: float = 0.0
    per_hour: int = 0
    sent_last_hour: int = 0
    pause: float = 2.0


class Pacer:
    """Hands out send slots to the pool's workers, one message at a time."""

    def __init__(
        self,
        limits: Limits,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.lock = threading.Lock()
        self.stop = stop or threading.Event()
        self.clock = clock  # the tests' own clock makes the schedule exact
        now = clock()
        self.next_slot = now
        self.paused_until = now
        self.streak = 0
        self.gap = 0.0  # the server's pace, while it is slowing us; 0: none
        self.last_slot = now
        self.interval = 0.0  # recent seconds between two slots (moving average)
        self.hour_tokens = float(max(0, limits.per_hour - limits.sent_last_hour))
        self.refilled = now

    def wait(self) -> None:
        """Block until this worker may send one message (or stop is set)."""
        delay = self.reserve()
        if delay > 0:
            self.stop.wait(delay)

    def reserve(self) -> float:
        """Take the next send slot; the seconds until it comes."""
        with self.lock:
            now = self.clock()
            slot = max(now, self.paused_until)
            if self.limits.per_second > 0:
                slot = max(slot, self.next_slot)
                self.next_slot = slot + 1.0 / self.limits.per_second
            if self.gap:
                slot = max(slot, self.last_slot + self.gap)
            if self.limits.per_hour > 0:
                slot = max(slot, self._hour_slot(now))
            if slot == now:  # the pace the server keeps up with unasked, pauses aside
                self.interval = 0.8 * self.interval + 0.2 * min(1.0, now - self.last_slot)
            self.last_slot = slot
        return slot - now

    def _hour_slot(self, now: float) -> float:
        rate = self.limits.per_hour / 3600.0
        self.hour_tokens = min(
            float(self.limits.per_hour), self.hour_tokens + (now - self.refilled) * rate
        )
        self.refilled = now
        self.hour_tokens -= 1.0
        # Negative tokens are a debt: this slot lies as far ahead as it takes to repay.
        return now if self.hour_tokens >= 0 else now - self.hour_tokens / rate

    def throttle(self) -> float:
        """The server said to slow down: pause every worker (doubling while it
        keeps saying so after each pause) and halve the pace. Returns the pause."""
        with self.lock:
            now = self.clock()
            if now < self.paused_until:
                return self.paused_until - now  # an echo of a message sent before the pause
            self.streak += 1
            pause = min(MAX_PAUSE, self.limits.pause * 2.0 ** (self.streak - 1))
            self.paused_until = now + pause
            self.gap = min(MAX_GAP, max(2.0 * self.gap, 2.0 * self.interval, MIN_GAP))
            return pause

    def relax(self) -> None:
        """An answer that was not a throttle: the next throttle starts from a
        short pause again, and the pace climbs back towards no limit."""
        with self.lock:
            self.streak = 0
            if self.gap:
                self.gap *= RECOVERY
                if self.gap < MIN_GAP / 10:
                    self.gap = 0.0


def backoff(attempt: int, first: float, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (1-based): doubling, with jitter
    so that many deferred messages do not all come back at the same moment.
    The jitter only lengthens the wait: `first` is a minimum an operator can
    rely on (a greylisting server refuses a retry that comes too soon)."""
    base = min(MAX_PAUSE, first * 2.0 ** (attempt - 1))
    return base * (rng or random).uniform(1.0, 1.25)
