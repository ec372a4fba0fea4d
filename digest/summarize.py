"""Summaries of articles: a few chosen sentences plus a key point per section.

The extractive summariser is the default and needs no network; an optional
LLM summariser (``digest.llm``) can stand in front of it. Budgets are in words
and are met by leaving sentences out, never by cutting one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from digest.config import Settings
from digest.errors import SummaryError
from digest.model import Article, ArticleSection, KeyPoint, Summary
from digest.ranking import (
    Candidate,
    content_words,
    make_candidates,
    score,
    select,
    term_counts,
)
from digest.sentences import split_sentences

__all__ = [
    "ExtractiveSummarizer",
    "Summarizer",
    "SummaryOptions",
    "article_from_text",
    "fit_edition_budget",
    "make_summarizer",
    "split_sentences",
    "summarize",
    "summarize_files",
    "summarize_jsonl",
    "summary_options",
    "summary_words",
]

# A bullet list is kept as a key point when it is this short.
KEY_POINT_BULLETS = 4
KEY_POINT_BULLET_WORDS = 25


class Summarizer(Protocol):
    """Anything that can summarise an article."""

    def summarize(self, article: Article) -> Summary: ...


@dataclass(frozen=True)
class SummaryOptions:
    """How long summaries are and, optionally, which LLM writes them."""

    sentences: int = 2  # sentences per article summary
    article_words: int = 80  # word budget per article summary; 0 means none
    key_points: bool = True
    # The LLM adapter is used only when both base URL and model are set.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)  # never printed
    llm_timeout: float = 30.0
    llm_cache_path: Path | None = None


class ExtractiveSummarizer:
    """Chooses sentences from the article itself; offline and fast."""

    def __init__(self, options: SummaryOptions = SummaryOptions()) -> None:
        self.options = options

    def summarize(self, article: Article) -> Summary:
        candidates = make_candidates(_body_blocks(article))
        counts = term_counts(candidates, (article.title, article.standfirst))
        chosen = select(
            candidates,
            score(candidates, counts),
            self.options.sentences,
            self.options.article_words,
        )
        sentences = tuple(c.text for c in chosen)
        if not self.options.key_points:
            return Summary(sentences)
        return Summary(sentences, key_points(article, counts, set(sentences)))


def _body_blocks(article: Article) -> list[str]:
    # Bullets are fragments, not sentences: they count through key points, and
    # make the summary only when the article is nothing but bullets.
    paragraphs = [p for section in article.sections for p in section.paragraphs]
    return paragraphs or [b for section in article.sections for b in section.bullets]


def key_points(article: Article, counts: Counter[str], taken: set[str]) -> tuple[KeyPoint, ...]:
    """One key point per headed section, chosen within that section."""
    points = []
    for section in article.sections:
        if not section.heading:
            continue
        point = _key_point(section, counts, taken)
        if point.text or point.bullets:
            points.append(point)
    return tuple(points)


def _key_point(section: ArticleSection, counts: Counter[str], taken: set[str]) -> KeyPoint:
    bullets = section.bullets
    short_list = 0 < len(bullets) <= KEY_POINT_BULLETS and all(
        len(b.split()) <= KEY_POINT_BULLET_WORDS for b in bullets
    )
    blocks = list(section.paragraphs) if short_list else [*section.paragraphs, *bullets]
    candidates = make_candidates(blocks)
    # The heading says what the section is about: its words weigh as a mention.
    local = counts + Counter(content_words(section.heading))
    best = _best_untaken(candidates, score(candidates, local), taken)
    return KeyPoint(section.heading, best, bullets if short_list else ())


def _best_untaken(candidates: list[Candidate], scores: list[float], taken: set[str]) -> str:
    # A key point the summary already shows word for word reads as a stutter in
    # the email: take the best sentence not shown, or none (the point is dropped).
    ranked = sorted(
        (i for i, s in enumerate(scores) if s > 0), key=lambda i: scores[i], reverse=True
    )
    for i in ranked:
        if candidates[i].text not in taken:
            return candidates[i].text
    return ""


def make_summarizer(options: SummaryOptions = SummaryOptions()) -> Summarizer:
    """The extractive summariser, behind the LLM adapter if one is configured."""
    extractive = ExtractiveSummarizer(options)
    if options.llm_base_url and options.llm_model:
        from digest.llm import LLMSummarizer

        return LLMSummarizer(options, fallback=extractive)
    return extractive


def summary_options(settings: Settings) -> SummaryOptions:
    """The summary settings; the LLM cache sits beside the database by default."""
    return SummaryOptions(
        sentences=settings.summary_sentences,
        article_words=settings.summary_words,
        llm_base_url=settings.llm_base_url or None,
        llm_model=settings.llm_model or None,
        llm_api_key=settings.llm_api_key or None,
        llm_timeout=settings.llm_timeout,
        llm_cache_path=settings.llm_cache or settings.database.with_name("llm-cache.sqlite"),
    )


def summarize(article: Article, options: SummaryOptions = SummaryOptions()) -> Summary:
    """Summarise one article with the summariser the options describe."""
    return make_summarizer(options).summarize(article)


def summary_words(summary: Summary) -> int:
    """Words a summary puts in the email: its sentences and key points."""
    texts = [*summary.sentences]
    for point in summary.key_points:
        texts.append(point.text)
        texts.extend(point.bullets)
    return sum(len(t.split()) for t in texts)


def fit_edition_budget(summaries: list[Summary], edition_words: int) -> list[Summary]:
    """Shorten summaries until all of them together fit ``edition_words``.

    The longest summary gives up something first: its last key point, then its
    last sentence. Every summary keeps at least one sentence, so the result may
    still exceed a budget too small for one sentence per article.
    """
    result = list(summaries)
    sizes = [summary_words(s) for s in result]
    while edition_words and sum(sizes) > edition_words:
        shrinkable = [i for i, s in enumerate(result) if s.key_points or len(s.sentences) > 1]
        if not shrinkable:
            break
        i = max(shrinkable, key=sizes.__getitem__)
        result[i] = _shrink(result[i])
        sizes[i] = summary_words(result[i])
    return result


def _shrink(summary: Summary) -> Summary:
    if summary.key_points:
        return replace(summary, key_points=summary.key_points[:-1])
    return replace(summary, sentences=summary.sentences[:-1])


def article_from_text(article_id: str, text: str, title: str = "") -> Article:
    """An article with one untitled section holding the text's paragraphs."""
    paragraphs = tuple(line.strip() for line in text.splitlines() if line.strip())
    return Article(article_id, title, "", sections=(ArticleSection("", paragraphs),))


def summarize_files(
    paths: Iterable[Path], options: SummaryOptions
) -> Iterator[tuple[Article, Summary]]:
    """Each article file (plain text or Markdown) with its summary."""
    from digest.sources.files import read_article

    summarizer = make_summarizer(options)
    for path in paths:
        article = read_article(path)
        yield article, summarizer.summarize(article)


def summarize_jsonl(lines: Iterable[str], options: SummaryOptions) -> Iterator[dict[str, Any]]:
    """Rows ``{"id", "article"}`` in, rows ``{"id", "summary": [sentences]}`` out."""
    summarizer = make_summarizer(replace(options, key_points=False))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = _parse_row(line, number)
        article = article_from_text(str(row["id"]), str(row["article"]))
        yield {"id": row["id"], "summary": list(summarizer.summarize(article).sentences)}


def _parse_row(line: str, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise SummaryError(
            f"line {number}: not JSON ({e.msg}); expected one object per line"
        ) from e
    if not isinstance(row, dict) or "id" not in row or "article" not in row:
        raise SummaryError(f'line {number}: each row needs "id" and "article" fields')
    return row
