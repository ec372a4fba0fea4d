"""Rate limits, throttling pauses and the back-off schedule."""

from __future__ import annotations

import random
import threading
import time

from digest.deliver.pacing import Limits, Pacer, backoff


def test_backoff_doubles_with_jitter_that_never_shortens_the_wait() -> None:
    rng = random.Random(7)
    for attempt in range(1, 6):
        delays = [backoff(attempt, 2.0, rng) for _ in range(200)]
        base = 2.0 * 2 ** (attempt - 1)
        assert all(base <= d <= 1.25 * base for d in delays)
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


def test_throttle_pauses_longer_each_time_the_server_repeats_it_after_a_pause() -> None:
    pacer = Pacer(Limits(pause=0.05))
    assert pacer.throttle() == 0.05
    # Answers to messages sent before the pause are echoes: no longer pause.
    assert all(pacer.throttle() <= 0.05 for _ in range(5))
    assert pacer.streak == 1
    time.sleep(0.06)
    assert pacer.throttle() == 0.1  # said again after the pause: twice as long
    pacer.relax()
    time.sleep(0.11)
    assert pacer.throttle() == 0.05  # a message went through in between


def test_throttle_halves_the_pace_and_answers_bring_it_back() -> None:
    pacer = Pacer(Limits(pause=0.001))
    pacer.throttle()
    slowed = pacer.gap
    assert slowed > 0
    time.sleep(0.002)
    pacer.throttle()
    assert pacer.gap == 2 * slowed
    answers = 0
    while pacer.gap:
        pacer.relax()
        answers += 1
    assert 10 < answers < 200  # gradually, not at the first answer
