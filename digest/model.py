"""The data that flows through the pipeline: articles in, editions out.

Every stage takes and returns these frozen dataclasses, so a stage can be
tested alone and nothing downstream can change what upstream produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True)
class ArticleSection:
    """One headed part of an article; the first section may have no heading."""

    heading: str
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()
    # (text, url) of the section's links: http(s) only, checked when collected.
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Article:
    """A collected article, reduced to plain text in our own model."""

    id: str
    title: str
    url: str
    standfirst: str = ""
    sections: tuple[ArticleSection, ...] = ()
    source: str = ""
    author: str = ""
    published: datetime | None = None
    # The source's `language` option ("de"); empty: the digest's language.
    language: str = ""

    @property
    def text(self) -> str:
        """All paragraphs and bullets, in order, one block per line."""
        blocks: list[str] = []
        for section in self.sections:
            blocks.extend(section.paragraphs)
            blocks.extend(section.bullets)
        return "\n".join(blocks)


@dataclass(frozen=True)
class KeyPoint:
    """The one sentence (or short bullet list) chosen for an article section."""

    heading: str
    text: str = ""
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """What the summariser says about one article."""

    sentences: tuple[str, ...] = ()
    key_points: tuple[KeyPoint, ...] = ()


@dataclass(frozen=True)
class EditionArticle:
    """An article as it appears in an edition: what the editor may change."""

    id: str
    title: str
    url: str
    standfirst: str = ""
    source: str = ""
    published: str = ""
    summary: tuple[str, ...] = ()
    key_points: tuple[KeyPoint, ...] = ()
    rank: float = 0.0


@dataclass(frozen=True)
class EditionSection:
    """A digest section (as configured) holding its chosen articles."""

    key: str
    title: str
    articles: tuple[EditionArticle, ...] = ()


@dataclass(frozen=True)
class Edition:
    """One issue of the digest, as built and as saved to edition.json."""

    id: str
    title: str
    number: int
    created: str
    sections: tuple[EditionSection, ...] = ()
    # The email's subject line; an editor may change it in the edition file.
    subject: str = ""
    # A short editor's note shown above the table of contents; empty for none.
    note: str = ""

    @property
    def article_ids(self) -> tuple[str, ...]:
        return tuple(a.id for s in self.sections for a in s.articles)


class Subscriber(NamedTuple):
    """One row of the subscriber list, validated. (A named tuple, like
    LedgerEntry: a send over a million-row list makes a million.)"""

    email: str
    name: str = ""
    sections: frozenset[str] = frozenset()
    status: str = "active"
    line: int = 0
    # IANA zone from the optional `timezone` column; empty means the digest's own.
    timezone: str = ""
    # Further CSV columns as (name, value) pairs in header order, for templates.
    extra: tuple[tuple[str, str], ...] = ()
    # When they confirmed a web sign-up (double opt-in); the `consented_at` column.
    consented_at: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"


class LedgerEntry(NamedTuple):
    """A recipient of an edition as the fan-out writes them to the ledger:
    everything their copy needs. (A named tuple, not a dataclass: a million
    are made in one fan-out.)"""

    email: str  # the key: the address in lower case
    address: str  # as written in the list
    name: str
    fields: tuple[tuple[str, str], ...]
    variant: str
    message_id: str
    line: int = 0
    due_at: str = ""  # ISO UTC time of the reader's wave; '' is at once


@dataclass(frozen=True)
class Delivery:
    """A ledger row on its way to the server."""

    email: str
    address: str
    name: str
    fields: tuple[tuple[str, str], ...]
    variant: str
    message_id: str
    line: int
    attempts: int
    status: str


def article_to_dict(article: Article) -> dict[str, object]:
    """A JSON-ready form of an article, for the store."""
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "standfirst": article.standfirst,
        "source": article.source,
        "author": article.author,
        "published": article.published.isoformat() if article.published else None,
        "language": article.language,
        "sections": [
            {
                "heading": s.heading,
                "paragraphs": list(s.paragraphs),
                "bullets": list(s.bullets),
                "links": [list(link) for link in s.links],
            }
            for s in article.sections
        ],
    }


def article_from_dict(data: dict[str, object]) -> Article:
    """The inverse of article_to_dict."""
    published = data.get("published")
    sections = data.get("sections") or []
    assert isinstance(sections, list)
    return Article(
        id=str(data["id"]),
        title=str(data["title"]),
        url=str(data["url"]),
        standfirst=str(data.get("standfirst") or ""),
        source=str(data.get("source") or ""),
        author=str(data.get("author") or ""),
        published=datetime.fromisoformat(str(published)) if published else None,
        language=str(data.get("language") or ""),
        sections=tuple(
            ArticleSection(
                str(s.get("heading", "")),
                tuple(str(p) for p in s.get("paragraphs", [])),
                tuple(str(b) for b in s.get("bullets", [])),
                tuple((str(t), str(u)) for t, u in s.get("links", [])),
            )
            for s in sections
        ),
    )
