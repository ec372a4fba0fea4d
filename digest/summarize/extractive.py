"""The extractive summariser: a few chosen sentences plus a key point per
headed section, offline and fast. Budgets are in words and are met by
leaving sentences out, never by cutting one.
"""

from __future__ import annotations

from collections import Counter

from digest.config import SummaryOptions
from digest.model import Article, ArticleSection, KeyPoint, Summary
from digest.summarize.ranking import (
    Candidate,
    content_words,
    make_candidates,
    score,
    select,
    term_counts,
)

# A bullet list is kept as a key point when it is this short.
KEY_POINT_BULLETS = 4
KEY_POINT_BULLET_WORDS = 25


class ExtractiveSummarizer:
    """Chooses sentences from the article itself; offline and fast."""

    def __init__(self, options: SummaryOptions | None = None) -> None:
        self.options = options or SummaryOptions()

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
