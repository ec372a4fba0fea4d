"""The README's "Scaling out" topology on one machine: two runners (one
active, one standing by), two workers and two `digest serve` against one
PostgreSQL database, started from the `ExecStart` lines of the README's
systemd units. The runner is killed; the stand-by finishes the edition;
everyone gets one message; an unsubscribe on one web host is seen by the
other."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from digest.deliver.message import unsubscribe_token
from tests.conftest import ROOT, received

READERS = 400
SECRET = "topology-secret-key-for-the-topology-test"
LIST_ID = "the-sample-digest.example.org"


def units() -> dict[str, list[str]]:
    """unit name -> its ExecStart command, from the README's Scaling out section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    found = re.findall(
        r"# /etc/systemd/system/(digest-\w+)\.service.*?ExecStart=(\S+) (.+?)\n", section, re.S
    )
    return {name: command.split() for name, _, command in found}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


class Hosts:
    """Processes started as the units start them, in one project folder."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.project, self.env = project, env
        self.running: list[subprocess.Popen[str]] = []
        self.commands = units()

    def start(self, unit: str, *extra: str, **env: str) -> subprocess.Popen[str]:
        args = self.commands[unit]  # e.g. ["run"]: the digest binary's arguments
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", *args, *extra],
            cwd=self.project,
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.running.append(process)
        return process

    def stop(self) -> list[int]:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return [process.wait(60) for process in self.running]


@pytest.fixture
def hosts(project: Path, pg_url: str, counting_server: tuple[int, Path]) -> Iterator[Hosts]:
    port, _ = counting_server
    rows = "".join(f"r{n:04}@example.org,Reader {n},,active\n" for n in range(READERS))
    (project / "subscribers.csv").write_text("email,name,sections,status\n" + rows, "utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE": pg_url,
        "DIGEST_SUBSCRIBERS": "subscribers.csv",
        "DIGEST_FROM": "The Sample Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SCHEDULE": "* * * * *",
        "DIGEST_LEASE_BUSY": "wait",
        "DIGEST_LEASE_SECONDS": "3",
        "DIGEST_WORKER_TIMEOUT": "3",
        "DIGEST_RATE_PER_SECOND": "60",  # each sender: the send takes a few seconds
    }
    started = Hosts(project, env)
    try:
        yield started
    finally:
        for process in started.running:
            process.kill()
            process.wait(30)


def ledger(pg_url: str) -> Counter[str]:
    try:
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT status FROM deliveries").fetchall()
    except psycopg.errors.UndefinedTable:
        return Counter()
    return Counter(status for (status,) in rows)


def holder(pg_url: str) -> str:
    try:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT holder FROM leases WHERE name = 'runner'").fetchone()
    except psycopg.errors.UndefinedTable:  # the first runner is still making the schema
        return ""
    return "" if row is None else str(row[0])


def test_runners_workers_and_web_hosts_share_one_database(
    hosts: Hosts, pg_url: str, counting_server: tuple[int, Path]
) -> None:
    assert set(hosts.commands) == {"digest-runner", "digest-worker", "digest-serve"}
    _, counts = counting_server
    active = hosts.start("digest-runner")
    wait_for(lambda: f"pid {active.pid}" in holder(pg_url))
    standby = hosts.start("digest-runner")
    hosts.start("digest-worker")
    hosts.start("digest-worker")
    web = [free_port(), free_port()]
    for port in web:
        hosts.start("digest-serve", "--port", str(port))
    wait_for(lambda: ledger(pg_url)["sent"] >= READERS // 4)  # the edition is going out
    active.send_signal(signal.SIGKILL)
    wait_for(lambda: f"pid {standby.pid}" in holder(pg_url), 30)  # the stand-by took over
    wait_for(lambda: ledger(pg_url) == Counter({"sent": READERS}))
    per_reader = Counter(rcpt for rcpt, _ in received(counts))
    repeated = {r for r, n in per_reader.items() if n > 1}
    assert len(per_reader) == READERS
    # Only messages in flight at the kill may come twice (same Message-ID).
    assert len(repeated) <= 50
    mids: dict[str, set[str]] = {}
    for rcpt, mid in received(counts):
        mids.setdefault(rcpt, set()).add(mid)
    assert all(len(found) == 1 for found in mids.values())

    token = unsubscribe_token(SECRET.encode(), LIST_ID, "r0007@example.org")
    first, second = (httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=10) for p in web)
    wait_for(lambda: _up(first) and _up(second), 30)
    assert first.post("/unsubscribe", params={"token": token}).status_code == 200
    seen = second.get("/unsubscribe", params={"token": token})
    assert "You are already unsubscribed" in seen.text
    assert "The Sample Digest" in second.get("/archive").text
    assert hosts.stop()[1:] == [0] * 5  # the killed runner aside, every stop is clean


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False
