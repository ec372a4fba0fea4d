"""The extractive ranker: which sentences of an article say what matters.

A sentence scores high when it comes early (news puts the point first) and
when its content words recur across the article, per word so that long
sentences gain nothing by length alone. Captions and run-on sentences are
discounted, and a sentence repeating one already chosen is discounted too.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from digest.summarize.sentences import (
    ends_like_sentence,
    is_furniture,
    looks_like_caption,
    split_sentences,
    strip_lead_in,
)
from digest.summarize.words import text_words

# Weights, set once on news in general (see bench/RESULTS.md), not per article.
POSITION_DECAY = 0.8  # score falls as 1 / (1 + position) ** POSITION_DECAY
LENGTH_NORM = 0.7  # salience is divided by length ** LENGTH_NORM
SALIENCE_FLOOR = 0.2  # keeps an early sentence in play even with rare words
CAPTION_FACTOR = 0.6  # "X, pictured, ..." describes a photo, not the news
QUOTE_FACTOR = 0.6  # a sentence opening with a quotation rarely says what happened
LONG_WORDS = 50  # past this a "sentence" is usually text glued to a caption
LONG_FACTOR = 0.6
REDUNDANCY = 1.0  # share of a score lost per unit of overlap with a chosen sentence
MIN_WORDS = 5  # shorter ones ("No wonder.") carry no news on their own

_QUOTES = "\"'“‘«"
_TOKEN = re.compile(r"[a-z0-9]{2,}")
_STOPWORD_TEXT = """a about after again all also am an and any are as at be been before
    being but by can could did do does down during each few for from had has
    have he her here hers him his how i if in into is it its just me more most
    mr mrs ms my new no not now of off on once one only or other our out over
    own said same says she should so some such than that the their them then
    there these they this those through to too two under up us very was we
    were what when where which while who whom why will with would year years
    yes yet you your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Candidate:
    """A sentence of the article with what the ranker needs to know of it."""

    position: int
    text: str
    words: frozenset[str]
    length: int
    eligible: bool
    caption: bool = False
    quote: bool = False


def content_words(text: str) -> frozenset[str]:
    """Lowercased words that carry meaning, plural "s" folded into the stem."""
    words = set(_TOKEN.findall(text.lower()))
    words -= STOPWORDS
    # "kites" and "kite" are one topic; a full stemmer costs more than it adds.
    return frozenset(w[:-1] if len(w) > 3 and w[-1] == "s" and w[-2] != "s" else w for w in words)


def make_candidates(blocks: Iterable[str], start: int = 0) -> list[Candidate]:
    """Sentences of the blocks, furniture dropped, numbered from ``start``."""
    found = []
    position = start
    for block in blocks:
        for raw in split_sentences(block):
            text = strip_lead_in(raw)
            if not text or is_furniture(text):
                continue
            length = text_words(text)
            # Text that does not end as a sentence is a heading or a caption.
            eligible = length >= MIN_WORDS and ends_like_sentence(text)
            found.append(
                Candidate(
                    position,
                    text,
                    content_words(text),
                    length,
                    eligible,
                    caption=looks_like_caption(text),
                    quote=text[0] in _QUOTES,
                )
            )
            position += 1
    return found


def term_counts(candidates: Iterable[Candidate], extra: Iterable[str] = ()) -> Counter[str]:
    """In how many sentences each word appears; ``extra`` texts (title...) count once."""
    counts: Counter[str] = Counter()
    for candidate in candidates:
        counts.update(candidate.words)
    for text in extra:
        counts.update(content_words(text))
    return counts


def score(candidates: Sequence[Candidate], counts: Counter[str]) -> list[float]:
    """One score per candidate; ineligible ones get 0."""
    salience = []
    for candidate in candidates:
        # log(count) is 0 for a word said once: only recurring topics count.
        weight = sum(math.log(counts[w]) for w in candidate.words if counts[w] > 1)
        salience.append(weight / max(candidate.length, 1) ** LENGTH_NORM)
    top = max(salience, default=0.0) or 1.0
    scores = []
    for candidate, value in zip(candidates, salience, strict=True):
        if not candidate.eligible:
            scores.append(0.0)
            continue
        result = (SALIENCE_FLOOR + value / top) / (1 + candidate.position) ** POSITION_DECAY
        if candidate.caption:
            result *= CAPTION_FACTOR
        if candidate.quote:
            result *= QUOTE_FACTOR
        if candidate.length > LONG_WORDS:
            result *= LONG_FACTOR
        scores.append(result)
    return scores


def _novel(value: float, candidate: Candidate, chosen: Iterable[Candidate]) -> float:
    """A score discounted by the candidate's overlap with the sentences chosen so far."""
    size = len(candidate.words) + 1
    overlap = max((len(candidate.words & c.words) / size for c in chosen), default=0.0)
    return value * (1 - REDUNDANCY * overlap)


def select(
    candidates: Sequence[Candidate], scores: Sequence[float], count: int, word_budget: int = 0
) -> list[Candidate]:
    """Up to ``count`` best candidates within ``word_budget`` (0: none), in text order.

    Sentences are never cut: one that does not fit the budget is skipped. If
    not even one fits, the best sentence is returned alone, so that an article
    is never left without a summary.
    """
    eligible = [i for i, s in enumerate(scores) if s > 0 and candidates[i].eligible]
    pool = list(eligible)
    chosen: list[Candidate] = []
    words = 0
    while pool and len(chosen) < count:
        best = max(pool, key=lambda i: _novel(scores[i], candidates[i], chosen))
        pool.remove(best)
        if word_budget and words + candidates[best].length > word_budget:
            continue
        chosen.append(candidates[best])
        words += candidates[best].length
    if not chosen and any(s > 0 for s in scores):
        chosen.append(candidates[max(range(len(scores)), key=scores.__getitem__)])
    if len(eligible) < count:  # a short article: not a budget that left room
        budget_left = word_budget - words if word_budget else 0
        chosen += fill_short(candidates, chosen, count - len(chosen), budget_left)
    return sorted(chosen, key=lambda c: c.position)


def fill_short(
    candidates: Sequence[Candidate], chosen: Sequence[Candidate], missing: int, word_budget: int
) -> list[Candidate]:
    """For a short article with too few full sentences, the rest in text order.

    Short sentences ("Taxes stay flat.") and unpunctuated lines are passed over
    when an article has better ones; an article that has nothing better must
    still be summarised. Sentences come before unpunctuated lines; captions never.
    """
    if missing <= 0:
        return []
    taken = {c.position for c in chosen}
    rest = [c for c in candidates if c.position not in taken and not c.caption]
    rest.sort(key=lambda c: (not ends_like_sentence(c.text), c.position))
    extra: list[Candidate] = []
    words = 0
    for candidate in rest:
        if len(extra) == missing:
            break
        if word_budget and words + candidate.length > word_budget:
            continue
        extra.append(candidate)
        words += candidate.length
    return extra
