"""Sentence splitting, the extractive ranker, key points and word budgets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import SectionConfig, load_settings
from digest.edition import build_edition
from digest.errors import DigestError
from digest.model import Article, ArticleSection, KeyPoint, Summary
from digest.summarize import (
    ExtractiveSummarizer,
    SummaryOptions,
    article_from_text,
    fit_edition_budget,
    make_summarizer,
    split_sentences,
    summarize,
    summarize_jsonl,
    summary_words,
)


def test_split_keeps_abbreviations_and_numbers_inside_sentences() -> None:
    text = "Dr. Smith paid $3.5 million to the U.S. Treasury on Monday. He left at 5 p.m. sharp."
    assert split_sentences(text) == [
        "Dr. Smith paid $3.5 million to the U.S. Treasury on Monday.",
        "He left at 5 p.m. sharp.",
    ]


def test_split_never_glues_a_heading_or_bullet_onto_a_sentence() -> None:
    text = "Why It Matters\nPrices rose. Wages did not\n- first point\n- second point"
    assert split_sentences(text) == [
        "Why It Matters",
        "Prices rose.",
        "Wages did not",
        "first point",
        "second point",
    ]


def test_split_rejoins_a_break_after_an_unknown_abbreviation() -> None:
    text = "He backs a pro-U.S. tilt in policy. iPhones sold well. Acme Corp. rose 5%."
    assert split_sentences(text) == [
        "He backs a pro-U.S. tilt in policy.",
        "iPhones sold well.",
        "Acme Corp. rose 5%.",
    ]


def test_split_tidies_whitespace_but_keeps_quotes() -> None:
    assert split_sentences("  ‘We won,’\u00a0she   said.  ") == ["‘We won,’ she said."]


KITE = (
    "A Chinese team built a kite 6,000 metres long for the Wulong kite festival. "
    "The weather in the valley was mild and the tea was good. "
    "Aviation authorities ruled that the 6,000-metre kite posed a danger to aircraft. "
    "Only half of the kite was allowed to fly at the festival. "
    "‘It is the longest kite in the world,’ said organiser Wang Dongming."
)


def sentences_of(text: str, count: int, words: int = 0) -> tuple[str, ...]:
    options = SummaryOptions(sentences=count, article_words=words)
    return summarize(article_from_text("a", text), options).sentences


def test_summary_is_whole_sentences_of_the_article_in_their_order() -> None:
    chosen = sentences_of(KITE, 3)
    source = split_sentences(KITE)
    assert len(chosen) == 3
    assert all(s in source for s in chosen)
    assert [source.index(s) for s in chosen] == sorted(source.index(s) for s in chosen)


def test_ranker_prefers_a_sentence_on_the_topic_over_an_early_aside() -> None:
    chosen = sentences_of(KITE, 2)
    assert chosen[0].startswith("A Chinese team")
    assert "tea was good" not in " ".join(chosen)


def test_ranker_leaves_out_a_repeated_sentence() -> None:
    lead = "The council approved a new tram line to the airport on Tuesday."
    text = f"{lead} {lead} Construction of the tram line starts in March and costs £2bn."
    chosen = sentences_of(text, 2)
    assert chosen == (lead, "Construction of the tram line starts in March and costs £2bn.")


def test_ranker_prefers_a_statement_to_an_opening_quotation() -> None:
    text = (
        "The city council voted to build a tram line to the airport. "
        "‘The tram line to the airport is overdue,’ said the mayor of the city. "
        "The tram line will cost the city £2bn and open to the airport in 2030."
    )
    chosen = sentences_of(text, 2)
    assert not any(s.startswith("‘") for s in chosen)


BOILERPLATE = (
    "By . Jane Doe . PUBLISHED: . 15:25 EST, 2 January 2014 . | . UPDATED: . "
    "16:00 EST, 2 January 2014 .\n"
    "(CNN)Floods closed the main bridge into the city of Leeds on Sunday morning.\n"
    "Scroll down for video Rescuers, pictured, pulled 40 people from floods in Leeds.\n"
    "Read more: Floods in Leeds close the bridge for a week.\n"
    "Engineers said the bridge over the floods would stay shut for a week."
)


def test_summary_leaves_out_bylines_datelines_and_page_furniture() -> None:
    chosen = " ".join(sentences_of(BOILERPLATE, 3))
    for furniture in ("PUBLISHED", "UPDATED", "Jane Doe", "(CNN)", "Scroll down", "Read more"):
        assert furniture not in chosen
    assert chosen.startswith("Floods closed the main bridge")


def test_word_budget_drops_sentences_and_never_cuts_one() -> None:
    chosen = sentences_of(KITE, 3, words=30)
    source = split_sentences(KITE)
    assert chosen and all(s in source for s in chosen)
    assert sum(len(s.split()) for s in chosen) <= 30
    assert len(chosen) < 3


def test_word_budget_smaller_than_any_sentence_still_gives_one_sentence() -> None:
    chosen = sentences_of(KITE, 3, words=4)
    assert len(chosen) == 1
    assert chosen[0] in split_sentences(KITE)


def seed_article() -> Article:
    return Article(
        id="seed",
        title="Lee Jae-myung meets Xi Jinping in Beijing",
        url="https://example.org/lee-xi",
        standfirst="The meeting aims to thaw South Korea-China relations.",
        sections=(
            ArticleSection(
                "",
                (
                    "Lee Jae-myung met Xi Jinping in Beijing on Monday. "
                    "The meeting between Lee and Xi was meant to thaw relations.",
                ),
            ),
            ArticleSection(
                "Trade and Chips",
                (
                    "Officially, the trip focused on trade. "
                    "China remains Seoul's largest export market for chips.",
                ),
                (
                    "Lee pressed for predictable supply chains.",
                    "Xi sought reassurances on THAAD.",
                ),
            ),
            ArticleSection(
                "What Happens Next",
                (
                    "No communiqué was signed. "
                    "Both sides agreed to resume high-level economic meetings shelved since 2019.",
                ),
                tuple(f"A long bullet number {i} that goes on for a while." for i in range(6)),
            ),
            ArticleSection("Photos", (), ()),
        ),
    )


def test_key_points_one_per_headed_section_chosen_within_it() -> None:
    article = seed_article()
    summary = summarize(article)
    assert [p.heading for p in summary.key_points] == ["Trade and Chips", "What Happens Next"]
    for point, section in zip(summary.key_points, article.sections[1:3], strict=True):
        assert point.text in split_sentences("\n".join(section.paragraphs + section.bullets))


def test_key_point_keeps_a_short_bullet_list_and_not_a_long_one() -> None:
    trade, after = summarize(seed_article()).key_points
    assert trade.bullets == seed_article().sections[1].bullets
    assert after.bullets == ()


def test_key_points_can_be_turned_off() -> None:
    options = SummaryOptions(key_points=False)
    assert summarize(seed_article(), options).key_points == ()


def test_article_without_sentences_gets_an_empty_summary() -> None:
    empty = Article(id="e", title="Photos", url="u", sections=(ArticleSection("Gallery"),))
    assert summarize(empty) == Summary()


def test_article_of_bullets_only_is_summarised_from_its_bullets() -> None:
    bullets = ("Rates rose by half a point on Thursday.", "Markets fell after the rise in rates.")
    listing = Article(id="b", title="Rates", url="u", sections=(ArticleSection("", (), bullets),))
    assert summarize(listing).sentences == bullets


def test_make_summarizer_is_extractive_without_llm_settings() -> None:
    assert isinstance(make_summarizer(SummaryOptions()), ExtractiveSummarizer)


def summary(sentence_words: list[int], point_words: tuple[int, ...] = ()) -> Summary:
    return Summary(
        tuple(" ".join(["w"] * n) for n in sentence_words),
        tuple(KeyPoint(f"h{i}", " ".join(["k"] * n)) for i, n in enumerate(point_words)),
    )


def test_edition_budget_shrinks_the_longest_summary_first() -> None:
    long, short = summary([20, 20, 20], (10,)), summary([10])
    fitted = fit_edition_budget([long, short], edition_words=50)
    assert sum(summary_words(s) for s in fitted) <= 50
    assert fitted[1] == short
    assert fitted[0].key_points == ()  # key points go before sentences
    assert fitted[0].sentences == long.sentences[:2]


def test_edition_budget_keeps_one_sentence_per_article() -> None:
    fitted = fit_edition_budget([summary([30, 30]), summary([30])], edition_words=10)
    assert [len(s.sentences) for s in fitted] == [1, 1]


def test_edition_budget_leaves_summaries_that_fit_alone() -> None:
    summaries = [summary([10, 10], (5,)), summary([10])]
    assert fit_edition_budget(summaries, edition_words=100) == summaries


def test_jsonl_rows_in_summary_rows_out() -> None:
    rows = [json.dumps({"id": "k1", "article": KITE}), "", json.dumps({"id": 7, "article": KITE})]
    out = list(summarize_jsonl(rows, SummaryOptions(sentences=3, article_words=0)))
    assert [r["id"] for r in out] == ["k1", 7]
    assert all(len(r["summary"]) == 3 for r in out)
    assert all(s in split_sentences(KITE) for r in out for s in r["summary"])


@pytest.mark.parametrize("line", ["{not json", json.dumps({"id": "x"}), "[1, 2]"])
def test_jsonl_bad_row_names_its_line(line: str) -> None:
    rows = [json.dumps({"id": "ok", "article": KITE}), line]
    with pytest.raises(DigestError, match="line 2"):
        list(summarize_jsonl(rows, SummaryOptions()))


def test_edition_words_shorten_the_summaries_of_a_built_edition() -> None:
    articles = {"news": [article_from_text(f"a{i}", KITE, title=f"Kite {i}") for i in range(3)]}
    section = SectionConfig("news", "News")
    summarizer = make_summarizer(SummaryOptions(sentences=3, article_words=0))
    when = datetime(2026, 1, 1, tzinfo=UTC)
    full = build_edition("e", "T", 1, when, [section], articles, summarizer)
    fitted = build_edition("e", "T", 1, when, [section], articles, summarizer, edition_words=60)
    words = [sum(len(s.split()) for s in a.summary) for a in fitted.sections[0].articles]
    assert sum(words) <= 60
    assert all(a.summary for a in fitted.sections[0].articles)
    assert full.sections[0].articles[0].summary != fitted.sections[0].articles[0].summary


def test_summary_options_follow_the_settings(tmp_path: Path) -> None:
    env = {
        "DIGEST_DATABASE": str(tmp_path / "data" / "digest.db"),
        "DIGEST_SUMMARY_SENTENCES": "3",
        "DIGEST_SUMMARY_WORDS": "0",
        "DIGEST_EDITION_WORDS": "400",
        "DIGEST_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "DIGEST_LLM_MODEL": "small",
        "DIGEST_LLM_API_KEY": "sk-hidden",
        "DIGEST_LLM_TIMEOUT": "2.5",
    }
    options = load_settings(None, environ=env).summary
    assert (options.sentences, options.article_words, options.edition_words) == (3, 0, 400)
    assert (options.llm_base_url, options.llm_model, options.llm_timeout) == (
        "http://127.0.0.1:9/v1",
        "small",
        2.5,
    )
    assert options.llm_api_key == "sk-hidden"
    assert options.llm_cache_path == tmp_path / "data" / "llm-cache.sqlite"


def test_without_llm_settings_there_is_no_llm() -> None:
    options = load_settings(None, environ={}).summary
    assert options.llm_base_url is None and options.llm_model is None


def test_key_points_never_repeat_a_summary_sentence_and_no_section_is_left_out() -> None:
    problem = ArticleSection("The Problem", ("Small libraries are kept alive by volunteers.",))
    fund = ArticleSection(
        "How the Fund Works",
        ("The fund pays maintainers a stipend. It began with forty companies.",),
    )
    article = Article("k", "Maintainers", "https://example.org/k", sections=(problem, fund))
    for count in (1, 2, 3):
        result = summarize(article, SummaryOptions(sentences=count))
        # Asked for every sentence, the summary still leaves each section one.
        assert [p.heading for p in result.key_points] == ["The Problem", "How the Fund Works"]
        assert result.sentences
        assert not {p.text for p in result.key_points} & set(result.sentences)


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        (
            "The council approved the budget. Taxes stay flat.",
            ("The council approved the budget.", "Taxes stay flat."),
        ),
        ("Rain today. Sun tomorrow.", ("Rain today.", "Sun tomorrow.")),
        ("A new park opens downtown", ("A new park opens downtown",)),
    ],
)
def test_a_short_article_is_still_summarised(paragraph: str, expected: tuple[str, ...]) -> None:
    article = Article(
        "s", "Title", "https://example.org/s", sections=(ArticleSection("", (paragraph,)),)
    )
    assert summarize(article, SummaryOptions(sentences=2)).sentences == expected


def test_short_sentences_do_not_pad_a_summary_the_budget_cut() -> None:
    long_one = "The committee spent the whole of the long afternoon debating the plan in detail."
    text = f"{long_one} {long_one.replace('committee', 'council')} Fine."
    article = Article("b", "Plan", "https://example.org/b", sections=(ArticleSection("", (text,)),))
    result = summarize(article, SummaryOptions(sentences=2, article_words=20))
    assert len(result.sentences) == 1 and "Fine." not in result.sentences
