"""Cleaning untrusted HTML: linear time whatever the markup, every block and
word within its cap; and properties that hold for any
input at all (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import store
from digest.collect import collect
from digest.collect.clean import (
    MAX_BLOCK_CHARS,
    MAX_WORD_CHARS,
    html_blocks,
    html_to_sections,
    html_to_text,
    link_target,
)
from digest.collect.feeds import parse_json_feed
from digest.render import compile_edition, personalize
from digest.summarize.words import text_words
from tests import feed_samples as fs
from tests.collect.test_hostile import next_candidate
from tests.feed_server import FeedServer, Route


def test_unclosed_tags_by_the_hundred_thousand_are_cleaned_at_once() -> None:
    # The standard library's parser is quadratic here: 80,000 took 30 s, this
    # many would take minutes. libxml2 reads it in milliseconds.
    assert html_to_text("<a" * 200_000) == ""
    assert html_to_text("<p>kept</p>" + "<a" * 200_000) == "kept"
    deep = "<div>" * 50_000 + "deep text" + "</div>" * 50_000
    assert html_to_text(deep) == "deep text"


def test_one_enormous_word_is_cut_and_counts_by_its_length() -> None:
    blocks = html_blocks("<p>Before " + "x" * 2_000_000 + " after.</p><p>Next.</p>")
    word = "x" * MAX_WORD_CHARS + "…"
    # What follows the giant word in its block is past the block's cap.
    assert blocks == [("p", f"Before {word}"), ("p", "Next.")]
    assert text_words(f"Before {word}") == 1 + -(-len(word) // 20)


def test_a_huge_paragraph_is_cut_on_a_word_boundary() -> None:
    (block,) = html_blocks("<p>" + "word " * 400_000 + "</p>")
    text = block[1]
    assert len(text) <= MAX_BLOCK_CHARS + 1
    assert text.endswith("word…") and "wor " not in text


def test_one_hostile_entry_does_not_push_the_others_out_of_the_email(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    normal = fs.items("river", 4)
    huge = ("huge", "A huge entry", "https://news.example.org/huge", "<p>" + "z" * 2_000_000)
    feed_server.routes["/feed"] = Route(fs.rss2([huge, *normal]).encode())
    settings = fs.settings_with(tmp_path, {"news": [feed_server.url("/feed")]})
    db = store.connect(settings.database)
    collect(settings.fetch, settings.sections, db)
    compiled = compile_edition(next_candidate(settings, db), settings.look)
    html, _text = personalize(compiled, {})
    assert compiled.dropped == ()
    for _guid, title, _link, _body in [huge, *normal]:
        assert title in html
    assert "z" * (MAX_WORD_CHARS + 1) not in html


# Properties: any text at all, HTML-like or not.
HTMLISH = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                *("<p>", "</p>", "<a href='https://e.org/x'>", "<a href=javascript:x>", "</a>"),
                *("<h2>", "</h2>", "<li>", "<script>", "</script>", "<!--", "-->", "&amp;", "<"),
                *("<svg onload=x>", "<br/>", "<div", "\x00", "\u202e", "\r\n", "&#0;", "<![CDATA["),
            ]
        ),
    ),
    max_size=60,
).map("".join)


@given(HTMLISH)
def test_cleaning_any_input_gives_capped_plain_blocks(html: str) -> None:
    for kind, text in html_blocks(html):
        assert kind in ("h", "p", "li")
        assert text and text == text.strip() and "  " not in text
        assert len(text) <= MAX_BLOCK_CHARS + 1
        assert all(len(word) <= MAX_WORD_CHARS + 1 for word in text.split())
        assert not any(ord(c) < 32 or c == "\x7f" or c == "\u202e" for c in text)


@given(HTMLISH)
def test_only_absolute_http_links_without_quotes_or_spaces_survive(html: str) -> None:
    for section in html_to_sections(html):
        for text, url in section.links:
            assert text and url == link_target(url)
            assert url.startswith(("http://", "https://"))
            assert not set(url) & set(" \t\n\"'<>`")


@given(st.lists(st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True), min_size=1, max_size=30))
def test_words_in_a_paragraph_survive_cleaning(words: list[str]) -> None:
    assert html_to_text("<p>" + " ".join(words) + "</p>") == " ".join(words)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [], "n": '
        + b"9" * 50_000
        + b"}",
    ],
    ids=["deep", "huge-number"],
)
def test_absurd_json_feed_is_a_clean_source_error(
    body: bytes, feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/feed.json"] = Route(body, "application/feed+json")
    settings = fs.settings_with(tmp_path, {"news": [feed_server.url("/feed.json")]})
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    (problem,) = collected.problems
    assert "too deeply nested or with an absurdly long number" in problem.message
    assert "unexpected" not in problem.message


def test_json_feed_text_is_capped_like_html() -> None:
    item = {"id": "1", "title": "T", "content_text": "a " + "y" * 500_000}
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]})
    (entry,) = parse_json_feed(body.encode(), "https://e.org/feed.json")
    (paragraph,) = entry.article.sections[0].paragraphs
    assert paragraph == "a " + "y" * MAX_WORD_CHARS + "…"
