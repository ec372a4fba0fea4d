"""Pacing: rate limits shared by every connection, pauses when the server
says to slow down, and the back-off schedule for retried messages.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

MAX_PAUSE = 300.0


@dataclass(frozen=True)
class Limits:
    """0 means unlimited; `sent_last_hour` counts this hour's earlier runs."""

    per_second: float = 0.0
    per_hour: int = 0
    sent_last_hour: int = 0
    pause: float = 2.0


class Pacer:
    """Hands out send slots to the pool's workers, one message at a time."""

    def __init__(self, limits: Limits, stop: threading.Event | None = None) -> None:
        self.limits = limits
        self.lock = threading.Lock()
        self.stop = stop or threading.Event()
        now = time.monotonic()
        self.next_slot = now
        self.paused_until = now
        self.streak = 0
        self.hour_tokens = float(max(0, limits.per_hour - limits.sent_last_hour))
        self.refilled = now

    def wait(self) -> None:
        """Block until this worker may send one message (or stop is set)."""
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.paused_until)
            if self.limits.per_second > 0:
                slot = max(slot, self.next_slot)
                self.next_slot = slot + 1.0 / self.limits.per_second
            if self.limits.per_hour > 0:
                slot = max(slot, self._hour_slot(now))
        if slot > now:
            self.stop.wait(slot - now)

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
        """The server said 421/451/454: every worker pauses, longer each time."""
        with self.lock:
            self.streak += 1
            pause = min(MAX_PAUSE, self.limits.pause * 2.0 ** (self.streak - 1))
            self.paused_until = max(self.paused_until, time.monotonic() + pause)
            return pause

    def relax(self) -> None:
        """A message went through: the next throttle starts from a short pause again."""
        if self.streak:
            with self.lock:
                self.streak = 0


def backoff(attempt: int, first: float, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (1-based): doubling, with jitter
    so that many deferred messages do not all come back at the same moment."""
    base = min(MAX_PAUSE, first * 2.0 ** (attempt - 1))
    return base * (rng or random).uniform(0.5, 1.5)
