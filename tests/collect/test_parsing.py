"""Fetched bodies are parsed in parser processes: never in this one, and a
parser process that dies is replaced without losing the collection."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from digest import store
from digest.collect import clean, collect, parsing
from digest.errors import SourceError
from tests import feed_samples as fs
from tests.feed_server import FeedServer, Route


def _collect_one_feed(feed_server: FeedServer, tmp_path: Path, count: int = 3) -> None:
    """Collect a feed of `count` items and check every one arrived, unharmed."""
    items = fs.items("river", count)
    feed_server.routes["/feed"] = Route(fs.rss2(items).encode())
    settings = fs.settings_with(tmp_path, {"news": [feed_server.url("/feed")]})
    found = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert found.problems == ()
    assert {article.title for _section, article in found.articles} == {i[1] for i in items}


def test_feeds_are_parsed_in_another_process(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(html: str) -> clean.Parsed:
        raise AssertionError("parsed in the collecting process")

    # Only this process's cleaner is broken: the parser process has its own.
    monkeypatch.setattr(clean, "_parse", broken)
    _collect_one_feed(feed_server, tmp_path)


def test_a_killed_parser_process_is_replaced_and_nothing_is_lost(
    feed_server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = parsing.parsers()
    os.kill(pool.submit(os.getpid).result(timeout=60), signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="digest.collect.parsing"):
        _collect_one_feed(feed_server, tmp_path, count=5)
    assert parsing.parsers() is not pool
    assert "a parser process died reading" in caplog.text


def test_work_that_kills_its_parser_twice_is_that_sources_error() -> None:
    with pytest.raises(SourceError, match="the parser process died twice"):
        asyncio.run(parsing.parse("https://news.example.org/feed", os._exit, 1))
    assert parsing.parsers().submit(sum, [1, 2]).result(timeout=60) == 3  # a fresh pool
