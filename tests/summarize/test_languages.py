"""Sentence splitting and stop words follow the language: the digest's, or a
source's `language` option carried on its articles."""

from __future__ import annotations

from dataclasses import replace

import pytest

from digest.model import Article, ArticleSection
from digest.summarize import SummaryOptions, split_sentences, summarize
from digest.summarize.language import base_code, language
from digest.summarize.ranking import content_words


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (
            "en",
            "Dr. Smith paid $3.5 million to the U.S. Treasury. He left at 5 p.m. sharp.",
            ["Dr. Smith paid $3.5 million to the U.S. Treasury.", "He left at 5 p.m. sharp."],
        ),
        (
            "de",
            "Dr. Müller kam am 3. Oktober nach Berlin, z. B. mit dem Zug. Er blieb zwei Tage.",
            ["Dr. Müller kam am 3. Oktober nach Berlin, z. B. mit dem Zug.", "Er blieb zwei Tage."],
        ),
        (
            "fr",
            "M. Dupont est arrivé à Paris à 15 h. Il a dit « bonjour ». Voir aussi la suite.",
            [
                "M. Dupont est arrivé à Paris à 15 h.",
                "Il a dit « bonjour ».",
                "Voir aussi la suite.",
            ],
        ),
        (
            "es",
            "El Sr. García llegó a Madrid el lunes. ¿Qué pasó después? Nadie lo sabe.",
            ["El Sr. García llegó a Madrid el lunes.", "¿Qué pasó después?", "Nadie lo sabe."],
        ),
        (
            "ru",
            "В 2024 г. в городе жило 5 млн. человек. Он сказал: «Привет!» Потом ушёл.",
            ["В 2024 г. в городе жило 5 млн. человек.", "Он сказал: «Привет!»", "Потом ушёл."],
        ),
    ],
)
def test_sentences_split_in_five_languages(code: str, text: str, expected: list[str]) -> None:
    assert split_sentences(text, code) == expected


def test_a_region_or_script_subtag_names_the_same_language() -> None:
    assert base_code("de-AT") == base_code("de_DE") == base_code("DE") == "de"
    assert split_sentences("Er kam. Sie ging.", "de-AT") == ["Er kam.", "Sie ging."]


@pytest.mark.parametrize(
    ("code", "text", "kept", "dropped"),
    [
        ("en", "The ferry and the harbour", {"ferry", "harbour"}, {"the", "and"}),
        ("de", "Die Fähre und der Hafen", {"fähre", "hafen"}, {"die", "und", "der"}),
        ("fr", "Le ferry et le port", {"ferry", "port"}, {"le", "et"}),
        ("es", "El ferry y el puerto", {"ferry", "puerto"}, {"el"}),
        ("ru", "Паром и порт в городе", {"паром", "порт", "городе"}, {"и"}),
    ],
)
def test_stop_words_per_language(code: str, text: str, kept: set[str], dropped: set[str]) -> None:
    words = content_words(text, language(code))
    assert kept <= words
    assert not dropped & words


def test_a_language_without_a_stop_word_list_still_gets_a_summary() -> None:
    text = "Kivi talo seisoo mäellä. Talo on vanha ja kaunis talo. Mäellä asuu talon väki."
    article = Article("x", "Talo", "u", sections=(ArticleSection("", (text,)),))
    assert summarize(article, SummaryOptions(language="xx")).sentences


GERMAN = (
    "Die Fähre zwischen Altstadt und Neustadt fährt ab März wieder zweimal am Tag. "
    "Der Stadtrat hat die Fähre am Montag mit großer Mehrheit beschlossen. "
    "Die Kosten der Fähre tragen die beiden Städte gemeinsam."
)


def test_the_articles_own_language_wins_over_the_digests() -> None:
    article = Article("de1", "Fähre fährt wieder", "u", sections=(ArticleSection("", (GERMAN,)),))
    english = summarize(article, SummaryOptions(sentences=3, language="en"))
    german = summarize(replace(article, language="de"), SummaryOptions(sentences=3))
    assert len(german.sentences) == 3
    assert all(s in split_sentences(GERMAN, "de") for s in german.sentences)
    # English stop words leave "die", "der", "und" as topics: another ranking.
    assert summarize(article, SummaryOptions(sentences=3, language="de")) == german
    assert english.sentences  # still summarised, only less well
