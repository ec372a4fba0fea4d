"""Sentence splitting for the summariser, in the article's language.

Text is cut into blocks (lines: paragraphs, bullets, headings) before it is
cut into sentences, so a list item or a heading never glues onto a sentence.
English goes through nupunkt (its model ships inside the package); other
languages through sentencex (Wikimedia's rule-based splitter, abbreviation
lists for some 300 languages).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

from digest.summarize.language import base_code, words


class _SentenceTokenizer(Protocol):
    def tokenize(self, text: str) -> list[str]: ...


# A bullet marker at the start of a line: "-", "*", "•", "1." or "1)".
_BULLET = re.compile(r"^\s*(?:[-*•▪–]|\d{1,2}[.)])\s+")
_SPACE = re.compile(r"\s+")
_TERMINAL = ".!?…\"'”’)»“"
# nupunkt takes some common words for abbreviations ("lab.", "win."): a
# lowercase word, a full stop and a capitalised word still end a sentence,
# unless the word is one of these real abbreviations.
_MISSED_BREAK = re.compile(r"(?<=\s)([a-z]{2,})\.\s+(?=[A-Z][a-z])")
_LOWERCASE_ABBREVIATIONS = words(
    """approx vs etc incl esp dept govt fig ca cf al ed eds vol pp no op jr sr st mt ft"""
)


@lru_cache(maxsize=1)
def _nupunkt() -> _SentenceTokenizer:
    # Imported and loaded once, on first use: loading the model takes ~0.1 s.
    import nupunkt

    tokenizer: _SentenceTokenizer = nupunkt.load("default")
    return tokenizer


@lru_cache(maxsize=32)
def _splitter(language: str) -> Callable[[str], list[str]]:
    if language == "en":
        return _nupunkt().tokenize
    import sentencex

    def split(text: str) -> list[str]:
        return list(sentencex.segment(language, text))

    return split


def split_blocks(text: str) -> list[str]:
    """Cut text into blocks: one per non-empty line, bullet markers removed."""
    blocks = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if line:
            blocks.append(line)
    return blocks


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Split text into sentences, block by block, whitespace tidied.

    Example:
        >>> split_sentences("Dr. Smith left. He said so.\\n- A bullet")
        ['Dr. Smith left.', 'He said so.', 'A bullet']
        >>> split_sentences("Dr. Müller kam um 9 Uhr. Er blieb.", "de")
        ['Dr. Müller kam um 9 Uhr.', 'Er blieb.']
    """
    code = base_code(language)
    split = _splitter(code)
    sentences = []
    for block in split_blocks(text):
        pieces = [_SPACE.sub(" ", piece).strip() for piece in split(block)]
        if code == "en":
            pieces = [part for piece in pieces for part in _split_missed(piece)]
        sentences.extend(_rejoin([p for p in pieces if p], strict=code == "en"))
    return sentences


def _split_missed(piece: str) -> list[str]:
    """Split where nupunkt took a common word for an abbreviation."""
    if ". " not in piece:
        return [piece]
    parts, start = [], 0
    for match in _MISSED_BREAK.finditer(piece):
        if match.group(1) not in _LOWERCASE_ABBREVIATIONS:
            parts.append(piece[start : match.end(1) + 1])
            start = match.end()
    parts.append(piece[start:])
    return parts


def _rejoin(pieces: list[str], strict: bool) -> list[str]:
    # A piece that starts in lowercase continues the one before: the break
    # came after an abbreviation the splitter did not know ("pro-U.S. tilt",
    # "5 млн. человек"). English needs the abbreviation to be sure, since
    # "iPhones sold well." may open a sentence.
    joined: list[str] = []
    for piece in pieces:
        if not joined:
            joined.append(piece)
            continue
        continues = piece[0].islower() and (not strict or _ends_in_abbreviation(joined[-1]))
        if continues or (not strict and _is_title(joined[-1])):
            joined[-1] = f"{joined[-1]} {piece}"
        else:
            joined.append(piece)
    return joined


def _is_title(piece: str) -> bool:
    """True for a piece that is only a capitalised abbreviation of up to three
    letters, maybe after one word: "M.", "Le Pr.", "Sr."."""
    tokens = piece.split()
    last = tokens[-1]
    return len(tokens) <= 2 and last[0].isupper() and last.endswith(".") and len(last) <= 4


def _ends_in_abbreviation(text: str) -> bool:
    """True after "U.S.", "p.m.", "Corp." and the like, not after "well."."""
    last = text.rsplit(" ", 1)[-1].rstrip(".")
    if "." in last:
        return True
    return last[:1].isupper() and len(last) <= 5 and text.endswith(".")


def ends_like_sentence(text: str) -> bool:
    """True when text ends as a sentence does; headings and captions do not."""
    return text.rstrip()[-1:] in _TERMINAL
