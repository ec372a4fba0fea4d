"""Full text: teaser-only sources (or short entries) get their article page
fetched and its main text extracted, headings kept as sections."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from digest import store
from digest.collect import collect
from digest.collect.fetch import Fetched, fetcher, is_public
from tests import feed_samples as fs
from tests.collect.test_formats import PAGE
from tests.feed_server import FeedServer, Route


def _teasers(feed_server: FeedServer) -> None:
    feed_server.routes["/story"] = Route(PAGE.encode(), "text/html; charset=utf-8")
    feed_server.routes["/missing-story"] = Route(status=404, body=b"no")
    teasers = [
        (
            "t1",
            "Rivers Return",
            feed_server.url("/story?utm_medium=rss"),
            "<p>Rivers are back.</p>",
        ),
        ("t2", "Lost", feed_server.url("/missing-story"), "<p>A teaser whose page is gone.</p>"),
    ]
    feed_server.routes["/teasers"] = Route(fs.rss2(teasers).encode())


def test_teaser_only_source_gets_full_text_once(feed_server: FeedServer, tmp_path: Path) -> None:
    _teasers(feed_server)
    settings = fs.settings_with(
        tmp_path, {"news": [{"url": feed_server.url("/teasers"), "full_text": True}]}
    )
    db = store.connect(settings.database)
    collected = collect(settings.fetch, settings.sections, db)
    articles = {a.title: a for _s, a in collected.articles}
    full = articles["Rivers Return"]
    assert [s.heading for s in full.sections][-2:] == ["Under the pavement", "What it costs"]
    assert "Opening a river is expensive" in full.text
    assert full.url == feed_server.url("/story")  # tracking parameter gone
    assert articles["Lost"].text == "A teaser whose page is gone."
    (problem,) = collected.problems
    assert problem.source == feed_server.url("/missing-story")
    assert "teaser kept" in problem.message and "HTTP 404" in problem.message
    # Known entries are not fetched again.
    collect(settings.fetch, settings.sections, db)
    assert len(feed_server.requested("/story")) == 1


def test_short_entries_get_full_text_by_setting(feed_server: FeedServer, tmp_path: Path) -> None:
    _teasers(feed_server)
    long_entry = fs.items("long", 1, host=feed_server.url(""))
    feed_server.routes["/mixed"] = Route(fs.rss2(long_entry).encode())
    settings = fs.settings_with(
        tmp_path,
        {"news": [feed_server.url("/teasers"), feed_server.url("/mixed")]},
        DIGEST_FULL_TEXT_MIN_CHARS="100",
    )
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    articles = {a.title: a for _s, a in collected.articles}
    assert "Opening a river is expensive" in articles["Rivers Return"].text
    assert feed_server.requested("/long/1") == []  # long enough: its page is not fetched


def test_no_full_text_by_default(feed_server: FeedServer, tmp_path: Path) -> None:
    _teasers(feed_server)
    settings = fs.settings_with(tmp_path, {"news": [feed_server.url("/teasers")]})
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert {a.text for _s, a in collected.articles} == {
        "Rivers are back.",
        "A teaser whose page is gone.",
    }
    assert feed_server.requested("/story") == []


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("http://127.0.0.1:8080/x", False),
        ("http://localhost/x", False),
        ("http://10.1.2.3/x", False),
        ("http://192.168.0.1/x", False),
        ("http://169.254.169.254/latest/meta-data/", False),
        ("http://[::1]/x", False),
        ("http://[::ffff:127.0.0.1]/x", False),
        ("http://93.184.216.34/x", True),
        ("https://[2606:4700::1111]/x", True),
    ],
)
def test_which_addresses_count_as_public(url: str, public: bool) -> None:
    assert asyncio.run(is_public(url)) is public


def test_links_from_a_public_feed_never_reach_local_addresses(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    _teasers(feed_server)
    settings = fs.settings_with(tmp_path, {})

    async def fetch_as_a_public_feeds_link() -> Fetched:
        async with fetcher(settings.fetch) as client:
            return await client.get(feed_server.url("/story"), public_only=True)

    fetched = asyncio.run(fetch_as_a_public_feeds_link())
    assert fetched.body == b"" and "private or local network address" in fetched.error
    assert feed_server.requested("/story") == []
