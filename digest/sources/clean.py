"""Untrusted HTML (feed entries, article pages) reduced to our article model:
plain text in headings, paragraphs and bullets. No tag, attribute or URL of
the source survives; what is not text is dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from digest.model import ArticleSection

# Everything inside these is dropped, text included.
SKIPPED = frozenset(
    {"script", "style", "iframe", "noscript", "object", "embed", "template", "svg", "math"}
    | {"head", "title", "form", "button", "select", "textarea", "canvas", "audio", "video"}
    | {"frame", "frameset", "applet", "noembed", "noframes", "nav", "aside", "footer"}
)
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
BLOCKS = frozenset(
    {"p", "div", "blockquote", "br", "pre", "section", "article", "tr", "dd", "dt", "hr"}
    | {"figcaption", "table", "ul", "ol", "dl", "header", "main", "address", "center"}
)
VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "source", "track", "wbr", "area"})
SPACES = re.compile(r"\s+")
# Control characters other than whitespace have no place in an email.
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
# An enormous entry is cut, not dropped: the digest only needs its beginning.
MAX_BLOCKS = 400
MAX_CHARS = 60_000


class _Flattener(HTMLParser):
    """Collects (kind, text) blocks: 'h' heading, 'p' paragraph, 'li' bullet."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.depth = {"h": 0, "li": 0}
        self.size = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            # Only the same tag nests; anything else inside is dropped anyway.
            if tag == self.skipping[-1] and tag not in VOID:
                self.skipping.append(tag)
        elif tag in SKIPPED and tag not in VOID:
            self.skipping.append(tag)
        elif tag in HEADINGS or tag == "li" or tag in BLOCKS:
            self.flush()
            if tag in HEADINGS or tag == "li":
                self.depth["h" if tag in HEADINGS else "li"] += 1

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
        elif tag in HEADINGS or tag == "li" or tag in BLOCKS:
            self.flush()
            kind = "h" if tag in HEADINGS else "li" if tag == "li" else ""
            if kind:
                self.depth[kind] = max(0, self.depth[kind] - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skipping and tag in BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)

    def flush(self) -> None:
        text = plain("".join(self.parts))
        self.parts = []
        if text and len(self.blocks) < MAX_BLOCKS and self.size < MAX_CHARS:
            kind = "h" if self.depth["h"] else "li" if self.depth["li"] else "p"
            self.blocks.append((kind, text))
            self.size += len(text)


def plain(text: str) -> str:
    """Text with control characters removed and runs of space collapsed."""
    return SPACES.sub(" ", CONTROLS.sub("", text)).strip()


def html_blocks(html: str) -> list[tuple[str, str]]:
    parser = _Flattener()
    parser.feed(html)
    parser.close()
    parser.flush()
    return parser.blocks


def html_to_text(html: str) -> str:
    """All the text of an HTML fragment on one line: for titles and names."""
    return " ".join(text for _kind, text in html_blocks(html))


def html_to_sections(html: str) -> tuple[ArticleSection, ...]:
    """Headed sections of paragraphs and bullets, in document order."""
    sections: list[ArticleSection] = []
    heading, paragraphs, bullets = "", list[str](), list[str]()
    for kind, text in html_blocks(html):
        if kind == "h":
            if heading or paragraphs or bullets:
                sections.append(ArticleSection(heading, tuple(paragraphs), tuple(bullets)))
            heading, paragraphs, bullets = text, [], []
        elif kind == "li":
            bullets.append(text)
        else:
            paragraphs.append(text)
    if heading or paragraphs or bullets:
        sections.append(ArticleSection(heading, tuple(paragraphs), tuple(bullets)))
    return tuple(sections)
