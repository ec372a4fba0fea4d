"""Untrusted HTML (feed entries, article pages) reduced to our article model:
plain text in headings, paragraphs and bullets, and each section's links as
(text, url) pairs. No tag or attribute survives, and of URLs only absolute
http(s) link targets; what is not text is dropped.

Parsing is libxml2's HTML parser (through lxml), which is linear in its
input whatever the markup; every block and every word has a length cap, so
one hostile entry costs bounded time and cannot crowd the others out.
"""

from __future__ import annotations

import re
import threading
from typing import NamedTuple
from urllib.parse import urlsplit

from lxml import etree

from digest.model import ArticleSection

# Everything inside these is dropped, text included.
SKIPPED = frozenset(
    {"script", "style", "iframe", "noscript", "object", "embed", "template", "svg", "math"}
    | {"head", "title", "form", "button", "select", "textarea", "canvas", "audio", "video"}
    | {"frame", "frameset", "applet", "noembed", "noframes", "nav", "aside", "footer"}
    # A picture's caption and credit describe the picture, not the story.
    | {"figure", "figcaption"}
)
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
BLOCKS = frozenset(
    {"p", "div", "blockquote", "br", "pre", "section", "article", "tr", "dd", "dt", "hr"}
    | {"table", "ul", "ol", "dl", "header", "main", "address", "center"}
)
SPACES = re.compile(r"\s+")
# Control characters other than whitespace have no place in an email.
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
# An enormous entry is cut, not dropped: the digest only needs its beginning.
MAX_BLOCKS = 400
MAX_CHARS = 60_000
MAX_LINKS = 200
# One paragraph, and one word, can only be so long; a 2 MB "word" is an attack
# on the email's size budget, not prose.
MAX_BLOCK_CHARS = 5_000
MAX_WORD_CHARS = 100
LONG_WORD = re.compile(rf"\S{{{MAX_WORD_CHARS + 1},}}")
ELLIPSIS = "…"


class _Flattener:
    """An lxml parser target collecting (kind, text) blocks: 'h' heading,
    'p' paragraph, 'li' bullet. The parser balances every start with an end."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.blocks: list[tuple[str, str]] = []
        self.parts: list[str] = []
        self.pending = 0  # characters in `parts`
        self.skipping = 0  # depth inside a skipped element
        self.depth = {"h": 0, "li": 0}
        self.size = 0
        # (index of the block it sits in, text, url) for each kept link.
        self.links: list[tuple[int, str, str]] = []
        self.link: tuple[str, int] | None = None  # open <a>: its url, where its text starts

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.skipping or tag in SKIPPED:
            self.skipping += 1
        elif tag == "a":
            url = link_target(attrib.get("href"))
            self.link = (url, len(self.parts)) if url else None
        elif tag in HEADINGS or tag == "li" or tag in BLOCKS:
            self.flush()
            if tag in HEADINGS or tag == "li":
                self.depth["h" if tag in HEADINGS else "li"] += 1

    def end(self, tag: str) -> None:
        if self.skipping:
            self.skipping -= 1
        elif tag == "a" and self.link:
            url, start = self.link
            text = block_text("".join(self.parts[start:]))
            if text and len(self.links) < MAX_LINKS:
                self.links.append((len(self.blocks), text, url))
            self.link = None
        elif tag in HEADINGS or tag == "li" or tag in BLOCKS:
            self.flush()
            kind = "h" if tag in HEADINGS else "li" if tag == "li" else ""
            if kind:
                self.depth[kind] = max(0, self.depth[kind] - 1)

    def data(self, data: str) -> None:
        # Past twice the cap nothing more of this block can be kept.
        if not self.skipping and self.pending <= 2 * MAX_BLOCK_CHARS:
            self.parts.append(data)
            self.pending += len(data)

    def comment(self, text: str) -> None:
        pass

    def close(self) -> None:
        self.flush()

    def flush(self) -> None:
        self.link = None  # a link never spans blocks
        text = block_text("".join(self.parts))
        self.parts, self.pending = [], 0
        if text and len(self.blocks) < MAX_BLOCKS and self.size < MAX_CHARS:
            kind = "h" if self.depth["h"] else "li" if self.depth["li"] else "p"
            self.blocks.append((kind, text))
            self.size += len(text)


def plain(text: str) -> str:
    """Text with control characters removed and runs of space collapsed."""
    return SPACES.sub(" ", CONTROLS.sub("", text)).strip()


def block_text(text: str) -> str:
    """`plain` text within the caps: over-long words cut, the block cut at
    MAX_BLOCK_CHARS on a word boundary; a cut is marked with an ellipsis."""
    text = plain(text[: 2 * MAX_BLOCK_CHARS + 1])
    text = LONG_WORD.sub(lambda m: m.group(0)[:MAX_WORD_CHARS] + ELLIPSIS, text)
    if len(text) <= MAX_BLOCK_CHARS:
        return text
    cut = text[:MAX_BLOCK_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip() + ELLIPSIS


def link_target(href: str | None) -> str:
    """An absolute http(s) URL without spaces or quotes, or "" (dropped)."""
    url = plain(href or "")
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    return "" if re.search(r"[\s\"'<>`]", url) else url


# One parser and target per thread, reused: making a parser with a Python
# target costs lxml a signature inspection, which was a quarter of the time
# spent cleaning a typical feed entry. (A parser is not thread-safe.)
_reused = threading.local()


def _parser() -> tuple[etree.HTMLParser, _Flattener]:
    made: tuple[etree.HTMLParser, _Flattener] | None = getattr(_reused, "made", None)
    if made is None:
        target = _Flattener()
        parser = etree.HTMLParser(
            target=target, recover=True, no_network=True, remove_comments=True, remove_pis=True
        )
        made = _reused.made = (parser, target)
    return made


class Parsed(NamedTuple):
    blocks: list[tuple[str, str]]
    links: list[tuple[int, str, str]]  # (index of the block it sits in, text, url)


def _parse(html: str) -> Parsed:
    parser, target = _parser()
    target.reset()
    try:
        parser.feed(html)
        parser.close()
    except (etree.LxmlError, ValueError):
        # Whatever was read before the parser gave up is kept; the parser
        # may be left mid-document, so the next call makes a new one.
        target.flush()
        _reused.made = None
    return Parsed(target.blocks, target.links)


def html_blocks(html: str) -> list[tuple[str, str]]:
    return _parse(html).blocks


def html_to_text(html: str) -> str:
    """All the text of an HTML fragment on one line: for titles and names."""
    return " ".join(text for _kind, text in html_blocks(html))


def html_to_sections(html: str) -> tuple[ArticleSection, ...]:
    """Headed sections of paragraphs, bullets and links, in document order."""
    parsed = _parse(html)
    sections: list[ArticleSection] = []
    heading, paragraphs, bullets, links = "", list[str](), list[str](), list[tuple[str, str]]()
    for index, (kind, text) in enumerate(parsed.blocks):
        if kind == "h":
            if heading or paragraphs or bullets:
                sections.append(ArticleSection(heading, (*paragraphs,), (*bullets,), (*links,)))
            heading, paragraphs, bullets, links = text, [], [], []
        elif kind == "li":
            bullets.append(text)
        else:
            paragraphs.append(text)
        links += [(t, u) for at, t, u in parsed.links if at == index]
    if heading or paragraphs or bullets:
        sections.append(ArticleSection(heading, (*paragraphs,), (*bullets,), (*links,)))
    return tuple(sections)


def clip(text: str, limit: int) -> str:
    """Text of at most ``limit`` characters, cut at a word boundary with an ellipsis.

    Example:
        >>> clip("A standfirst that runs on and on", 20)
        'A standfirst that…'
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[: max(limit - 1, 1)]
    if not text[len(head)].isspace() and " " in head.strip():
        head = head.rsplit(" ", 1)[0]  # back to the last whole word
    # A comma or an opening bracket before the ellipsis reads as a typo.
    return head.rstrip(" ,;:([{–—-") + "…"
