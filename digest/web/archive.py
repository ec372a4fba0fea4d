"""The archive of `digest serve`: the list of past editions with their date,
subject and headlines (`/archive`), their Atom feed (`/archive/feed.xml`),
and each edition's web version (`/archive/ID`). Only editions that went out
are shown; a sent edition never changes, so what is built is kept.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote
from xml.etree import ElementTree

from digest.config import Settings
from digest.edition import lifecycle
from digest.render import subject_line, view_url, web_version
from digest.store import Database, editions
from digest.web.http import ARCHIVE_CSP, Request, Response

PAGE_SIZE = 50
# Any page past this is empty anyway, and its OFFSET still fits in SQLite.
MAX_PAGE = 10**9
FEED_SIZE = 20
HEADLINES = 5
CACHE = 256
ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry at all: a title holding one must not break the feed.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Site(Protocol):
    """What the archive needs of the application (digest/web/app.py)."""

    settings: Settings

    def db(self) -> Database: ...
    def url(self, path: str, token: str = "") -> str: ...
    def page(self, template: str, status: int = 200, **values: Any) -> Response: ...
    def message(
        self, status: int, heading: str, paragraphs: list[str], action: Any = None
    ) -> Response: ...


@dataclass(frozen=True)
class Entry:
    """An edition as the archive lists it."""

    id: str
    number: int
    subject: str
    date: str  # the day it was made for, YYYY-MM-DD
    created_at: str  # when it was recorded (ISO UTC), for the feed
    headlines: tuple[str, ...]  # titles of its first articles
    more: int  # articles beyond those


class ArchivePages:
    """The handlers, and what they keep of editions already built."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = site.settings
        self.lock = threading.Lock()
        self.pages: OrderedDict[str, bytes] = OrderedDict()
        self.entries: OrderedDict[str, Entry] = OrderedDict()

    def routes(self) -> dict[str, dict[str, Any]]:
        return {"/archive": {"GET": self.index}, "/archive/feed.xml": {"GET": self.feed}}

    def index(self, request: Request) -> Response:
        try:
            number = max(1, int(request.arg("page") or 1))
        except ValueError:
            number = 1
        # Past the last page is an empty page; past SQLite's integers, too.
        number = min(number, MAX_PAGE)
        db = self.site.db()
        rows = editions.published(db, PAGE_SIZE, (number - 1) * PAGE_SIZE)
        more = editions.published_count(db) > number * PAGE_SIZE
        found = [
            {"url": self.site.url(f"/archive/{quote(e.id, safe='')}"), **e.__dict__}
            for e in self.listed(db, rows)
        ]
        archive = self.site.url("/archive")
        response = self.site.page(
            "web/archive.html.j2",
            heading="Archive",
            editions=found,
            robots="index",
            feed_url=self.site.url("/archive/feed.xml"),
            newer_url=f"{archive}?page={number - 1}" if number > 1 else "",
            older_url=f"{archive}?page={number + 1}" if more else "",
        )
        return Response(200, response.body, cache="public, max-age=300")

    def feed(self, request: Request) -> Response:
        db = self.site.db()
        entries = self.listed(db, editions.published(db, FEED_SIZE, 0))
        return Response(
            200,
            atom(self.settings, entries),
            "application/atom+xml; charset=utf-8",
            cache="public, max-age=300",
        )

    def edition(self, edition_id: str) -> Response:
        body = self.web_page(edition_id)
        if body is None:
            return self.site.message(
                404, "No such edition", ["It may have moved; see the archive."]
            )
        return Response(200, body, csp=ARCHIVE_CSP, cache="public, max-age=3600")

    def web_page(self, edition_id: str) -> bytes | None:
        """The edition's web version, compiled once and kept."""
        with self.lock:
            if edition_id in self.pages:
                self.pages.move_to_end(edition_id)
                return self.pages[edition_id]
        db = self.site.db()
        row = editions.get(db, edition_id)
        if row is None or row.state not in (editions.SENDING, editions.SENT):
            return None
        edition = lifecycle.load(db, edition_id)
        if edition is None:
            return None
        body = web_version(edition, self.settings.look).encode("utf-8")
        self._keep(self.pages, edition_id, body)
        return body

    def listed(self, db: Database, rows: list[editions.EditionRow]) -> list[Entry]:
        """Each row as an entry: subject and headlines from its edition, kept."""
        found = []
        for row in rows:
            with self.lock:
                entry = self.entries.get(row.id)
            if entry is None:
                entry = _entry(db, row)
                self._keep(self.entries, row.id, entry)
            found.append(entry)
        return found

    def _keep(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        with self.lock:
            cache[key] = value
            while len(cache) > CACHE:
                cache.popitem(last=False)


def _entry(db: Database, row: editions.EditionRow) -> Entry:
    edition = lifecycle.load(db, row.id)
    if edition is None:
        return Entry(row.id, row.number, row.title, row.created_at[:10], row.created_at, (), 0)
    articles = [a for s in edition.sections for a in s.articles]
    headlines = tuple(a.title for a in articles[:HEADLINES])
    return Entry(
        row.id,
        row.number,
        edition.subject or subject_line(edition),
        edition.created[:10],
        row.created_at,
        headlines,
        max(0, len(articles) - HEADLINES),
    )


def atom(settings: Settings, entries: list[Entry]) -> bytes:
    """An Atom 1.0 feed (RFC 4287) of the editions, newest first."""
    base = settings.base_url.rstrip("/")
    feed = ElementTree.Element("feed", xmlns=ATOM)
    _text(feed, "title", settings.title)
    _text(feed, "id", f"{base}/archive")
    _text(feed, "updated", entries[0].created_at if entries else "1970-01-01T00:00:00+00:00")
    ElementTree.SubElement(feed, "link", rel="self", href=f"{base}/archive/feed.xml")
    ElementTree.SubElement(feed, "link", rel="alternate", type="text/html", href=f"{base}/archive")
    _text(ElementTree.SubElement(feed, "author"), "name", settings.title)
    for entry in entries:
        url = view_url(settings.look, entry.id)
        item = ElementTree.SubElement(feed, "entry")
        _text(item, "id", url)
        _text(item, "title", entry.subject)
        _text(item, "published", entry.created_at)
        _text(item, "updated", entry.created_at)
        ElementTree.SubElement(item, "link", rel="alternate", type="text/html", href=url)
        more = f" and {entry.more} more" if entry.more else ""
        _text(item, "summary", " · ".join(entry.headlines) + more, "text")
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def _text(parent: ElementTree.Element, tag: str, value: str, kind: str = "") -> None:
    element = ElementTree.SubElement(parent, tag, {"type": kind} if kind else {})
    element.text = NOT_XML.sub("", value)
