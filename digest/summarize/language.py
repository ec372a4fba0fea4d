"""What the summariser knows of a language: its stop words, the openers that
lean on the sentence before ("However", "He", "Doch", "Однако") and the
words that join two clauses. Chosen by the digest's `language`, or a source's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


def words(text: str) -> frozenset[str]:
    """A set of words written as one string, a space between each."""
    return frozenset(text.split())


# English keeps its own short list: the ranker's weights were set with it
# (bench/RESULTS.md); other languages take the stop-words package's lists.
ENGLISH_STOPWORDS = words(
    """a about after again all also am an and any are as at be been before being but by
    can could did do does down during each few for from had has have he her here hers
    him his how i if in into is it its just me more most mr mrs ms my new no not now
    of off on once one only or other our out over own said same says she should so
    some such than that the their them then there these they this those through to too
    two under up us very was we were what when where which while who whom why will
    with would year years yes yet you your"""
)

# Openers that only link to the sentence before: dropped when that sentence
# is not shown, which leaves a statement that still holds on its own.
CONNECTIVES = {
    "en": "however|but|yet|and|then|still|meanwhile|moreover|furthermore|also|besides|indeed"
    "|nevertheless|nonetheless|in addition|even so|at the same time|on the other hand",
    "de": "aber|doch|jedoch|allerdings|trotzdem|dennoch|außerdem|zudem|und|auch|indes"
    "|unterdessen|darüber hinaus|gleichwohl",
    "fr": "mais|pourtant|cependant|toutefois|néanmoins|et|aussi|en outre|de plus"
    "|par ailleurs|en revanche|or|d'ailleurs|d’ailleurs",
    "es": "pero|sin embargo|no obstante|y|además|también|aun así|por otra parte"
    "|en cambio|mientras tanto|asimismo",
    "ru": "но|однако|а|и|тем не менее|впрочем|кроме того|также|при этом|между тем",
}
# Openers that point back at something the reader must have seen. A personal
# pronoun ("He", "Sie", "Они") names someone an earlier shown sentence may
# already have named; a pointer ("This", "Therefore", "Dadurch") needs the very
# sentence before it.
PERSONAL = {
    "en": "he|she|they|his|her|their|them",
    "de": "er|sie|seine|seiner|seinem|seinen|ihre|ihrer|ihrem|ihren",
    "fr": "il|elle|ils|elles|son|sa|ses|leur|leurs",
    "es": "él|ella|ellos|ellas|su|sus",
    "ru": "он|она|они|оно|его|её|ее|их",
}
POINTERS = {
    "en": "this|that|these|those|such|the latter|the former|thus|therefore|instead"
    "|as a result|in turn|otherwise",
    "de": "dies|diese|dieser|dieses|dadurch|daher|deshalb|deswegen|dann|damit|stattdessen|somit",
    "fr": "cela|ceci|ces|ainsi|donc|alors|puis",
    "es": "esto|eso|estos|estas|esos|esas|así|entonces|luego|por eso|por lo tanto",
    "ru": "это|этот|эта|эти|поэтому|тогда|затем|потом",
}
# "This week", "Diese Woche": a reference to time, not to the sentence before.
TIME_WORDS = (
    "week|weekend|year|month|morning|afternoon|evening|summer|winter|spring|autumn|fall"
    "|season|time|woche|jahr|monat|morgen|sommer|winter|année|semaine|mois|été|hiver|año"
    "|semana|mes|verano|invierno|год|неделе|месяце|летом|зимой"
)
# Words that join a second clause to a first.
JOINERS = {
    "en": "and|but|or|because|which|who|while|when|after|before|although|though|if|that"
    "|since|until|as|so|whereas|where",
    "de": "und|aber|oder|weil|dass|daß|während|wenn|als|nachdem|obwohl|ob|sondern|denn"
    "|bevor|seit|damit|wobei",
    "fr": "et|mais|ou|parce|qui|que|quand|lorsque|après|avant|bien|si|puisque|tandis|dont|où",
    "es": "y|pero|o|porque|que|quien|cuando|mientras|aunque|si|donde|después|antes|sino|pues",
    "ru": "и|но|или|потому|который|которая|которые|которое|когда|если|хотя|чтобы|что"
    "|где|после|пока|а",
}


@dataclass(frozen=True)
class Language:
    """A language's words, as the ranker and the sentence checks use them."""

    code: str
    stopwords: frozenset[str]
    connective: re.Pattern[str] | None
    personal: re.Pattern[str] | None
    pointer: re.Pattern[str] | None
    joiners: frozenset[str]


def base_code(language: str) -> str:
    """'en-GB', 'pt_BR', 'DE' -> 'en', 'pt', 'de'; '' means English."""
    return re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0] or "en"


@lru_cache(maxsize=32)
def language(code: str) -> Language:
    """The language named by a code such as 'de' or 'fr-CA' (cached)."""
    base = base_code(code)
    return Language(
        base,
        _stopwords(base),
        _opener(CONNECTIVES.get(base), r"(?:\s*,)?\s+"),
        _opener(PERSONAL.get(base), r"\b"),
        _opener(POINTERS.get(base), r"(?!\s+(?:" + TIME_WORDS + r")\b)\b"),
        frozenset(JOINERS.get(base, "").split("|")) - {""},
    )


def _opener(words: str | None, after: str) -> re.Pattern[str] | None:
    if not words:
        return None
    return re.compile(rf"^(?:{words}){after}", re.IGNORECASE)


def _stopwords(base: str) -> frozenset[str]:
    if base == "en":
        return ENGLISH_STOPWORDS
    from stop_words import LANGUAGE_MAPPING, get_stop_words

    if base not in LANGUAGE_MAPPING:
        return frozenset()  # every word counts: a rarer language still gets a summary
    return frozenset(w.lower() for w in get_stop_words(base))
