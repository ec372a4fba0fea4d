"""Feeds: RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser, JSON Feed
parsed here. Entries become articles in our own model; all their HTML goes
through `clean`, and titles are plain text.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from digest.collect.clean import block_text, clip, html_to_sections, html_to_text, plain
from digest.collect.identity import article_id, canonical_url, content_hash
from digest.collect.outcome import Entry
from digest.errors import SourceError
from digest.model import Article, ArticleSection

FEED_SUFFIXES = (".xml", ".rss", ".atom", ".json")
COMMENT = re.compile(rb"<!--.*?-->", re.S)
ROOT = re.compile(rb"<([a-z][\w:.-]*)")
TAG_LIKE = re.compile(r"<[a-zA-Z/!]|&[#a-zA-Z0-9]+;")
STANDFIRST_CHARS = 400
TITLE_CHARS = 300


def is_json(body: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def is_html_page(body: bytes, content_type: str) -> bool:
    """An HTML document by its root element (an entry's CDATA may hold '<html'),
    or by its declared type when no element is seen early on."""
    head = COMMENT.sub(b"", body[:8192].lower())
    if b"<!doctype html" in head:
        return True
    root = ROOT.search(head)
    return root.group(1) == b"html" if root else "html" in content_type.lower()


def parse_feed(body: bytes, url: str, content_type: str = "", name: str = "") -> list[Entry]:
    """Every entry of a feed document; a SourceError when it is not a feed."""
    return read_feed(body, url, content_type, name)[0]


def read_feed(
    body: bytes, url: str, content_type: str = "", name: str = ""
) -> tuple[list[Entry], str]:
    """The entries, and a warning ('' if none) when broken XML was read anyway."""
    if is_json(body, content_type):
        return parse_json_feed(body, url, name), ""
    # Sanitizing and URL resolving inside content would be wasted: clean drops all markup.
    parsed = feedparser.parse(
        body,
        response_headers={"content-type": content_type or "application/xml"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    # The lenient parser may "recover" empty entries from broken XML: drop them.
    found = [e for e in parsed.entries if e.get("title") or e.get("link") or e.get("summary")]
    if not found:
        if _broken(parsed):
            raise SourceError(f"{url}: {_not_a_feed(body, parsed)}")
        return [], ""
    label = name or _title(parsed.feed.get("title_detail"), parsed.feed.get("title", ""))
    base = parsed.feed.get("link") or url
    warning = ""
    if _broken(parsed):
        warning = f"{_xml_error(parsed)}; read {len(found)} entries anyway, some may be lost"
    return [_entry(e, url, base, label or url) for e in found], warning


def _broken(parsed: Any) -> bool:
    """Bozo for a real reason; a charset mismatch the parser got past is not one."""
    soft = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    return bool(parsed.get("bozo")) and not isinstance(parsed.get("bozo_exception"), soft)


def _not_a_feed(body: bytes, parsed: Any) -> str:
    if is_html_page(body, ""):
        return "this is a web page, not a feed (RSS, Atom or JSON Feed)"
    return f"not a readable feed: {_xml_error(parsed)}"


def _xml_error(parsed: Any) -> str:
    error = parsed.get("bozo_exception")
    line = getattr(error, "getLineNumber", lambda: None)()
    where = f" at line {line}" if line else ""
    return f"malformed XML{where} ({error})"


def _entry(entry: Any, url: str, base: str, label: str) -> Entry:
    guid = str(entry.get("id") or "")
    link = _http(urljoin(base, str(entry.get("link") or "")))
    content = entry.get("content") or []
    body_html = max((str(c.get("value", "")) for c in content), key=len, default="")
    summary = str(entry.get("summary") or "")
    sections = html_to_sections(body_html or summary)
    standfirst = _standfirst(summary, body_html, sections) if body_html else ""
    title = _title(entry.get("title_detail"), entry.get("title", ""))
    published = _time(entry.get("published_parsed") or entry.get("updated_parsed"))
    author = _title(None, entry.get("author", ""))
    return _article(url, link, guid, title, standfirst, sections, label, published, author)


def _standfirst(summary: str, body_html: str, sections: tuple[ArticleSection, ...]) -> str:
    """The entry's summary, unless it only repeats (the start of) its content."""
    if not summary.strip() or summary.strip() == body_html.strip():
        return ""
    text = html_to_text(summary)
    flat = " ".join(t for s in sections for t in (s.heading, *s.paragraphs, *s.bullets) if t)
    return "" if text[:200] in flat[:2000] else clip(text, STANDFIRST_CHARS)


def _article(
    url: str,
    link: str,
    guid: str,
    title: str,
    standfirst: str,
    sections: tuple[ArticleSection, ...],
    label: str,
    published: datetime | None,
    author: str,
) -> Entry:
    text = " ".join(p for s in sections for p in (*s.paragraphs, *s.bullets))
    title = title or clip(text, 80) or "Untitled"
    key = guid or ("" if link else content_hash(title, text))
    article = Article(
        id=article_id(url, link, key),
        title=title,
        url=link,
        standfirst=standfirst,
        sections=tuple(sections),
        source=label,
        author=author,
        published=published,
    )
    return Entry(article, guid)


def _title(detail: Any, raw: Any) -> str:
    """Plain text; markup (declared, or escaped into a 'plain' title) is dropped."""
    text = str((detail or {}).get("value", raw) if detail else raw or "")
    is_html = bool(detail) and "html" in str(detail.get("type", ""))
    if is_html or TAG_LIKE.search(text):
        text = html_to_text(text)
    return clip(plain(text), TITLE_CHARS)


def _http(url: str) -> str:
    """Only http(s) links are kept as an article's address."""
    parts = urlsplit(url.strip())
    return canonical_url(url) if parts.scheme in ("http", "https") and parts.netloc else ""


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = value[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_json_feed(body: bytes, url: str, name: str = "") -> list[Entry]:
    """JSON Feed 1.0/1.1: https://jsonfeed.org/version/1.1."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise SourceError(f"{url}: a JSON feed must be UTF-8 (bad byte at {e.start})") from e
    except json.JSONDecodeError as e:
        raise SourceError(f"{url}: not valid JSON at line {e.lineno}, column {e.colno}") from e
    except (RecursionError, ValueError) as e:
        # Nesting deeper than the parser's stack, or an integer of thousands of digits.
        raise SourceError(
            f"{url}: JSON too deeply nested or with an absurdly long number; not a feed"
        ) from e
    version = str(data.get("version", "")) if isinstance(data, dict) else ""
    if not version.startswith("https://jsonfeed.org/version/"):
        raise SourceError(f"{url}: JSON, but not a JSON Feed (no jsonfeed.org 'version')")
    items = data.get("items")
    if not isinstance(items, list):
        raise SourceError(f"{url}: the JSON Feed has no 'items' list")
    label = name or plain(str(data.get("title") or "")) or url
    base = str(data.get("home_page_url") or url)
    return [_json_item(i, url, base, label) for i in items if isinstance(i, dict)]


def _json_item(item: dict[str, Any], url: str, base: str, label: str) -> Entry:
    link = _http(urljoin(base, str(item.get("url") or item.get("external_url") or "")))
    html = item.get("content_html") or ""
    text = item.get("content_text") or ""
    sections = html_to_sections(str(html)) if html else _text_sections(str(text))
    summary = clip(plain(str(item.get("summary") or "")), STANDFIRST_CHARS)
    title = _title(None, item.get("title") or "")
    published = _iso(item.get("date_published") or item.get("date_modified"))
    authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
    names = [str(a.get("name", "")) for a in authors if isinstance(a, dict)]
    author = plain(", ".join(n for n in names if n))
    guid = str(item.get("id") or "")
    return _article(url, link, guid, title, summary, sections, label, published, author)


def _text_sections(text: str) -> tuple[ArticleSection, ...]:
    paragraphs = tuple(b for b in map(block_text, re.split(r"\n\s*\n", text)) if b)
    return (ArticleSection("", paragraphs),) if paragraphs else ()


def _iso(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
