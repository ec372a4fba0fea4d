"""`digest run` as a real process: a stop mid-send loses nothing, a second
runner names the lease holder, logs are one line per event, status reports.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.smtp_server import PortZeroController, RecordingHandler, serving

SUBSCRIBERS = 12


class SlowHandler(RecordingHandler):
    """Accepts every message, but only after a pause: a send takes a while."""

    delay = 0.25

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class GatedHandler(RecordingHandler):
    """Accepts the first `free` messages; holds every later one at DATA until
    the gate opens, so a stop can be signalled with messages surely in flight
    and more surely queued, however slow the machine."""

    def __init__(self, free: int) -> None:
        super().__init__()
        self.free = free
        self.gate = threading.Event()
        self.arrived = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.arrived += 1
            held = self.arrived > self.free
        while held and not self.gate.is_set():
            await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def gated_smtp() -> Iterator[tuple[PortZeroController, GatedHandler]]:
    handler = GatedHandler(free=3)
    with serving(handler) as controller:
        try:
            yield controller, handler
        finally:
            handler.gate.set()  # let held messages go before the server stops


def stop_with_messages_in_flight(
    process: subprocess.Popen[str], handler: GatedHandler, sig: signal.Signals
) -> str:
    """Signal `process` once the free messages are in and more are held;
    open the gate only once it logged the signal (its stop is then set), so
    the held messages finish and no queued one may follow. Returns stderr."""
    lines: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    wait_for(lambda: len(handler.messages) >= handler.free and handler.arrived > handler.free)
    process.send_signal(sig)
    wait_for(lambda: any(f"received {sig.name}" in line for line in lines))
    handler.gate.set()
    process.wait(timeout=60)
    reader.join(timeout=30)
    return "".join(lines)


@pytest.fixture
def slow_smtp() -> Iterator[tuple[PortZeroController, SlowHandler]]:
    handler = SlowHandler()
    with serving(handler) as controller:
        yield controller, handler


def environment(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    rows = "".join(f"reader{i}@example.org,Reader {i},,active\n" for i in range(SUBSCRIBERS))
    (project / "many.csv").write_text("email,name,sections,status\n" + rows, encoding="utf-8")
    env.update(
        DIGEST_SUBSCRIBERS="many.csv",
        DIGEST_SECRET_KEY="run-test-secret-key-for-the-runner-x",
        DIGEST_SCHEDULE="* * * * *",
        DIGEST_LEASE_SECONDS="3",
        **extra,
    )
    return env


def start(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "run", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def ledger(project: Path) -> dict[str, int]:
    db = sqlite3.connect(project / "digest.db")
    try:
        rows = db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall()
    finally:
        db.close()
    return {status: count for status, count in rows}


def smtp(controller: PortZeroController) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(controller.port),
        "DIGEST_SMTP_SECURITY": "none",
    }


def test_sigterm_mid_send_loses_nothing_and_the_next_start_finishes(
    project: Path, gated_smtp: tuple[PortZeroController, GatedHandler]
) -> None:
    controller, handler = gated_smtp
    env = environment(project, **smtp(controller))
    runner = start(project, env)
    try:
        stderr = stop_with_messages_in_flight(runner, handler, signal.SIGTERM)
    finally:
        runner.kill()
    assert runner.returncode == 0, stderr
    counts = ledger(project)
    reached = len(handler.messages)
    assert handler.free < reached < SUBSCRIBERS  # stopped mid-send, in-flight ones finished
    assert counts.get("sent") == reached  # every accepted message is in the ledger
    assert "sending" not in counts  # no row left in flight
    assert sum(counts.values()) <= SUBSCRIBERS

    again = subprocess.run(
        [sys.executable, "-m", "digest", "run", "--once"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    recipients = [rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts]
    assert len(recipients) == SUBSCRIBERS == len(set(recipients))
    assert ledger(project) == {"sent": SUBSCRIBERS}
    assert "resuming its unfinished send" in again.stderr


def test_second_runner_names_the_lease_holder_then_waits_if_asked(
    project: Path, slow_smtp: tuple[PortZeroController, SlowHandler]
) -> None:
    controller, handler = slow_smtp
    env = environment(project, **smtp(controller))
    first = start(project, env)
    waiting: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: len(handler.messages) >= 1)
        refused = subprocess.run(
            [sys.executable, "-m", "digest", "run"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode != 0
        assert f"pid {first.pid}" in refused.stderr and "lease_busy" in refused.stderr
        waiting = start(project, {**env, "DIGEST_LEASE_BUSY": "wait"})
        lines: list[str] = []
        assert waiting.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(waiting.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        # Stop the holder only once the stand-by says it waits (however slow its start).
        wait_for(lambda: any("waiting" in line for line in lines))
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        wait_for(lambda: ledger(project) == {"sent": SUBSCRIBERS})
        wait_for(lambda: any("holding the runner lease" in line for line in lines))  # took over
        waiting.send_signal(signal.SIGINT)
        assert waiting.wait(30) == 0, "".join(lines)
        reader.join(10)
        assert any(f"pid {first.pid}" in line and "waiting" in line for line in lines)
    finally:
        first.kill()
        if waiting is not None:
            waiting.kill()
    recipients = [rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts]
    assert len(recipients) == SUBSCRIBERS == len(set(recipients))


def test_json_logs_are_one_object_per_line_and_status_reports(project: Path) -> None:
    env = environment(project, DIGEST_LOG_FORMAT="json", DIGEST_MIN_ARTICLES="1")
    done = subprocess.run(
        [sys.executable, "-m", "digest", "run", "--once"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    sent = [e for e in events if "sent edition" in e["message"]]
    assert len(sent) == 1 and sent[0]["level"] == "info" and sent[0]["slot"]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in events)
    # The secret key never reaches a log.
    assert "run-test-secret-key-for-the-runner-x" not in done.stderr

    shown = subprocess.run(
        [sys.executable, "-m", "digest", "status", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    facts = json.loads(shown.stdout)
    assert facts["last_slot"]["outcome"] == "sent"
    assert facts["last_edition"]["deliveries"] == {"sent": SUBSCRIBERS}
    assert facts["next_slot"] is not None and facts["runner"] is None
    assert facts["suppressions"] == 0 and facts["sources"]["problems"] == []
    assert facts["sources"]["counts"] == {"ok": 2}  # the two sample folders
    assert {row["source"] for row in facts["sources"]["health"]} == {
        "samples/technology",
        "samples/science",
    }
    text = subprocess.run(
        [sys.executable, "-m", "digest", "status"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "last slot" in text.stdout and "sent: " in text.stdout
    assert "next slot" in text.stdout and "suppressed    0" in text.stdout
    assert "2 ok" in text.stdout


def run_cli(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_send_by_hand_stops_gracefully_and_the_runner_finishes_it(
    project: Path, gated_smtp: tuple[PortZeroController, GatedHandler]
) -> None:
    controller, handler = gated_smtp
    env = environment(project, **smtp(controller))
    sender = subprocess.Popen(
        [sys.executable, "-m", "digest", "-v", "send"],  # -v: it logs the signal
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stderr = stop_with_messages_in_flight(sender, handler, signal.SIGINT)
        assert sender.stdout is not None
        stdout = sender.stdout.read()
    finally:
        sender.kill()
    assert sender.returncode == 0, stderr
    assert "\nStopped (run 'digest send' again to finish)" in stdout, stdout
    counts = ledger(project)
    assert handler.free < counts.get("sent", 0) == len(handler.messages) < SUBSCRIBERS
    assert "sending" not in counts
    finished = run_cli(project, env, "run", "--once")
    assert finished.returncode == 0, finished.stderr
    assert "resuming its unfinished send" in finished.stderr
    recipients = [rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts]
    assert len(recipients) == SUBSCRIBERS == len(set(recipients))


def test_send_by_hand_refuses_while_a_runner_holds_the_lease(project: Path) -> None:
    env = environment(project)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(project / "digest.db")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = run_cli(project, env, "send")
    finally:
        holder.kill()
        holder.wait(10)
    assert refused.returncode != 0
    assert "digest run on elsewhere pid 4242" in refused.stderr
    assert "lease_busy" not in refused.stderr  # a send by hand never waits for the lease
    assert ledger_or_empty(project) == {}
    assert not (project / "outbox").exists()


HOLD = """
import sys, time
from pathlib import Path
from digest import store
from digest.store import lease
db = store.connect(Path(sys.argv[1]))
lock = lease.RunnerLock(Path(sys.argv[1]), "digest run on elsewhere pid 4242")
assert lock.acquire(db, 3600, time.time()) is None
print("held", flush=True)
time.sleep(600)
"""


def ledger_or_empty(project: Path) -> dict[str, int]:
    try:
        return ledger(project)
    except sqlite3.OperationalError:  # no deliveries table: nothing was ever sent
        return {}


def test_run_once_exits_non_zero_when_its_slot_failed(project: Path) -> None:
    # A cron job must see the failure: the list is missing, nothing can go out.
    env = {**environment(project), "DIGEST_SUBSCRIBERS": str(project / "missing.csv")}
    failed = run_cli(project, env, "run", "--once")
    assert failed.returncode == 1, failed.stderr
    assert "cannot read the subscriber list" in failed.stderr
    assert "failed: " in failed.stderr
