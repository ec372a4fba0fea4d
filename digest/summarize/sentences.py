"""Sentence splitting and boilerplate detection for the summariser.

Text is cut into blocks (lines: paragraphs, bullets, headings) before it is
cut into sentences, so a list item or a heading never glues onto a sentence.
Sentences come from nupunkt, which ships its model inside the package.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol


class _SentenceTokenizer(Protocol):
    def tokenize(self, text: str) -> list[str]: ...


# A bullet marker at the start of a line: "-", "*", "•", "1." or "1)".
_BULLET = re.compile(r"^\s*(?:[-*•▪–]|\d{1,2}[.)])\s+")
_SPACE = re.compile(r"\s+")

# Datelines wire services put in front of the first sentence, e.g.
# "(CNN)", "LONDON (Reuters) -", "WASHINGTON —", "Kathmandu, Nepal (CNN)".
_DATELINE = re.compile(
    r"^(?:[A-Z][\w.'’-]*(?:[ ,]+[A-Z][\w.'’-]*){0,4}\s*)?"
    r"\((?:CNN|Reuters|AP|AFP|UPI|Bloomberg)\)\s*(?:[-—–]\s*)?"
    r"|^[A-Z]{3,}(?:[ ,]+[A-Z]{2,}){0,3}\s+[-—–]\s+"
)
# Phrases some sites glue in front of a sentence; the rest of it is kept.
_LEAD_IN = re.compile(
    r"^(?:scroll down for (?:the )?videos?|click here for (?:the )?video|"
    r"watch the video|advertisement)\b[\s.:]*",
    re.IGNORECASE,
)
# Sentences that are furniture of the page rather than part of the story.
_FURNITURE = re.compile(
    r"^(?:by\s[^.]{0,60}\.?\s*)?(?:published|updated|last updated|posted)\s*:"
    r"|^(?:read more|see also|more on this|share this|follow us|sign up|subscribe"
    r"|click here|copyright|all rights reserved|editing by|reporting by"
    r"|additional reporting)\b"
    r"|^(?:related|image|picture|photo|video|source|credit)s?\s*:"
    r"|^\|",
    re.IGNORECASE,
)
# Words a byline may hold besides names: "By Jane Doe for MailOnline".
_BYLINE_WORDS = frozenset(["and", "for", "in", "of", "the", "at"])
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_LOWERCASE_WORD = re.compile(r"(?<![\w'’-])[^\W\d_A-Z]", re.UNICODE)
# Words that mark a picture caption: "Smith (left) and ...", "..., pictured, ...".
_CAPTION = re.compile(
    r"\bpictured\b|\((?:left|right|centre|center|above|below|top|bottom|inset)\)"
    r"|,\s(?:left|right|centre|center|above|below)\b",
    re.IGNORECASE,
)
_TERMINAL = ".!?…\"'”’)"


@lru_cache(maxsize=1)
def _tokenizer() -> _SentenceTokenizer:
    # Imported and loaded once, on first use: loading the model takes ~0.1 s.
    import nupunkt

    tokenizer: _SentenceTokenizer = nupunkt.load("default")
    return tokenizer


def split_blocks(text: str) -> list[str]:
    """Cut text into blocks: one per non-empty line, bullet markers removed."""
    blocks = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if line:
            blocks.append(line)
    return blocks


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, block by block, whitespace tidied.

    Example:
        >>> split_sentences("Dr. Smith left. He said so.\\n- A bullet")
        ['Dr. Smith left.', 'He said so.', 'A bullet']
    """
    sentences = []
    tokenize = _tokenizer().tokenize
    for block in split_blocks(text):
        pieces = [_SPACE.sub(" ", piece).strip() for piece in tokenize(block)]
        sentences.extend(_rejoin([p for p in pieces if p]))
    return sentences


def _rejoin(pieces: list[str]) -> list[str]:
    # A piece that starts in lowercase continues the one before: the break
    # came after an abbreviation the model did not know ("pro-U.S. tilt").
    joined: list[str] = []
    for piece in pieces:
        if joined and piece[0].islower() and _ends_in_abbreviation(joined[-1]):
            joined[-1] = f"{joined[-1]} {piece}"
        else:
            joined.append(piece)
    return joined


def _ends_in_abbreviation(text: str) -> bool:
    """True after "U.S.", "p.m.", "Corp." and the like, not after "well."."""
    last = text.rsplit(" ", 1)[-1].rstrip(".")
    if "." in last:
        return True
    return last[:1].isupper() and len(last) <= 5 and text.endswith(".")


def strip_lead_in(sentence: str) -> str:
    """Remove a dateline or a "Scroll down for video" lead-in, keep the rest."""
    for pattern in (_DATELINE, _LEAD_IN):
        sentence = pattern.sub("", sentence, count=1)
    return sentence.strip()


def is_furniture(sentence: str) -> bool:
    """True for bylines, "PUBLISHED:" lines, "Read more" and similar."""
    if _FURNITURE.match(sentence):
        return True
    # A sentence with no lowercase word is a name, a date or a heading.
    if not _LOWERCASE_WORD.search(sentence):
        return True
    if sentence.startswith("By "):
        words = _WORD.findall(sentence)
        lowercase = [w for w in words if w[0].islower()]
        return len(words) <= 8 and all(w in _BYLINE_WORDS for w in lowercase)
    return False


def looks_like_caption(sentence: str) -> bool:
    """True when a sentence reads like a picture caption ("X, pictured, ...")."""
    return bool(_CAPTION.search(sentence))


def ends_like_sentence(text: str) -> bool:
    """True when text ends as a sentence does; headings and captions do not."""
    return text.rstrip()[-1:] in _TERMINAL
