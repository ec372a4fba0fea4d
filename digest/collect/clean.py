"""Untrusted HTML (feed entries, article pages) reduced to our article model:
plain text in headings, paragraphs and bullets, and each section's links as
(text, url) pairs. No tag or attribute survives, and of URLs only absolute
http(s) link targets; what is not text is dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

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
MAX_LINKS = 200


class _Flattener(HTMLParser):
    """Collects (kind, text) blocks: 'h' heading, 'p' paragraph, 'li' bullet."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.depth = {"h": 0, "li": 0}
        self.size = 0
        # (index of the block it sits in, text, url) for each kept link.
        self.links: list[tuple[int, str, str]] = []
        self.link: tuple[str, int] | None = None  # open <a>: its url, where its text starts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            # Only the same tag nests; anything else inside is dropped anyway.
            if tag == self.skipping[-1] and tag not in VOID:
                self.skipping.append(tag)
        elif tag in SKIPPED and tag not in VOID:
            self.skipping.append(tag)
        elif tag == "a":
            url = link_target(dict(attrs).get("href"))
            self.link = (url, len(self.parts)) if url else None
        elif tag in HEADINGS or tag == "li" or tag in BLOCKS:
            self.flush()
            if tag in HEADINGS or tag == "li":
                self.depth["h" if tag in HEADINGS else "li"] += 1

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
        elif tag == "a" and self.link:
            url, start = self.link
            text = plain("".join(self.parts[start:]))
            if text and len(self.links) < MAX_LINKS:
                self.links.append((len(self.blocks), text, url))
            self.link = None
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
        self.link = None  # a link never spans blocks
        text = plain("".join(self.parts))
        self.parts = []
        if text and len(self.blocks) < MAX_BLOCKS and self.size < MAX_CHARS:
            kind = "h" if self.depth["h"] else "li" if self.depth["li"] else "p"
            self.blocks.append((kind, text))
            self.size += len(text)


def plain(text: str) -> str:
    """Text with control characters removed and runs of space collapsed."""
    return SPACES.sub(" ", CONTROLS.sub("", text)).strip()


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


def _parse(html: str) -> _Flattener:
    parser = _Flattener()
    parser.feed(html)
    parser.close()
    parser.flush()
    return parser


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
