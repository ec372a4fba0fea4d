"""Identity and de-duplication: GUID, canonical URL and content hash; sent
articles never come back; edits after sending only with a setting; the
maximum age per source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from digest import store
from digest.collect import collect
from digest.collect.identity import canonical_url, content_hash
from digest.config import Settings
from digest.store import articles as store_articles
from digest.store.db import Database
from tests import feed_samples as fs
from tests.feed_server import FeedServer, Route


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://News.Example.org:443/a?utm_source=x&id=3&utm_medium=y#top",
            "https://news.example.org/a?id=3",
        ),
        ("http://example.org", "http://example.org/"),
        ("http://example.org:8080/p?fbclid=1&gclid=2", "http://example.org:8080/p"),
        ("https://example.org/p?q=a+b&UTM_Campaign=z&flag", "https://example.org/p?q=a+b&flag"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_content_hash_ignores_case_and_spacing_only() -> None:
    assert content_hash("A Title", "Some  text\nhere") == content_hash("a title", "some text here")
    assert content_hash("A Title", "Some text") != content_hash("A Title", "Other text")


def _setup(feed_server: FeedServer, tmp_path: Path, **env: str) -> Settings:
    return fs.settings_with(
        tmp_path,
        {"first": [feed_server.url("/a")], "second": [feed_server.url("/b")]},
        **env,
    )


def test_same_story_in_two_feeds_appears_once(feed_server: FeedServer, tmp_path: Path) -> None:
    shared = fs.items("shared", 2)
    tracked = [(g + "-b", t, link + "?utm_source=feed-b#comments", h) for g, t, link, h in shared]
    # The same text under another address (syndication) is the same story too.
    copied = [("copy-1", shared[0][1], "https://mirror.example.net/x", shared[0][3])]
    feed_server.routes["/a"] = Route(fs.rss2(shared + fs.items("only-a", 1)).encode())
    feed_server.routes["/b"] = Route(fs.atom1(tracked + copied + fs.items("only-b", 1)).encode())
    settings = _setup(feed_server, tmp_path)
    db = store.connect(settings.database)
    collected = collect(settings.fetch, settings.sections, db)
    titles = sorted(a.title for _s, a in collected.articles)
    assert titles == ["only-a story 1", "only-b story 1", "shared story 1", "shared story 2"]
    urls = {a.url for _s, a in collected.articles}
    assert all("utm_" not in u and "#" not in u for u in urls)
    again = collect(settings.fetch, settings.sections, db)
    assert again.articles == ()


def unsent(db: Database, settings: Settings, key: str) -> list[str]:
    """Bodies of the section's unsent articles from its configured sources."""
    (section,) = [s for s in settings.sections if s.key == key]
    return store_articles.unsent_articles(db, key, [c.url for c in section.source_configs])


def _send_everything(settings: Settings) -> None:
    with store.opened(settings.database) as db:
        for section in settings.sections:
            ids = [json.loads(b)["id"] for b in unsent(db, settings, section.key)]
            store_articles.claim_articles(db, "edition-1", ids)


def _edit(feed_server: FeedServer) -> None:
    edited = [
        (
            "a-1",
            "a story 1 (corrected)",
            "https://news.example.org/a/1",
            fs.BODY + "<p>Correction: the river is longer.</p>",
        )
    ]
    feed_server.routes["/a"] = Route(fs.rss2(edited).encode())


def test_sent_articles_are_never_new_again_and_edits_are_not_resent(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/a"] = Route(fs.rss2(fs.items("a", 1)).encode())
    feed_server.routes["/b"] = Route(fs.rss2([]).encode())
    settings = _setup(feed_server, tmp_path)
    db = store.connect(settings.database)
    assert len(collect(settings.fetch, settings.sections, db).articles) == 1
    _send_everything(settings)
    assert collect(settings.fetch, settings.sections, db).articles == ()
    _edit(feed_server)
    assert collect(settings.fetch, settings.sections, db).articles == ()
    assert unsent(db, settings, "first") == []


def test_edits_after_sending_are_resent_when_the_setting_says_so(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/a"] = Route(fs.rss2(fs.items("a", 1)).encode())
    feed_server.routes["/b"] = Route(fs.rss2([]).encode())
    settings = _setup(feed_server, tmp_path, DIGEST_RESEND_EDITED="true")
    db = store.connect(settings.database)
    (first,) = collect(settings.fetch, settings.sections, db).articles
    _send_everything(settings)
    _edit(feed_server)
    (edited,) = collect(settings.fetch, settings.sections, db).articles
    assert edited[1].title == "a story 1 (corrected)" and edited[1].id != first[1].id
    assert "Correction" in edited[1].text
    assert collect(settings.fetch, settings.sections, db).articles == ()  # only once


def test_an_edit_before_sending_replaces_the_stored_text(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/a"] = Route(fs.rss2(fs.items("a", 1)).encode())
    feed_server.routes["/b"] = Route(fs.rss2([]).encode())
    settings = _setup(feed_server, tmp_path)
    db = store.connect(settings.database)
    collect(settings.fetch, settings.sections, db)
    _edit(feed_server)
    assert collect(settings.fetch, settings.sections, db).articles == ()
    (body,) = unsent(db, settings, "first")
    assert json.loads(body)["title"] == "a story 1 (corrected)"


def _dated(guid: str, age: timedelta) -> str:
    when = format_datetime(datetime.now(UTC) - age, usegmt=True)
    return fs.rss2([(guid, f"story {guid}", f"https://news.example.org/{guid}", fs.BODY)]).replace(
        fs.RFC822, when
    )


def test_maximum_age_per_source(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/old"] = Route(_dated("old", timedelta(days=20)).encode())
    feed_server.routes["/week"] = Route(_dated("week", timedelta(days=5)).encode())
    feed_server.routes["/strict"] = Route(_dated("strict", timedelta(days=5)).encode())
    settings = fs.settings_with(
        tmp_path,
        {
            "news": [
                feed_server.url("/old"),
                feed_server.url("/week"),
                {"url": feed_server.url("/strict"), "max_age_days": 3},
            ]
        },
    )
    db = store.connect(settings.database)
    titles = [a.title for _s, a in collect(settings.fetch, settings.sections, db).articles]
    assert titles == ["story week"]
    assert len(unsent(db, settings, "news")) == 1
    # Unsent articles stay available until they pass their source's maximum age.
    db.execute("UPDATE article_meta SET expires_at = ?", ("2000-01-01T00:00:00+00:00",))
    assert unsent(db, settings, "news") == []
