"""The extractive summariser: a few chosen sentences plus a key point per
headed section, offline and fast. Budgets are in words and are met by
leaving sentences out, never by cutting one.
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.collect.clean import clip
from digest.config import SummaryOptions
from digest.model import Article, Summary
from digest.summarize.coherence import shown
from digest.summarize.keypoints import Pool, choose, section_pool
from digest.summarize.language import Language, language
from digest.summarize.ranking import Candidate, make_candidates, score, select, term_counts

# A "sentence" longer than this is text glued together; it is cut at a word.
SENTENCE_CHARS = 600


class ExtractiveSummarizer:
    """Chooses sentences from the article itself; offline and fast."""

    def __init__(self, options: SummaryOptions | None = None) -> None:
        self.options = options or SummaryOptions()

    def summarize(self, article: Article) -> Summary:
        lang = language(article.language or self.options.language)
        candidates = make_candidates(_body_blocks(article), lang=lang)
        counts = term_counts(candidates, (article.title, article.standfirst), lang)
        scores = score(candidates, counts)
        chosen = self._select(candidates, scores)
        if not self.options.key_points:
            return Summary(_texts(chosen, lang))
        pools = [section_pool(s, counts, lang) for s in article.sections if s.heading]
        chosen = self._leave_key_points(candidates, scores, chosen, pools)
        taken = {c.text for c in chosen}
        points = (choose(pool, taken, lang) for pool in pools)
        return Summary(_texts(chosen, lang), tuple(p for p in points if p is not None))

    def _select(self, candidates: list[Candidate], scores: Sequence[float]) -> list[Candidate]:
        return select(candidates, scores, self.options.sentences, self.options.article_words)

    def _leave_key_points(
        self,
        candidates: list[Candidate],
        scores: Sequence[float],
        chosen: list[Candidate],
        pools: Sequence[Pool],
    ) -> list[Candidate]:
        """The summary without the sentence each headed section needs for its
        key point: a section the summary would empty keeps its best one."""
        reserved: set[str] = set()
        for _ in pools:  # each round reserves for at least one more section
            newly = _reserved(pools, chosen) - reserved
            if not newly:
                break
            reserved |= newly
            kept = [i for i, c in enumerate(candidates) if c.text not in reserved]
            chosen = self._select([candidates[i] for i in kept], [scores[i] for i in kept])
            if not chosen:  # the summary comes first: it keeps its best sentence
                return self._select(candidates, scores)[:1]
        return chosen


def _body_blocks(article: Article) -> list[str]:
    # Bullets are fragments, not sentences: they count through key points, and
    # make the summary only when the article is nothing but bullets.
    paragraphs = [p for section in article.sections for p in section.paragraphs]
    return paragraphs or [b for section in article.sections for b in section.bullets]


def _texts(chosen: Sequence[Candidate], lang: Language) -> tuple[str, ...]:
    texts = shown([c.position for c in chosen], [c.text for c in chosen], lang)
    return tuple(clip(t, SENTENCE_CHARS) for t in texts)


def _reserved(pools: Sequence[Pool], chosen: Sequence[Candidate]) -> set[str]:
    """The best sentence of each section the summary would leave with no key
    point that informs."""
    taken = {c.text for c in chosen}
    return {text for text in (pool.needs(taken) for pool in pools) if text}
