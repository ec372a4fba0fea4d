"""The running `digest serve` most web tests use, against the real SMTP
server of the `smtp_server` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.test_app import Server, Site, start


@pytest.fixture
def site(project: Path, smtp_server: Server) -> Iterator[Site]:
    running = start(project, smtp_server)
    try:
        yield running
    finally:
        running.stop()
