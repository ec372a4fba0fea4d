"""`digest worker` processes against one PostgreSQL database: they share an
edition without sending anyone two messages, a killed one's rows come back
with their Message-ID, SIGTERM is a clean stop, and a worker needs neither
the subscriber list nor the templates. Real processes, a real SMTP server
in its own process, a throwaway PostgreSQL cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from digest import job
from digest.errors import DeliveryError
from tests.conftest import received, settings_for

READERS = 600


def sender_env(project: Path, database: str, port: int, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE": database,
        "DIGEST_SUBSCRIBERS": str(project / "subscribers.csv"),
        "DIGEST_FROM": "The Sample Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": "worker-secret-key-for-the-worker-tests",
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        **extra,
    }


def edition_going_out(project: Path, database: str) -> str:
    """An edition fanned out to READERS rows, none sent: its SMTP server was down."""
    rows = "".join(f"r{n:04}@example.org,Reader {n},,active\n" for n in range(READERS))
    (project / "subscribers.csv").write_text("email,name,sections,status\n" + rows, "utf-8")
    down = settings_for(
        project,
        DIGEST_DATABASE=database,
        DIGEST_SECRET_KEY="worker-secret-key-for-the-worker-tests",
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT="9",
        DIGEST_SMTP_SECURITY="none",
    )
    with pytest.raises(DeliveryError):
        job.send(down)
    return ledger(database)[0]


def ledger(database: str) -> tuple[str, dict[str, tuple[str, str, str]]]:
    """(edition id, email -> (status, Message-ID, worker)) of the newest edition."""
    with psycopg.connect(database) as conn:
        [(edition_id,)] = conn.execute("SELECT id FROM editions ORDER BY number DESC LIMIT 1")
        rows = conn.execute(
            "SELECT email, status, message_id, COALESCE(worker, '') FROM deliveries"
            " WHERE edition_id = %s",
            (edition_id,),
        ).fetchall()
    return edition_id, {e: (s, m, w) for e, s, m, w in rows}


def worker(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "worker", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_three_workers_share_an_edition_and_send_each_reader_one_message(
    project: Path, pg_url: str, counting_server: tuple[int, Path]
) -> None:
    port, counts = counting_server
    edition_id = edition_going_out(project, pg_url)
    # 100 messages a second each: no one worker can take the whole edition alone.
    env = sender_env(project, pg_url, port, DIGEST_RATE_PER_SECOND="100")
    running = [worker(project, env, "--once") for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in running]
    assert [p.returncode for p in running] == [0, 0, 0], outputs
    per_reader = Counter(rcpt for rcpt, _ in received(counts))
    assert len(per_reader) == READERS and set(per_reader.values()) == {1}
    _, rows = ledger(pg_url)
    assert {status for status, _, _ in rows.values()} == {"sent"}
    assert len({w for _, _, w in rows.values()}) >= 2  # the edition was shared
    with psycopg.connect(pg_url) as conn:
        [(state,)] = conn.execute("SELECT state FROM editions WHERE id = %s", (edition_id,))
        [(left,)] = conn.execute("SELECT COUNT(*) FROM workers")
    assert state == "sent" and left == 0


def test_a_killed_worker_rows_come_back_with_their_message_id(
    project: Path, pg_url: str, counting_server: tuple[int, Path]
) -> None:
    port, counts = counting_server
    edition_going_out(project, pg_url)
    env = sender_env(project, pg_url, port, DIGEST_WORKER_TIMEOUT="2")
    slow = worker(project, {**env, "DIGEST_RATE_PER_SECOND": "50"})
    deadline = time.monotonic() + 60
    while len(received(counts)) < 40:
        assert slow.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    slow.send_signal(signal.SIGKILL)
    slow.wait(10)
    _, at_kill = ledger(pg_url)
    held = {e for e, (status, _, _) in at_kill.items() if status == "sending"}
    assert held  # a batch claimed, some of it in flight
    time.sleep(2.5)  # its heartbeat is now older than DIGEST_WORKER_TIMEOUT
    done = worker(project, env, "--once")
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    per_reader: dict[str, list[str]] = {}
    for rcpt, mid in received(counts):
        per_reader.setdefault(rcpt, []).append(mid)
    assert len(per_reader) == READERS
    repeated = {r for r, mids in per_reader.items() if len(mids) > 1}
    assert repeated <= held  # only rows in flight at the kill may come twice
    assert all(len(set(mids)) == 1 for mids in per_reader.values())  # same Message-ID
    _, final = ledger(pg_url)
    assert {status for status, _, _ in final.values()} == {"sent"}
    assert all(final[e][1] == at_kill[e][1] for e in final)


def test_sigterm_lets_a_worker_finish_what_is_in_flight_and_give_the_rest_back(
    project: Path, pg_url: str, counting_server: tuple[int, Path]
) -> None:
    port, counts = counting_server
    edition_going_out(project, pg_url)
    env = sender_env(project, pg_url, port, DIGEST_RATE_PER_SECOND="50")
    running = worker(project, env)
    deadline = time.monotonic() + 60
    while len(received(counts)) < 20:
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    running.send_signal(signal.SIGTERM)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 0, err
    _, rows = ledger(pg_url)
    statuses = Counter(status for status, _, _ in rows.values())
    assert set(statuses) == {"sent", "pending"}  # nothing left claimed
    assert statuses["sent"] == len(received(counts))
    with psycopg.connect(pg_url) as conn:
        [(left,)] = conn.execute("SELECT COUNT(*) FROM workers")
    assert left == 0


def test_a_worker_needs_neither_the_list_nor_the_templates_but_the_same_key(
    project: Path, pg_url: str, counting_server: tuple[int, Path], tmp_path: Path
) -> None:
    port, counts = counting_server
    edition_going_out(project, pg_url)
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "digest.mjml.j2").write_text("{{ this is not a template", "utf-8")
    env = sender_env(
        project,
        pg_url,
        port,
        DIGEST_SUBSCRIBERS=str(tmp_path / "gone.csv"),
        DIGEST_TEMPLATES=str(broken),
    )
    other_key = worker(
        project, {**env, "DIGEST_SECRET_KEY": "another-secret-key-for-the-worker-tests"}, "--once"
    )
    _, err = other_key.communicate(timeout=60)
    assert other_key.returncode == 1 and "made with another signing key" in err
    assert received(counts) == []
    done = worker(project, env, "--once")
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert len(received(counts)) == READERS


def test_a_worker_refuses_a_sqlite_database(project: Path) -> None:
    env = {**os.environ, "DIGEST_DATABASE": str(project / "digest.db")}
    done = subprocess.run(
        [sys.executable, "-m", "digest", "worker", "--once"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "needs a PostgreSQL database" in done.stderr
