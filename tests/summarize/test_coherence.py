"""Coherent extracts: no connective or reference that leans on a sentence the
reader does not see."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.collect.files import read_article
from digest.model import Article, ArticleSection
from digest.summarize import SummaryOptions, split_sentences, summarize
from digest.summarize.coherence import drop_connective
from digest.summarize.language import language

DATA = Path(__file__).resolve().parent / "data"


def article_of(text: str, title: str = "The ferry") -> Article:
    return Article("a", title, "https://example.org/a", sections=(ArticleSection("", (text,)),))


def opens_dangling(sentence: str, before: str | None) -> bool:
    lang = language("en")
    leaning = (lang.connective, lang.personal, lang.pointer)
    return before is None and any(p is not None and p.match(sentence) for p in leaning)


def test_the_sectioned_summary_has_no_dangling_connective() -> None:
    article = read_article(DATA / "harbour-deal.txt")
    result = summarize(article)
    source = split_sentences(article.text)
    for sentence in result.sentences:
        if sentence not in source:
            continue  # a connective was dropped: it stands alone now
        index = source.index(sentence)
        before = source[index - 1] if index else None
        shown_before = before if before in result.sentences else None
        assert not opens_dangling(sentence, shown_before) or index == 0, sentence


@pytest.mark.parametrize(
    ("sentence", "standalone"),
    [
        (
            "However, the ferry will run twice a day.",
            "The ferry will run twice a day.",
        ),
        ("Yet officials say the port wants a partner.", "Officials say the port wants a partner."),
        ("But the night crossing stays closed.", "The night crossing stays closed."),
        ("Meanwhile, fares will rise.", "Fares will rise."),
    ],
)
def test_a_connective_is_dropped_when_its_sentence_before_is_not_shown(
    sentence: str, standalone: str
) -> None:
    assert drop_connective(sentence, language("en")) == standalone


def test_a_connective_stays_when_the_sentence_before_is_shown() -> None:
    text = (
        "The ferry between the two towns will run twice a day from March onwards. "
        "But the night crossing between the two towns stays closed until the summer."
    )
    result = summarize(article_of(text), SummaryOptions(sentences=2, article_words=0))
    assert result.sentences == tuple(split_sentences(text))


def test_a_summary_never_opens_with_a_dropped_sentences_connective() -> None:
    text = (
        "The ferry line between Aldport and Brenhaven closed in 2019 after a dispute. "
        "Traffic on the coast road grew by a third in the years that followed. "
        "Local shops in the two harbours lost much of their summer trade. "
        "However, the ferry line between Aldport and Brenhaven will reopen in May."
    )
    result = summarize(article_of(text, "Ferry line reopens"), SummaryOptions(sentences=2))
    assert not any(s.startswith("However") for s in result.sentences)
    assert "The ferry line between Aldport and Brenhaven will reopen in May." in result.sentences


def test_a_pointer_comes_with_the_sentence_before_it_or_not_at_all() -> None:
    text = (
        "The council met on Monday to discuss the harbour. "
        "The harbour wall collapsed in a storm on Sunday night and flooded the quay. "
        "This means the ferry cannot dock at the harbour wall until repairs are done."
    )
    for count in (1, 2, 3):
        chosen = summarize(article_of(text, "Harbour wall"), SummaryOptions(sentences=count))
        sentences = list(chosen.sentences)
        for index, sentence in enumerate(sentences):
            if sentence.startswith("This means"):
                assert index > 0 and sentences[index - 1].startswith("The harbour wall collapsed")


def test_the_first_sentence_of_a_text_may_point_forward() -> None:
    text = (
        "This is the moment the harbour wall of Aldport collapsed into the sea. "
        "Nobody was hurt when the harbour wall fell on Sunday night."
    )
    result = summarize(article_of(text, "Harbour wall"), SummaryOptions(sentences=1))
    assert result.sentences[0].startswith("This is the moment")


@pytest.mark.parametrize(
    ("code", "sentence", "standalone"),
    [
        ("de", "Doch die Fähre fährt erst im Mai wieder.", "Die Fähre fährt erst im Mai wieder."),
        ("fr", "Cependant, le ferry reprendra en mai.", "Le ferry reprendra en mai."),
        ("es", "Sin embargo, el ferry volverá en mayo.", "El ferry volverá en mayo."),
        ("ru", "Однако паром вернётся в мае.", "Паром вернётся в мае."),
    ],
)
def test_connectives_in_other_languages(code: str, sentence: str, standalone: str) -> None:
    assert drop_connective(sentence, language(code)) == standalone
