"""Rate limits, throttling pauses and the back-off schedule."""

from __future__ import annotations

import random
import threading

import pytest

from digest.deliver.pacing import Limits, Pacer, backoff


def test_backoff_doubles_with_jitter_that_never_shortens_the_wait() -> None:
    rng = random.Random(7)
    for attempt in range(1, 6):
        delays = [backoff(attempt, 2.0, rng) for _ in range(200)]
        base = 2.0 * 2 ** (attempt - 1)
        assert all(base <= d <= 1.25 * base for d in delays)
        assert len(set(delays)) == 200  # jitter: no two retries due at once


class Clock:
    """A clock the test moves: the schedule comes out exact, whatever the load."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_second_limit_spaces_messages() -> None:
    pacer = Pacer(Limits(per_second=20), clock=Clock())
    waits = [pacer.reserve() for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25])


def test_hourly_limit_counts_earlier_sends() -> None:
    clock = Clock()
    pacer = Pacer(Limits(per_hour=3600, sent_last_hour=3600), clock=clock)
    assert pacer.reserve() == pytest.approx(1.0)  # the hour is used up: a second away
    clock.now += 10
    assert pacer.reserve() == pytest.approx(0.0)  # ten seconds earned ten slots
    assert pacer.reserve() == pytest.approx(0.0)


def test_a_stop_wakes_a_worker_waiting_for_its_slot() -> None:
    stop = threading.Event()
    pacer = Pacer(Limits(per_hour=1, sent_last_hour=1), stop)  # the next slot is an hour away
    waiting = threading.Thread(target=pacer.wait)
    waiting.start()
    stop.set()
    waiting.join(30)  # a bound, not a measure: without the stop it would wait an hour
    assert not waiting.is_alive()


def test_throttle_pauses_longer_each_time_the_server_repeats_it_after_a_pause() -> None:
    clock = Clock()
    pacer = Pacer(Limits(pause=0.05), clock=clock)
    assert pacer.throttle() == 0.05
    clock.now += 0.01
    # Answers to messages sent before the pause are echoes: no longer pause.
    assert all(pacer.throttle() == pytest.approx(0.04) for _ in range(5))
    assert pacer.streak == 1
    clock.now += 0.05
    assert pacer.throttle() == 0.1  # said again after the pause: twice as long
    pacer.relax()
    clock.now += 0.11
    assert pacer.throttle() == 0.05  # a message went through in between


def test_throttle_halves_the_pace_and_answers_bring_it_back() -> None:
    clock = Clock()
    pacer = Pacer(Limits(pause=0.001), clock=clock)
    pacer.throttle()
    slowed = pacer.gap
    assert slowed > 0
    clock.now += 0.002
    pacer.throttle()
    assert pacer.gap == 2 * slowed
    answers = 0
    while pacer.gap:
        pacer.relax()
        answers += 1
    assert 10 < answers < 200  # gradually, not at the first answer
