"""Editions: picking and grouping articles into the configured sections,
and the edition file (JSON) that editors may change before a send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from digest.config import SectionConfig
from digest.errors import EditionError
from digest.model import (
    Article,
    Edition,
    EditionArticle,
    EditionSection,
    KeyPoint,
    Summary,
)
from digest.summarize import Summarizer, fit_edition_budget

FORMAT_VERSION = 1


def edition_id_for(moment: datetime) -> str:
    """An edition's identity is the minute it was made for, in the digest's zone."""
    return moment.strftime("%Y-%m-%dT%H%M")


def build_edition(
    edition_id: str,
    title: str,
    number: int,
    created: datetime,
    sections: Sequence[SectionConfig],
    articles: Mapping[str, Sequence[Article]],
    summarizer: Summarizer,
    edition_words: int = 0,
) -> Edition:
    """Summarise each section's newest articles, up to the section's limit.

    With ``edition_words`` (0: no limit) the summaries are shortened to fit it together.
    """
    built = []
    for section in sections:
        chosen = _newest(articles.get(section.key, ()), section.limit)
        entries = tuple(_entry(a, summarizer, rank) for rank, a in enumerate(chosen))
        if entries:
            built.append(EditionSection(section.key, section.title, entries))
    if edition_words:
        built = _fit_words(built, edition_words)
    return Edition(edition_id, title, number, created.isoformat(timespec="minutes"), tuple(built))


def _fit_words(sections: list[EditionSection], edition_words: int) -> list[EditionSection]:
    summaries = [Summary(a.summary, a.key_points) for s in sections for a in s.articles]
    fitted = iter(fit_edition_budget(summaries, edition_words))
    return [
        replace(s, articles=tuple(_with_summary(a, next(fitted)) for a in s.articles))
        for s in sections
    ]


def _with_summary(article: EditionArticle, summary: Summary) -> EditionArticle:
    return replace(article, summary=summary.sentences, key_points=summary.key_points)


def _newest(articles: Sequence[Article], limit: int) -> list[Article]:
    def when(article: Article) -> float:
        return article.published.timestamp() if article.published else 0.0

    return sorted(articles, key=when, reverse=True)[:limit]


def _entry(article: Article, summarizer: Summarizer, rank: int) -> EditionArticle:
    summary = summarizer.summarize(article)
    return EditionArticle(
        id=article.id,
        title=article.title,
        url=article.url,
        standfirst=article.standfirst,
        source=article.source,
        published=article.published.date().isoformat() if article.published else "",
        summary=summary.sentences,
        key_points=summary.key_points,
        rank=float(rank),
    )


def for_sections(edition: Edition, keys: frozenset[str]) -> Edition:
    """The edition as a subscriber of these sections sees it; empty keys: all."""
    if not keys:
        return edition
    kept = tuple(s for s in edition.sections if s.key in keys)
    return replace(edition, sections=kept)


def is_empty(edition: Edition) -> bool:
    return not any(section.articles for section in edition.sections)


def to_json(edition: Edition) -> str:
    data = {"format": FORMAT_VERSION, **asdict(edition)}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def save_edition(edition: Edition, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(edition), encoding="utf-8")


def load_edition(path: Path) -> Edition:
    """Read an edition file back, with errors that point at the bad field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise EditionError(f"edition file {path} does not exist; run 'digest build' first") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EditionError(f"{path} is not valid JSON: {e}; fix the edit or rebuild") from e
    return from_json(data, str(path))


def from_json(data: Any, where: str) -> Edition:
    try:
        return Edition(
            id=str(data["id"]),
            title=str(data["title"]),
            number=int(data["number"]),
            created=str(data["created"]),
            sections=tuple(_section(s) for s in data["sections"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EditionError(
            f"{where}: missing or invalid field {e}; compare with a built edition"
        ) from e


def _section(data: dict[str, Any]) -> EditionSection:
    return EditionSection(
        key=str(data["key"]),
        title=str(data["title"]),
        articles=tuple(_article(a) for a in data["articles"]),
    )


def _article(data: dict[str, Any]) -> EditionArticle:
    return EditionArticle(
        id=str(data["id"]),
        title=str(data["title"]),
        url=str(data["url"]),
        standfirst=str(data.get("standfirst", "")),
        source=str(data.get("source", "")),
        published=str(data.get("published", "")),
        summary=tuple(str(s) for s in data.get("summary", [])),
        key_points=tuple(
            KeyPoint(str(k["heading"]), str(k.get("text", "")), tuple(k.get("bullets", [])))
            for k in data.get("key_points", [])
        ),
        rank=float(data.get("rank", 0.0)),
    )
