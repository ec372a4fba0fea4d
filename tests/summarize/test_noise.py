"""Page furniture is dropped before ranking, in any language: captions, image
and file sizes, bylines, "Read more", share prompts and timestamps."""

from __future__ import annotations

import pytest

from digest.collect.feeds import parse_feed
from digest.model import Article, ArticleSection
from digest.summarize import SummaryOptions, summarize
from digest.summarize.noise import is_furniture, strip_lead_in

NOISE = {
    "en": [
        "360 x 640 (38.06 KB)",
        "By Jane Doe and John Smith",
        "Read more: Floods close the bridge",
        "Share on Facebook",
        "Published: 15:25 EST, 2 January 2014",
        "3 hours ago",
        "The harbour at dawn (Photo: Getty Images)",
        "Comments (12)",
    ],
    "de": [
        "1920 × 1080 px, 2,4 MB",
        "Von Max Mustermann",
        "Weiterlesen",
        "Jetzt teilen auf Twitter",
        "Veröffentlicht am 12.03.2024, 14:30 Uhr",
        "vor 2 Stunden",
        "Der Hafen am Morgen (Foto: dpa)",
    ],
    "fr": [
        "800 x 600 (120 Ko)",
        "Par Jean Dupont",
        "Lire la suite",
        "Partager sur Facebook",
        "Publié le 3 mars 2024 à 15 h 20",
        "il y a 3 heures",
    ],
    "es": [
        "1024 x 768 (95 KB)",
        "Por María García",
        "Leer más",
        "Compartir en Twitter",
        "Actualizado el 5 de mayo de 2024, 10:15",
        "hace 2 horas",
    ],
    "ru": [
        "360 x 640 (38,06 килобайт)",
        "Автор: Иван Петров",
        "Читать далее",
        "Поделиться ВКонтакте",
        "Опубликовано: 12 марта 2024, 14:30 мск",
        "2 часа назад",
        "Фото: Иван Петров",
    ],
}
PROSE = [
    "The council approved the harbour budget on Monday after a long debate.",
    "Shares in the ferry company rose 5 percent on the news.",
    "Share prices fell after the announcement.",
    "Comments by the mayor drew criticism from the opposition.",
    "Die Fähre fährt ab März wieder zweimal am Tag.",
    "Le ferry reprendra le 3 mars à 15 h entre les deux ports.",
    "El ferry volverá a funcionar el 5 de mayo entre los dos puertos.",
    "Паром между городами снова пойдёт 12 марта.",
    "Rain today. Sun tomorrow.",
    "東京の新しい図書館が開館した。",
]


@pytest.mark.parametrize(
    ("language", "line"), [(lang, line) for lang, lines in NOISE.items() for line in lines]
)
def test_furniture_in_five_languages(language: str, line: str) -> None:
    assert is_furniture(line), line


@pytest.mark.parametrize("sentence", PROSE)
def test_prose_is_not_furniture(sentence: str) -> None:
    assert not is_furniture(sentence)


@pytest.mark.parametrize(
    ("sentence", "kept"),
    [
        ("(CNN)Floods closed the bridge.", "Floods closed the bridge."),
        ("(The Harbour Times)Ferries stopped.", "Ferries stopped."),
        ("BALL OF THE CENTURY Benaud was on hand.", "Benaud was on hand."),
        ("Anzeige Die Fähre fährt wieder.", "Die Fähre fährt wieder."),
    ],
)
def test_lead_ins_are_cut_and_the_sentence_kept(sentence: str, kept: str) -> None:
    assert strip_lead_in(sentence) == kept


RUSSIAN_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Фотоблог</title><link>https://blog.example.ru/</link>
<description>d</description><language>ru</language>
<item><guid>p1</guid><title>Новый паром в порту</title><link>https://blog.example.ru/p1</link>
<description>{body}</description></item></channel></rss>"""
BODY = (
    "<p>360 x 640 (38,06 килобайт)</p><p>480 x 800 (52,10 килобайт)</p>"
    "<p>Фото: Иван Петров</p>"
    "<p>В субботу в порт города пришёл новый паром. Паром будет ходить между двумя "
    "городами дважды в день. Билет на паром стоит 300 рублей.</p>"
    "<p>Поделиться</p><p>Читать далее</p>"
)


def test_a_russian_feed_is_summarised_from_its_text_not_its_captions() -> None:
    from html import escape

    (entry,) = parse_feed(RUSSIAN_FEED.format(body=escape(BODY)).encode(), "https://x/feed")
    article = entry.article
    assert "килобайт" in article.text  # the cleaner keeps text; ranking drops the noise
    result = summarize(article, SummaryOptions(sentences=2, language="ru"))
    assert len(result.sentences) == 2
    joined = " ".join(result.sentences)
    for noise in ("килобайт", "360 x 640", "Фото", "Поделиться", "Читать"):
        assert noise not in joined
    assert all("паром" in s.lower() for s in result.sentences)


def test_a_figure_caption_never_reaches_the_article() -> None:
    html = (
        "<p>The new ferry arrived in the harbour on Saturday morning.</p>"
        "<figure><img src='x.jpg'><figcaption>The ferry at dawn. Photo: J. Doe</figcaption>"
        "</figure><p>It will cross twice a day.</p>"
    )
    from digest.collect.clean import html_to_sections

    sections = html_to_sections(html)
    text = " ".join(p for s in sections for p in s.paragraphs)
    assert "dawn" not in text and "cross twice" in text


def test_an_article_of_noise_has_an_empty_summary() -> None:
    section = ArticleSection("", ("360 x 640 (38,06 килобайт)", "Share on Facebook"))
    article = Article("n", "Gallery", "https://example.org/n", sections=(section,))
    assert summarize(article).sentences == ()
