"""Web pages: the main text of an article page, extracted with trafilatura
(headings kept as sections) and then cleaned like any other untrusted HTML.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import trafilatura

from digest.collect.clean import clip, html_to_sections, plain
from digest.collect.identity import article_id, canonical_url
from digest.errors import SourceError
from digest.model import Article, ArticleSection

FEED_LINK = re.compile(
    rb"<link[^>]+type=[\"']application/(?:rss|atom)\+xml[\"'][^>]*>", re.IGNORECASE
)
# A page's description is its standfirst, cut at a word past this length.
STANDFIRST_CHARS = 400
HREF = re.compile(rb"href=[\"']([^\"']+)[\"']", re.IGNORECASE)


def advertised_feed(body: bytes) -> str:
    """The feed a page links to in its head, if any (to suggest it to the user)."""
    match = FEED_LINK.search(body[:200_000])
    href = HREF.search(match.group(0)) if match else None
    return href.group(1).decode("utf-8", "replace") if href else ""


def main_sections(body: bytes | str) -> tuple[ArticleSection, ...]:
    """The article's own text, without navigation, comments or boilerplate."""
    extracted = trafilatura.extract(
        body,
        output_format="html",
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_tables=False,
        include_comments=False,
        favor_recall=True,
    )
    return html_to_sections(extracted) if extracted else ()


def read_page(body: bytes, url: str, name: str = "") -> Article:
    """An article from a whole page; SourceError when no article text is found."""
    meta = trafilatura.extract_metadata(body)
    sections = main_sections(body)
    title = plain(str(meta.title or "")) if meta else ""
    # The page's own h1 repeats the title; keep the article body only.
    if sections and title and sections[0].heading == title:
        first = sections[0]
        sections = (ArticleSection("", first.paragraphs, first.bullets), *sections[1:])
    if not any(s.paragraphs or s.bullets for s in sections):
        raise SourceError(f"{url}: no article text found on the page; is it an article?")
    link = canonical_url(url)
    return Article(
        id=article_id(url, link),
        title=title or link,
        url=link,
        standfirst=clip(plain(str(meta.description or "")), STANDFIRST_CHARS) if meta else "",
        sections=sections,
        source=name or (plain(str(meta.sitename or "")) if meta else "") or link,
        author=plain(str(meta.author or "")) if meta else "",
        published=_date(str(meta.date or "")) if meta else None,
    )


def _date(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed
