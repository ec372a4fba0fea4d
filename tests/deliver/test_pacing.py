"""Rate limits, throttling pauses and the back-off schedule."""

from __future__ import annotations

import random
import threading
import time

from digest.deliver.pacing import Limits, Pacer, backoff


def test_backoff_doubles_with_jitter_within_half_to_one_and_a_half() -> None:
    rng = random.Random(7)
    for attempt in range(1, 6):
        delays = [backoff(attempt, 2.0, rng) for _ in range(200)]
        base = 2.0 * 2 ** (attempt - 1)
        assert all(0.5 * base <= d <= 1.5 * base for d in delays)
        assert len(set(delays)) == 200  # jitter: no two retries due at once


def test_per_second_limit_spaces_messages() -> None:
    pacer = Pacer(Limits(per_second=20))
    start = time.monotonic()
    for _ in range(6):
        pacer.wait()
    assert time.monotonic() - start >= 5 / 20 - 0.01


def test_hourly_limit_counts_earlier_sends_and_stop_wakes_the_wait() -> None:
    stop = threading.Event()
    pacer = Pacer(Limits(per_hour=3600, sent_last_hour=3600), stop)
    threading.Timer(0.2, stop.set).start()
    start = time.monotonic()
    pacer.wait()  # the hour is used up: the next slot is a second away
    waited = time.monotonic() - start
    assert 0.15 <= waited < 0.9


def test_throttle_pauses_every_worker_longer_each_time_until_relaxed() -> None:
    pacer = Pacer(Limits(pause=1.0))
    assert [pacer.throttle() for _ in range(3)] == [1.0, 2.0, 4.0]
    pacer.relax()
    assert pacer.throttle() == 1.0
    assert pacer.paused_until > time.monotonic() + 3
