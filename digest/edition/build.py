"""The one edition builder: each configured section's newest articles, up to
its limit, summarised, ranked and fitted to the edition's word budget. The
send, `digest build`, the scheduler's slots and the preview all use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from digest.config import SectionConfig
from digest.model import Article, Edition, EditionArticle, EditionSection, Summary
from digest.summarize import Summarizer, fit_edition_budget


def edition_id_for(moment: datetime) -> str:
    """An edition's identity is the minute it was made for, in the digest's zone."""
    return moment.strftime("%Y-%m-%dT%H%M")


def default_subject(title: str, number: int, created: str) -> str:
    return f"{title} #{number}: {created[:10]}"


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
    stamp = created.isoformat(timespec="minutes")
    return Edition(
        edition_id,
        title,
        number,
        stamp,
        tuple(built),
        subject=default_subject(title, number, stamp),
    )


def renumbered(edition: Edition, edition_id: str, number: int) -> Edition:
    """The edition under the identity the store gave it; a subject that was
    the default follows the new number, an editor's subject stays."""
    default = default_subject(edition.title, edition.number, edition.created)
    subject = edition.subject
    if not subject or subject == default:
        subject = default_subject(edition.title, number, edition.created)
    return replace(edition, id=edition_id, number=number, subject=subject)


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


# A variant names one copy of an edition by the sections it holds: ';'-joined
# keys, FULL for every section, NOTE for the short "nothing new" note.
FULL, NOTE = "", "#note"


def variant_sections(variant: str) -> frozenset[str]:
    """The section keys a variant holds (empty: every section, or the note)."""
    return frozenset(k for k in variant.split(";") if k) if variant != NOTE else frozenset()


def for_sections(edition: Edition, keys: frozenset[str]) -> Edition:
    """The edition as a reader of these sections sees it; empty keys: all."""
    if not keys:
        return edition
    kept = tuple(s for s in edition.sections if s.key in keys)
    return replace(edition, sections=kept)


def is_empty(edition: Edition) -> bool:
    return not any(section.articles for section in edition.sections)
