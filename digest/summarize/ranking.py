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

from digest.summarize.coherence import PERSONAL, leans_back, names_someone
from digest.summarize.language import Language, language
from digest.summarize.noise import is_furniture, looks_like_caption, strip_lead_in
from digest.summarize.sentences import ends_like_sentence, split_sentences
from digest.summarize.words import text_words

# Weights, set once on news in general (see bench/RESULTS.md), not per article.
POSITION_DECAY = 0.8  # score falls as 1 / (1 + position) ** POSITION_DECAY
LENGTH_NORM = 0.7  # salience is divided by length ** LENGTH_NORM
SALIENCE_FLOOR = 0.2  # keeps an early sentence in play even with rare words
CAPTION_FACTOR = 0.6  # "X, pictured, ..." describes a photo, not the news
QUOTE_FACTOR = 0.6  # a sentence opening with a quotation rarely says what happened
LONG_WORDS = 50  # past this a "sentence" is usually text glued to a caption
LONG_FACTOR = 0.6
TEASER_FACTOR = 0.6  # a question or a hook leads into the news without giving it
# A one-clause sentence this short, without a number, is a hook: "Back home,
# the gambit is risky." It leads into the story rather than telling it.
HOOK_WORDS = 10
REDUNDANCY = 1.0  # share of a score lost per unit of overlap with a chosen sentence
MIN_WORDS = 5  # shorter ones ("No wonder.") carry no news on their own

_QUOTES = "\"'“‘«„"
_CLAUSE_BREAK = re.compile(r"[,;:—–(]|\s-\s")
_DIGIT = re.compile(r"\d")
# Words of two letters or more, in any script ("kite", "Drache", "змей").
_TOKEN = re.compile(r"[^\W_]{2,}")
ENGLISH = language("en")


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
    hook: bool = False
    # Opens with a word that leans on the sentence before: a connective
    # ("But"), or a reference (coherence.PERSONAL "He", coherence.POINTER "This").
    connective: bool = False
    reference: str = ""


def content_words(text: str, lang: Language = ENGLISH) -> frozenset[str]:
    """Lowercased words that carry meaning, plural "s" folded into the stem."""
    words = set(_TOKEN.findall(text.lower()))
    words -= lang.stopwords
    # "kites" and "kite" are one topic; a full stemmer costs more than it adds.
    return frozenset(w[:-1] if len(w) > 3 and w[-1] == "s" and w[-2] != "s" else w for w in words)


def make_candidates(
    blocks: Iterable[str], start: int = 0, lang: Language = ENGLISH
) -> list[Candidate]:
    """Sentences of the blocks, furniture dropped, numbered from ``start``."""
    found = []
    position = start
    for block in blocks:
        for raw in split_sentences(block, lang.code):
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
                    content_words(text, lang),
                    length,
                    eligible,
                    caption=looks_like_caption(text),
                    quote=text[0] in _QUOTES,
                    hook=is_hook(text, length, lang),
                    connective=bool(lang.connective and lang.connective.match(text)),
                    reference=leans_back(text, lang),
                )
            )
            position += 1
    return found


def is_hook(text: str, length: int, lang: Language) -> bool:
    """A question, or a short one-clause sentence without a number: it leads
    into the news ("Officially, the trip focused on trade.") without giving it."""
    if text.rstrip("\"'”’»“ ").endswith("?"):
        return True
    if length > HOOK_WORDS or _DIGIT.search(text):
        return False
    clauses = [p for p in _CLAUSE_BREAK.split(text) if len(p.split()) >= 3]
    words = (w.strip(".,;:!?\"'”’«»").lower() for w in text.split()[1:])
    return len(clauses) < 2 and not any(w in lang.joiners for w in words)


def term_counts(
    candidates: Iterable[Candidate], extra: Iterable[str] = (), lang: Language = ENGLISH
) -> Counter[str]:
    """In how many sentences each word appears; ``extra`` texts (title...) count once."""
    counts: Counter[str] = Counter()
    for candidate in candidates:
        counts.update(candidate.words)
    for text in extra:
        counts.update(content_words(text, lang))
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
        if candidate.hook:
            result *= TEASER_FACTOR
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

    Sentences are never cut: one that does not fit the budget is skipped. A
    sentence opening with a reference ("He", "This") comes with the sentence
    before it, or not at all. If not even one fits, the best sentence is
    returned alone, so that an article is never left without a summary.
    """
    eligible = [i for i, s in enumerate(scores) if s > 0 and candidates[i].eligible]
    pool = list(eligible)
    chosen: list[Candidate] = []
    words = 0
    while pool and len(chosen) < count:
        best = max(pool, key=lambda i: _novel(scores[i], candidates[i], chosen))
        pool.remove(best)
        group = _with_antecedent(candidates, best, {c.position for c in chosen})
        size = sum(c.length for c in group)
        if not group or len(chosen) + len(group) > count:
            continue
        if word_budget and words + size > word_budget:
            continue
        chosen += group
        words += size
        if len(group) == 2:
            pool = [i for i in pool if i != best - 1]
    if not chosen and any(s > 0 for s in scores):
        chosen.append(candidates[max(range(len(scores)), key=scores.__getitem__)])
    if len(eligible) < count:  # a short article: not a budget that left room
        budget_left = word_budget - words if word_budget else 0
        chosen += fill_short(candidates, chosen, count - len(chosen), budget_left)
    return sorted(chosen, key=lambda c: c.position)


def _with_antecedent(
    candidates: Sequence[Candidate], index: int, chosen: set[int]
) -> list[Candidate]:
    """The candidate, with the sentence before it when it leans on that one;
    nothing when it leans on something that cannot be shown with it."""
    candidate = candidates[index]
    # The text's first sentence leans on nothing: "This is the moment ..."
    # points forward, to what follows in the same sentence.
    if not candidate.reference or index == 0 or candidate.position - 1 in chosen:
        return [candidate]
    if candidate.reference == PERSONAL and _named_before(candidates, candidate, chosen):
        return [candidate]
    before = candidates[index - 1]
    if before.position != candidate.position - 1 or before.reference:
        return []
    return [before, candidate] if ends_like_sentence(before.text) else []


def _named_before(candidates: Sequence[Candidate], candidate: Candidate, chosen: set[int]) -> bool:
    """True when the last shown sentence before a pronoun names someone it
    can stand for: "He" after "The minister, John Smith, ..." reads fine."""
    earlier = [p for p in chosen if p < candidate.position]
    if not earlier:
        return False
    last = max(earlier)
    return any(c.position == last and names_someone(c.text) for c in candidates)


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
