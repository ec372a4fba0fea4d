"""SIGKILL in the middle of a send of 10,000 over 4 connections, then send
again: everyone gets exactly one message, except at most the ones in flight
at the kill, and a repeated message carries the same Message-ID. The SMTP
server runs in another process and counts what it receives."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import received

SUBSCRIBERS = 10_000


def ledger(database: Path) -> dict[str, tuple[str, str]]:
    db = sqlite3.connect(database)
    try:
        return {
            e: (s, m) for e, s, m in db.execute("SELECT email, status, message_id FROM deliveries")
        }
    finally:
        db.close()


COMMAND = [sys.executable, "-m", "digest", "send"]


def sender_env(project: Path, port: int, subscribers: int) -> dict[str, str]:
    rows = "".join(f"reader{n}@example.org,Reader {n},,active\n" for n in range(subscribers))
    (project / "subscribers.csv").write_text(
        "email,name,sections,status\n" + rows, encoding="utf-8"
    )
    return {
        **os.environ,
        "DIGEST_DATABASE": str(project / "digest.db"),
        "DIGEST_SUBSCRIBERS": str(project / "subscribers.csv"),
        "DIGEST_FROM": "The Sample Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": "crash-secret-key-for-the-crash-test",
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_CONNECTIONS": "4",
    }


def start_and_signal(
    project: Path, env: dict[str, str], counts: Path, after: int, sig: int
) -> subprocess.Popen[str]:
    """Start `digest send`; signal it once the server has `after` messages."""
    sender = subprocess.Popen(
        COMMAND, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not counts.exists() or len(received(counts)) < after:
        assert sender.poll() is None, sender.stderr.read() if sender.stderr else ""
        assert time.monotonic() < deadline, "the send made no progress"
        time.sleep(0.02)
    sender.send_signal(sig)
    return sender


def test_sigkill_mid_send_then_resume_sends_everyone_exactly_once(
    project: Path, counting_server: tuple[int, Path]
) -> None:
    port, counts = counting_server
    env = sender_env(project, port, SUBSCRIBERS)
    start_and_signal(project, env, counts, 2_000, signal.SIGKILL).wait()
    at_kill = ledger(project / "digest.db")
    in_flight = {e for e, (status, _) in at_kill.items() if status == "sending"}
    assert 0 < len({r for r, _ in received(counts)}) < SUBSCRIBERS

    # At once: the dead sender's lock went with its process.
    again = subprocess.run(
        COMMAND, cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Resumed edition")
    assert "took over the runner lease of digest send on" in again.stderr
    assert "which no longer runs" in again.stderr

    per_recipient: dict[str, list[str]] = {}
    for rcpt, mid in received(counts):
        per_recipient.setdefault(rcpt, []).append(mid)
    expected = {f"reader{n}@example.org" for n in range(SUBSCRIBERS)}
    assert set(per_recipient) == expected
    repeated = {r for r, mids in per_recipient.items() if len(mids) > 1}
    print(f"in flight at the kill: {len(in_flight)}; repeated: {len(repeated)}")
    assert repeated <= in_flight
    assert all(
        len(mids) == 2 and mids[0] == mids[1] for r, mids in per_recipient.items() if r in repeated
    )
    final = ledger(project / "digest.db")
    assert {status for status, _ in final.values()} == {"sent"}
    assert all(per_recipient[e][0] == mid for e, (_, mid) in final.items())


def test_sigterm_lets_in_flight_messages_finish_and_the_ledger_agree(
    project: Path, counting_server: tuple[int, Path]
) -> None:
    port, counts = counting_server
    env = sender_env(project, port, 3_000)
    sender = start_and_signal(project, env, counts, 500, signal.SIGTERM)
    out, err = sender.communicate(timeout=60)
    assert sender.returncode == 0, err
    assert "\nStopped (run 'digest send' again to finish)" in out
    states = ledger(project / "digest.db")
    sent = {e for e, (status, _) in states.items() if status == "sent"}
    assert {status for status, _ in states.values()} == {"sent", "pending"}
    got = [rcpt for rcpt, _ in received(counts)]
    assert sorted(got) == sorted(sent)  # nothing in flight was lost or left unrecorded
