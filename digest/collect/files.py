"""Local article files: plain text (title, standfirst, headings, paragraphs,
`- ` bullets) and Markdown with optional YAML front matter.

A file that cannot be read or decoded is reported and skipped; the rest go on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from digest.collect.clean import html_to_text
from digest.errors import SourceError
from digest.model import Article, ArticleSection

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
ARTICLE_SUFFIXES = TEXT_SUFFIXES + MARKDOWN_SUFFIXES
# A heading is a short line that does not end like a sentence.
HEADING_MAX_WORDS = 14
HEADING_MAX_CHARS = 100
SENTENCE_END = tuple(".!?:;,\"'”’)…")


def article_paths(source: Path) -> list[Path]:
    """The article files a source path names: itself, or a folder's, sorted."""
    if source.is_file():
        return [source]
    if source.is_dir():
        # Not only is_file(): a broken link is reported as unreadable, not ignored.
        found = (p for p in source.rglob("*") if not p.is_dir())
        return sorted(p for p in found if p.suffix.lower() in ARTICLE_SUFFIXES)
    raise SourceError(
        f"{source}: no such file or folder; check the path in digest.toml or --source"
    )


def read_article(path: Path) -> Article:
    """Parse one article file, choosing the format by its suffix."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(
            f"{path}: not valid UTF-8 at byte {e.start}; save the file as UTF-8"
        ) from e
    except OSError as e:
        raise SourceError(f"{path}: cannot be read ({e.strerror})") from e
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return parse_markdown(text, path)
    return parse_text(text, path)


def file_url(path: Path) -> str:
    return path.resolve().as_uri()


def article_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def is_heading(line: str) -> bool:
    """Short, no sentence-final punctuation, not a bullet."""
    stripped = line.strip()
    if not stripped or stripped.startswith("- ") or stripped.endswith(SENTENCE_END):
        return False
    return len(stripped) <= HEADING_MAX_CHARS and len(stripped.split()) <= HEADING_MAX_WORDS


def parse_text(text: str, path: Path) -> Article:
    """The plain-text format: title line, standfirst line, then the body."""
    lines = [line.rstrip() for line in text.splitlines()]
    content = [line for line in lines if line.strip()]
    if not content:
        raise SourceError(f"{path}: the file is empty; an article needs at least a title line")
    title = content[0].strip()
    standfirst = content[1].strip() if len(content) > 1 else ""
    sections = list(_text_sections(content[2:]))
    url = file_url(path)
    return Article(
        id=article_id(url),
        title=title,
        url=url,
        standfirst=standfirst,
        sections=tuple(sections),
        source=str(path),
        published=_mtime(path),
    )


def _text_sections(lines: list[str]) -> Iterator[ArticleSection]:
    heading = ""
    paragraphs: list[str] = []
    bullets: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("- "):
            bullets.append(stripped[2:].strip())
        elif is_heading(stripped):
            if paragraphs or bullets or heading:
                yield ArticleSection(heading, tuple(paragraphs), tuple(bullets))
            heading, paragraphs, bullets = stripped, [], []
        else:
            paragraphs.append(stripped)
    if paragraphs or bullets or heading:
        yield ArticleSection(heading, tuple(paragraphs), tuple(bullets))


FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
# A link target may hold one level of parentheses, as Wikipedia's often do.
INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\((?:[^()]|\([^()]*\))*\)")
EMPHASIS = re.compile(r"(\*\*|\*|`)(?=\S)(.+?)(?<=\S)\1")
# Underscores inside a word (snake_case) are not emphasis.
UNDERSCORES = re.compile(r"(?<!\w)(__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)")
# Markdown may hold inline HTML; only its words are kept, as for a feed.
HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")


def parse_markdown(text: str, path: Path) -> Article:
    """Markdown: `#` title, `##`+ headings, `-`/`*` bullets, blank-line paragraphs."""
    meta, body = _front_matter(text, path)
    blocks = _markdown_blocks(body)
    title = str(meta.get("title") or "").strip()
    if not title and blocks and blocks[0][0] == "h1":
        title = blocks.pop(0)[1]
    if not title:
        raise SourceError(f"{path}: no title; add 'title:' to the front matter or a '# ' line")
    standfirst = str(meta.get("standfirst") or meta.get("description") or "").strip()
    if not standfirst and blocks and blocks[0][0] == "p":
        standfirst = blocks.pop(0)[1]
    url = str(meta.get("url") or "").strip() or file_url(path)
    return Article(
        id=article_id(url),
        title=title,
        url=url,
        standfirst=standfirst,
        sections=tuple(_markdown_sections(blocks)),
        source=str(path),
        author=str(meta.get("author") or "").strip(),
        published=_date(meta.get("date"), path) or _mtime(path),
    )


def _front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as e:
        raise SourceError(f"{path}: the front matter is not valid YAML: {e}") from e
    if not isinstance(meta, dict):
        raise SourceError(f"{path}: the front matter must be 'key: value' lines")
    return meta, text[match.end() :]


def _plain(markdown: str) -> str:
    text = INLINE_LINK.sub(r"\1", markdown)
    text = UNDERSCORES.sub(r"\2", EMPHASIS.sub(r"\2", text))
    return (html_to_text(text) if HTML_TAG.search(text) else text).strip()


def _markdown_blocks(body: str) -> list[tuple[str, str]]:
    """Flatten the body into (kind, text) blocks: h1, h2, p, li."""
    blocks: list[tuple[str, str]] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(("p", _plain(" ".join(paragraph))))
            paragraph.clear()

    for raw in body.splitlines():
        line = raw.strip()
        heading = re.match(r"(#{1,6})\s+(.*?)\s*#*$", line)
        bullet = re.match(r"[-*+]\s+(.*)", line)
        if not line:
            flush()
        elif heading:
            flush()
            blocks.append(("h1" if len(heading.group(1)) == 1 else "h2", _plain(heading.group(2))))
        elif bullet:
            flush()
            blocks.append(("li", _plain(bullet.group(1))))
        else:
            paragraph.append(line)
    flush()
    return blocks


def _markdown_sections(blocks: list[tuple[str, str]]) -> Iterator[ArticleSection]:
    heading = ""
    paragraphs: list[str] = []
    bullets: list[str] = []
    for kind, text in blocks:
        if kind in ("h1", "h2"):
            if paragraphs or bullets or heading:
                yield ArticleSection(heading, tuple(paragraphs), tuple(bullets))
            heading, paragraphs, bullets = text, [], []
        elif kind == "li":
            bullets.append(text)
        else:
            paragraphs.append(text)
    if paragraphs or bullets or heading:
        yield ArticleSection(heading, tuple(paragraphs), tuple(bullets))


def _date(value: Any, path: Path) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as e:
        raise SourceError(f"{path}: date {value!r} is not an ISO date like 2026-11-29") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
