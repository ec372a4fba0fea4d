"""Key points: one per headed section, so that every section of an article
shows in the digest. A section's key point is its most central sentence that
informs (ranked within the section, with a position prior), passing over
teasers, questions and one-clause hooks while it has better; or its bullets.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from digest.collect.clean import clip
from digest.model import ArticleSection, KeyPoint
from digest.summarize.coherence import drop_connective
from digest.summarize.language import Language
from digest.summarize.noise import is_furniture
from digest.summarize.ranking import Candidate, content_words, make_candidates, score

# A bullet list is kept whole as a key point when it is this short; a longer
# one gives its best few.
KEY_POINT_BULLETS = 4
KEY_POINT_BULLET_WORDS = 25
# What a key point may show at most; longer text is cut at a word with "…".
KEY_POINT_CHARS = 320
BULLET_CHARS = 200

_NAME = re.compile(r"(?<=\s)[^\W\d_][\w'’-]*")


@dataclass(frozen=True)
class Pool:
    """A headed section's key point: its sentences, best first, and bullets."""

    heading: str
    ranked: tuple[Candidate, ...]
    bullets: tuple[str, ...] = ()

    def needs(self, taken: set[str]) -> str:
        """The sentence this section must keep to have a key point at all, when
        the summary would take every one; "" when it needs none."""
        if self.bullets or not self.ranked or any(c.text not in taken for c in self.ranked):
            return ""
        return self.ranked[0].text


def section_pool(section: ArticleSection, counts: Counter[str], lang: Language) -> Pool:
    """Rank a section's sentences for its key point, within the section."""
    bullets = tuple(b for b in section.bullets if b.strip() and not is_furniture(b.strip()))
    short_list = 0 < len(bullets) <= KEY_POINT_BULLETS and all(
        len(b.split()) <= KEY_POINT_BULLET_WORDS for b in bullets
    )
    blocks = list(section.paragraphs) if short_list else [*section.paragraphs, *bullets]
    candidates = make_candidates(blocks, lang=lang)
    # The heading says what the section is about: its words weigh as a mention.
    local = counts + Counter(content_words(section.heading, lang))
    scores = score(candidates, local)
    order = sorted(
        range(len(candidates)),
        key=lambda i: (scores[i] <= 0 or is_teaser(candidates[i]), scores[i] <= 0, -scores[i], i),
    )
    ranked = tuple(candidates[i] for i in order)
    if short_list:
        return Pool(section.heading, ranked, bullets)
    if not section.paragraphs and bullets:
        return Pool(section.heading, (), _best_bullets(bullets, counts, lang))
    return Pool(section.heading, ranked)


def choose(pool: Pool, taken: set[str], lang: Language) -> KeyPoint | None:
    """The pool's best sentence the summary does not show, or None when a
    section has nothing left to say (no sentence, no bullets)."""
    text = next((c.text for c in pool.ranked if c.text not in taken), "")
    if not text and not pool.bullets:
        return None
    shown = clip(drop_connective(text, lang), KEY_POINT_CHARS) if text else ""
    return KeyPoint(pool.heading, shown, tuple(clip(b, BULLET_CHARS) for b in pool.bullets))


def is_teaser(candidate: Candidate) -> bool:
    """A sentence that points at the news rather than giving it: a question or
    a one-clause hook (see `ranking.is_hook`), one without a number, a name or
    two content words, or one leaning on a sentence the reader will not see."""
    if candidate.hook or candidate.reference:
        return True
    text = candidate.text
    number = any(ch.isdigit() for ch in text)
    name = any(w[0].isupper() for w in _NAME.findall(text))
    return not (number or name or len(candidate.words) >= 2)


def _best_bullets(
    bullets: tuple[str, ...], counts: Counter[str], lang: Language
) -> tuple[str, ...]:
    """A long list's most central bullets, in their order."""
    owner: list[int] = []
    candidates: list[Candidate] = []
    for index, bullet in enumerate(bullets):
        found = make_candidates([bullet], start=len(candidates), lang=lang)
        candidates += found
        owner += [index] * len(found)
    best: dict[int, float] = {}
    for index, value in zip(owner, score(candidates, counts), strict=True):
        best[index] = max(best.get(index, 0.0), value)
    top = sorted(best, key=best.__getitem__, reverse=True)[:KEY_POINT_BULLETS]
    return tuple(bullets[i] for i in sorted(top))
