"""Clean cuts (a word boundary and an ellipsis) and the per-source `language`
option, carried from digest.toml onto the articles and into the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import store
from digest.collect import collect
from digest.collect.clean import clip
from digest.collect.feeds import STANDFIRST_CHARS, TITLE_CHARS, parse_feed
from digest.errors import ConfigError
from digest.store import articles as store_articles
from tests import feed_samples as fs


@given(st.text(min_size=0, max_size=300), st.integers(min_value=2, max_value=200))
@settings(max_examples=200, deadline=None)
def test_a_clip_fits_and_ends_on_a_word_with_an_ellipsis(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    if clipped == text.strip():
        return
    assert clipped.endswith("…")
    head = clipped[:-1]
    cut_at = len(head)
    original = text.strip()
    assert original.startswith(head)
    # Cut between words, unless the text has no space to cut at.
    if " " in original[:limit].strip():
        assert not head or not original[cut_at : cut_at + 1].isalnum()


def test_a_long_standfirst_and_title_are_cut_at_a_word_with_an_ellipsis() -> None:
    summary = " ".join(["Harbourmasters"] * 60)
    title = " ".join(["Ferryboats"] * 50)
    body = "<p>The ferry returns to the harbour in May after three years away.</p>"
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://x.example/</link><description>d</description><item><guid>1</guid>"
        f"<title>{title}</title><link>https://x.example/1</link>"
        f"<description>{summary}</description>"
        f"<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<![CDATA[{body}]]></content:encoded></item></channel></rss>"
    )
    (entry,) = parse_feed(feed.encode(), "https://x.example/feed")
    article = entry.article
    assert article.standfirst.endswith("Harbourmasters…")
    assert len(article.standfirst) <= STANDFIRST_CHARS
    assert article.title.endswith("Ferryboats…") and len(article.title) <= TITLE_CHARS


def test_a_source_language_reaches_its_articles_and_the_digests_does_not(tmp_path: Path) -> None:
    german = tmp_path / "de"
    german.mkdir()
    (german / "faehre.txt").write_text(
        "Die Fähre fährt wieder\nAb März fährt die Fähre wieder.\n"
        "Die Fähre zwischen Altstadt und Neustadt fährt ab März wieder. Er blieb.\n",
        encoding="utf-8",
    )
    english = tmp_path / "en"
    english.mkdir()
    (english / "ferry.txt").write_text(
        "The Ferry Returns\nFrom March the ferry runs again.\nThe ferry runs again.\n",
        encoding="utf-8",
    )
    settings_ = fs.settings_with(
        tmp_path,
        {"news": [{"url": str(german), "language": "de-AT"}, str(english)]},
        DIGEST_LANGUAGE="en-GB",
    )
    with store.opened(settings_.database) as db:
        found = collect(settings_.fetch, settings_.sections, db)
        bodies = store_articles.unsent_articles(db, "news", [str(german), str(english)])
    languages = {a.title: a.language for _, a in found.articles}
    assert languages == {"Die Fähre fährt wieder": "de-AT", "The Ferry Returns": ""}
    # Kept in the store with the article, so that a later build sees it too.
    assert {json.loads(b)["language"] for b in bodies} == {"de-AT", ""}
    assert settings_.summary.language == "en-GB"


@pytest.mark.parametrize("language", ["german", "d", 7, "de AT"])
def test_a_bad_source_language_is_an_error_naming_the_source(
    tmp_path: Path, language: object
) -> None:
    with pytest.raises(ConfigError, match=r"source #1.*'language'"):
        fs.settings_with(tmp_path, {"news": [{"url": "feed.xml", "language": language}]})


def test_a_bad_digest_language_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"language"):
        fs.settings_with(tmp_path, {"news": ["feed.xml"]}, DIGEST_LANGUAGE="english please")
