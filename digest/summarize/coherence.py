"""Extracts that read on their own. A sentence opening with a connective
("However,", "Yet", "Doch") that follows no shown sentence loses it; one
opening with a reference ("He", "This", "Они") is shown only after the
sentence before it (see `ranking.select`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from digest.summarize.language import Language

PERSONAL, POINTER = "personal", "pointer"
# "This is what they found: ..." points forward, to what follows the colon.
_FORWARD = re.compile(r"^[^:.;!?]{0,80}:\s")
# A capitalised word inside a sentence: a name the sentence gives.
_NAME = re.compile(r"(?<=\s)[^\W\d_][\w'’-]*")


def drop_connective(text: str, lang: Language) -> str:
    """The sentence without its opening connective, capitalised again."""
    if lang.connective is None:
        return text
    rest = lang.connective.sub("", text, count=1)
    if rest == text or len(rest.split()) < 3:
        return text  # nothing dropped, or too little left to stand alone
    return rest[0].upper() + rest[1:]


def shown(positions: Sequence[int], texts: Sequence[str], lang: Language) -> tuple[str, ...]:
    """The chosen sentences as the reader sees them, in text order: a
    connective whose sentence before is not shown is dropped."""
    kept = set(positions)
    return tuple(
        text if position - 1 in kept else drop_connective(text, lang)
        for position, text in sorted(zip(positions, texts, strict=True))
    )


def leans_back(text: str, lang: Language) -> str:
    """PERSONAL for a sentence opening with a personal pronoun ("He", "But
    they"), POINTER for one opening with a pointer ("This", "Therefore"),
    "" for one that stands alone."""
    opening = (
        drop_connective(text, lang) if lang.connective and lang.connective.match(text) else text
    )
    for kind, pattern in ((PERSONAL, lang.personal), (POINTER, lang.pointer)):
        if pattern and pattern.match(opening):
            return "" if _FORWARD.match(text) else kind
    return ""


def names_someone(text: str) -> bool:
    """True when a sentence gives a name a following pronoun can stand for."""
    return any(word[0].isupper() for word in _NAME.findall(text))
