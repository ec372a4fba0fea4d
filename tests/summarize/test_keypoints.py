"""Key points: every headed section in the digest, each with a sentence that
informs, bullets kept as bullets, and clean cuts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.collect.files import read_article
from digest.model import Article, ArticleSection
from digest.summarize import SummaryOptions, split_sentences, summarize

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def harbour() -> Article:
    return read_article(DATA / "harbour-deal.txt")


def test_every_headed_section_has_a_key_point_the_first_included(harbour: Article) -> None:
    result = summarize(harbour)
    headings = [s.heading for s in harbour.sections if s.heading]
    assert len(headings) == 5
    assert [p.heading for p in result.key_points] == headings
    assert all(p.text or p.bullets for p in result.key_points)


def test_a_section_the_summary_would_empty_keeps_its_sentence(harbour: Article) -> None:
    # The first section is one sentence, the article's best: the summary gives
    # it up rather than leave the section out.
    first = harbour.sections[0].paragraphs[0]
    result = summarize(harbour)
    assert result.key_points[0].text == first
    assert first not in result.sentences


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_no_key_point_repeats_a_summary_sentence(harbour: Article, count: int) -> None:
    result = summarize(harbour, SummaryOptions(sentences=count, article_words=0))
    assert not {p.text for p in result.key_points} & set(result.sentences)


def test_key_points_skip_teasers_while_the_section_has_better(harbour: Article) -> None:
    points = {p.heading: p.text for p in summarize(harbour).key_points}
    # One-clause hooks open these sections; the point is what follows them.
    assert points["The Politics at Home"].startswith("Surveys show 58 %")
    assert points["Money, Boats and Old Grudges"].startswith("Brenhaven remains")
    assert "Officially" not in points["Money, Boats and Old Grudges"]


def test_a_question_is_not_a_key_point_when_the_section_has_a_statement() -> None:
    section = ArticleSection(
        "The Question",
        (
            "Will the bridge over the river ever open to traffic again?",
            "Engineers said the bridge will reopen in May after repairs costing £4m.",
        ),
    )
    article = Article("q", "Bridge", "https://example.org/q", sections=(section,))
    (point,) = summarize(article, SummaryOptions(sentences=1)).key_points
    assert point.text.startswith("Engineers said")


def test_a_section_of_only_teasers_still_gets_one() -> None:
    section = ArticleSection("Next", ("What happens now to the old harbour wall?",))
    lead = ArticleSection("", ("The council voted on Monday to rebuild the harbour wall by 2028.",))
    article = Article("t", "Wall", "https://example.org/t", sections=(lead, section))
    (point,) = summarize(article, SummaryOptions(sentences=1)).key_points
    assert point.heading == "Next" and point.text.endswith("?")


def test_a_key_point_drops_an_opening_connective(harbour: Article) -> None:
    section = ArticleSection(
        "Costs",
        ("However, the new ferry will cost the two towns 12 million euros over ten years.",),
    )
    lead = ArticleSection("", ("The towns of Aldport and Brenhaven agreed to share a ferry.",))
    article = Article("c", "Ferry", "https://example.org/c", sections=(lead, section))
    (point,) = summarize(article, SummaryOptions(sentences=1)).key_points
    assert point.text == "The new ferry will cost the two towns 12 million euros over ten years."


def test_a_short_bullet_list_is_kept_whole_beside_the_sections_sentence(harbour: Article) -> None:
    trade = next(p for p in summarize(harbour).key_points if p.heading.startswith("Money"))
    assert trade.bullets == harbour.sections[2].bullets
    assert trade.text in split_sentences(harbour.sections[2].paragraphs[0])


def test_a_section_made_of_bullets_gets_its_key_point_from_them() -> None:
    bullets = tuple(
        f"Ferry line {n} runs {n * 4} crossings a day between the two harbour towns."
        for n in range(1, 8)
    )
    article = Article(
        "b",
        "Ferry lines of the two harbour towns",
        "https://example.org/b",
        sections=(
            ArticleSection("", ("The two harbour towns publish their ferry lines.",)),
            ArticleSection("The Lines", (), bullets),
        ),
    )
    (point,) = summarize(article, SummaryOptions(sentences=1)).key_points
    assert point.heading == "The Lines" and not point.text
    assert 0 < len(point.bullets) <= 4
    assert set(point.bullets) <= set(bullets)
    assert list(point.bullets) == sorted(point.bullets, key=bullets.index)  # their own order


def test_bullets_that_are_page_furniture_are_dropped() -> None:
    bullets = ("Fares stay at 4 euros for residents.", "Share on Facebook", "Read more")
    article = Article(
        "f",
        "Fares",
        "https://example.org/f",
        sections=(
            ArticleSection("", ("The ferry fares for next year were published today.",)),
            ArticleSection("Fares", (), bullets),
        ),
    )
    (point,) = summarize(article, SummaryOptions(sentences=1)).key_points
    assert point.bullets == ("Fares stay at 4 euros for residents.",)


def test_a_run_on_key_point_is_cut_at_a_word_with_an_ellipsis() -> None:
    words = " ".join(f"harbour{n}" for n in range(120))
    section = ArticleSection("Long", (f"The ferry report lists {words} in one sentence.",))
    lead = ArticleSection("", ("The ferry report was published on Monday by the towns.",))
    article = Article("l", "Report", "https://example.org/l", sections=(lead, section))
    (point,) = summarize(article, SummaryOptions(sentences=1)).key_points
    assert point.text.endswith("…") and len(point.text) <= 320
    assert point.text[:-1].split()[-1] in words.split()  # a whole word before the ellipsis


def test_a_sectioned_article_builds_into_a_digest_with_every_section(project: Path) -> None:
    """Done as a reader sees it: `digest build` on a sectioned article file."""
    from tests.cli.test_cli import cli

    (project / "harbour.txt").write_bytes((DATA / "harbour-deal.txt").read_bytes())
    result = cli(project, "build", "--source", "harbour.txt", "--out", "built")
    assert result.returncode == 0, result.stderr
    html = (project / "built" / "digest.html").read_text(encoding="utf-8")
    text = (project / "built" / "digest.txt").read_text(encoding="utf-8")
    article = read_article(DATA / "harbour-deal.txt")
    headings = [s.heading for s in article.sections if s.heading]
    for shown in (html, text.replace("\n    ", " ")):
        assert article.title in shown
        for heading in headings:
            assert f"{heading}:" in shown  # each heading with its key point after it
    edition = json.loads((project / "built" / "edition.json").read_text(encoding="utf-8"))
    (entry,) = edition["sections"][0]["articles"]
    assert [p["heading"] for p in entry["key_points"]] == headings
    assert all(p["text"] or p["bullets"] for p in entry["key_points"])
    assert not entry["summary"][0].startswith(("Yet", "But", "However"))


def test_an_editor_can_rewrite_a_key_point(project: Path) -> None:
    from tests.cli.test_cli import cli

    (project / "harbour.txt").write_bytes((DATA / "harbour-deal.txt").read_bytes())
    assert cli(project, "build", "--source", "harbour.txt", "--out", "built").returncode == 0
    path = project / "built" / "edition.json"
    edition = json.loads(path.read_text(encoding="utf-8"))
    points = edition["sections"][0]["articles"][0]["key_points"]
    points[0]["text"] = "The mayors shook hands at dawn."
    points[2]["bullets"] = ["Fixed fees for ten years."]
    path.write_text(json.dumps(edition), encoding="utf-8")
    result = cli(project, "build", "--edition", "built/edition.json", "--out", "again")
    assert result.returncode == 0, result.stderr
    html = (project / "again" / "digest.html").read_text(encoding="utf-8")
    text = (project / "again" / "digest.txt").read_text(encoding="utf-8")
    assert "The mayors shook hands at dawn." in html and "The mayors shook hands at dawn." in text
    assert "<li style=margin:0 0 3px 0>Fixed fees for ten years.</li>" in html.replace('"', "")
    assert "      * Fixed fees for ten years." in text
    assert "Varga asked for fixed docking fees" not in html
