"""The file source: plain-text and Markdown articles."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest import job, store
from digest.collect import collect, read_source
from digest.collect.files import is_heading, read_article
from digest.errors import SourceError
from tests.feed_samples import settings_with

PLAIN = """
Rivers Return to the City
Engineers are uncovering streams that were buried under streets a century ago.
Under the Pavement
Many cities hid their small rivers in pipes. Now some are opening them again.
A second paragraph follows here.
What It Brings
- Cooler air in summer.
- Room for floods to spread.
Costs and Doubts
Opening a river is expensive, and it takes road space.
"""


def test_plain_text_keeps_title_standfirst_sections_and_bullets(tmp_path: Path) -> None:
    path = tmp_path / "rivers.txt"
    path.write_text(PLAIN, encoding="utf-8")
    article = read_article(path)
    assert article.title == "Rivers Return to the City"
    assert article.standfirst.startswith("Engineers are uncovering")
    assert [s.heading for s in article.sections] == [
        "Under the Pavement",
        "What It Brings",
        "Costs and Doubts",
    ]
    assert article.sections[0].paragraphs == (
        "Many cities hid their small rivers in pipes. Now some are opening them again.",
        "A second paragraph follows here.",
    )
    assert article.sections[1].bullets == ("Cooler air in summer.", "Room for floods to spread.")
    assert article.url.startswith("file://")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Why This Visit Matters", True),
        ("It was a long day.", False),
        ("- a bullet", False),
        ("“We stand at a crossroads,” Lee said", True),
        ("word " * 20, False),
    ],
)
def test_heading_rule(line: str, expected: bool) -> None:
    assert is_heading(line) is expected


def test_markdown_front_matter_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(
        "---\ntitle: Hello *World*\nurl: https://example.org/a\ndate: 2026-01-02\n"
        "author: Kim\n---\n\nThe standfirst.\n\n## One\n\nFirst **bold** [link](https://x.org) "
        "para.\n\n- item a\n* item b\n\n## Two\n\nSecond.\n",
        encoding="utf-8",
    )
    article = read_article(path)
    assert article.title == "Hello *World*"
    assert article.url == "https://example.org/a"
    assert article.author == "Kim"
    assert article.published is not None and article.published.year == 2026
    assert article.standfirst == "The standfirst."
    assert article.sections[0].paragraphs == ("First bold link para.",)
    assert article.sections[0].bullets == ("item a", "item b")
    assert article.sections[1].heading == "Two"


def test_markdown_inline_text_keeps_words_and_drops_markup(tmp_path: Path) -> None:
    path = tmp_path / "inline.md"
    path.write_text(
        "# Inline\n\nStandfirst.\n\n## Body\n\n"
        "See [Python](https://en.wikipedia.org/wiki/Python_(language)) and snake_case_name, "
        "_this_ and __that__.\n\n"
        "Raw <b>bold</b> HTML <script>alert(1)</script>&amp; more.\n\n- a <i>tagged</i> bullet\n",
        encoding="utf-8",
    )
    (section,) = read_article(path).sections
    assert section.paragraphs == (
        "See Python and snake_case_name, this and that.",
        "Raw bold HTML & more.",
    )
    assert section.bullets == ("a tagged bullet",)


def test_markdown_title_from_heading(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_text("# From the heading\n\nLead.\n\n## Part\n\nBody.\n", encoding="utf-8")
    assert read_article(path).title == "From the heading"


def test_undecodable_file_is_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good title\nStandfirst.\nBody text here.\n")
    (tmp_path / "bad.txt").write_bytes(b"Title\n\xff\xfe broken \x80 bytes\n")
    articles, problems = read_source(str(tmp_path))
    assert [a.title for a in articles] == ["Good title"]
    assert len(problems) == 1
    assert problems[0].source.endswith("bad.txt")
    # The file is named once, by the problem's source, not again in its message.
    assert "bad.txt" not in problems[0].message and "UTF-8" in problems[0].message


def test_unreadable_file_is_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good title\nStandfirst.\nBody text here.\n")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "moved-away.txt")
    articles, problems = read_source(str(tmp_path))
    assert [a.title for a in articles] == ["Good title"]
    (problem,) = problems
    assert problem.source.endswith("gone.txt") and "cannot be read" in problem.message


def test_a_skipped_file_is_recorded_in_its_source_health(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text("Good title\nStandfirst.\nBody text here.\n")
    (folder / "bad.txt").write_bytes(b"Title\n\xff broken\n")
    settings = settings_with(tmp_path, {"news": [str(folder)]})
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert [a.title for _s, a in collected.articles] == ["Good title"]
    (row,) = job.source_health(settings)
    assert row["status"] == "warning" and row["items"] == 1
    assert str(folder / "bad.txt") in str(row["last_error"]) and "UTF-8" in str(row["last_error"])


def test_missing_source_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    articles, problems = read_source(str(tmp_path / "nope"))
    assert articles == []
    assert "no such file or folder" in problems[0].message


def test_bad_front_matter_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.md"
    path.write_text("---\ntitle: [unclosed\n---\nBody\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"c\.md"):
        read_article(path)
