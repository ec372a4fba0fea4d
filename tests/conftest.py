"""Shared fixtures: a real SMTP server, a project folder with samples and config."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from digest.config import Settings, load_settings
from tests import postgres
from tests.feed_server import FeedServer
from tests.postgres import Cluster
from tests.smtp_server import PortZeroController, RecordingHandler, serving

ROOT = Path(__file__).resolve().parent.parent

# Property tests: a bounded number of examples, no example database in the
# tree; in CI also derandomized, so a run is repeatable.
hypothesis_settings.register_profile(
    "digest",
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "ci", parent=hypothesis_settings.get_profile("digest"), max_examples=50, derandomize=True
)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "digest")


@pytest.fixture
def smtp_server() -> Iterator[tuple[PortZeroController, RecordingHandler]]:
    handler = RecordingHandler()
    with serving(handler) as controller:
        yield controller, handler


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A real HTTP server on loopback; set routes on it, then point sources at it."""
    with FeedServer() as server:
        yield server


SUBSCRIBERS = """email,name,sections,status
ada@example.org,Ada Lovelace,,active
grace@example.org,Grace Hopper,technology,active
alan@example.org,Alan Turing,,unsubscribed
not-an-address,Broken Row,,active
edsger@example.org,Edsger Dijkstra,science,active
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the sample configuration and articles in a temporary folder."""
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    shutil.copy(ROOT / "digest.toml", tmp_path / "digest.toml")
    (tmp_path / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    return tmp_path


def settings_for(project: Path, **env: str) -> Settings:
    """Settings as the CLI would load them, with an explicit environment."""
    base = {
        "DIGEST_DATABASE": str(project / "digest.db"),
        "DIGEST_SUBSCRIBERS": str(project / "subscribers.csv"),
        "DIGEST_OUTBOX": str(project / "outbox"),
        "DIGEST_FROM": "The Sample Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": "test-secret-key-for-the-digest-tests",
        "DIGEST_BASE_URL": "https://digest.example.org",
    }
    return load_settings(project / "digest.toml", environ={**base, **env})


@pytest.fixture(autouse=True)
def _isolated_cwd(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test may pick up the repository's digest.toml or .env by accident."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster | None]:
    """One throwaway PostgreSQL server for the session (None: not installed)."""
    with postgres.running() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster | None) -> str:
    """A fresh PostgreSQL database of its own for the test."""
    if pg_cluster is None:
        if postgres.REQUIRED:
            pytest.fail("PostgreSQL is required (DIGEST_TEST_POSTGRES=required); no pg_ctl")
        pytest.skip("PostgreSQL is not installed here (no pg_ctl): skipped; .ci/run installs it")
    return pg_cluster.database()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "digest.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def counting_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port_file, counts = tmp_path / "port", tmp_path / "received.db"
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "smtp_process.py"),
            str(port_file),
            "--count",
            str(counts),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert time.monotonic() < deadline, "the SMTP server did not start"
            time.sleep(0.05)
        yield int(port_file.read_text()), counts
    finally:
        server.terminate()
        server.wait(timeout=30)


def received(counts: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(counts)
    try:
        return list(db.execute("SELECT rcpt, message_id FROM received"))
    finally:
        db.close()
