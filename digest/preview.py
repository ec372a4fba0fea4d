"""The editor's preview: the edition built from the current sources (or an
edition file), rendered for a chosen subscriber, touching no store. The
server around it lives in `digest/preview_server.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

from digest import edition as editions
from digest import store
from digest.config import Settings, SourceConfig
from digest.errors import DigestError
from digest.model import Article, Edition, Subscriber
from digest.notes import compile_note
from digest.render import CompiledEmail, compile_edition, field_values, personalize
from digest.sources import read_sources
from digest.subscribers import RowError, current, unique_subscribers
from digest.summarize import make_summarizer, summary_options

PICKER_LIMIT = 200  # rows of the subscriber list offered in the picker
SAMPLE = "sample"
Fetched = dict[SourceConfig, tuple[list[Article], list[str]]]


@dataclass(frozen=True)
class Reader:
    """Someone the editor can preview the email as."""

    key: str
    label: str
    email: str
    name: str
    sections: frozenset[str]
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Built:
    """One build of the preview: the edition, who can read it, what went wrong."""

    settings: Settings
    edition: Edition | None
    readers: tuple[Reader, ...]
    problems: tuple[str, ...]
    error: str = ""


@dataclass(frozen=True)
class View:
    """The email as one reader gets it, or why they get nothing."""

    reader: Reader
    compiled: CompiledEmail | None
    html: str
    text: str
    note: bool = False  # the short note sent when their sections have nothing


def sample_reader() -> Reader:
    return Reader(SAMPLE, "Sample reader (every section)", "reader@example.org", "", frozenset())


def build_edition(
    settings: Settings, edition_file: Path | None, fetched: Fetched | None = None
) -> tuple[Edition, list[str]]:
    """The edition file as it is now, or every article the sources hold now.

    Web sources are read once per `fetched` mapping (a preview session), so
    a template edit does not fetch every feed again; local files always are.
    """
    if edition_file is not None:
        return editions.load_edition(edition_file), []
    problems: list[str] = []
    articles = {}
    for section in settings.sections:
        found: list[Article] = []
        for source in section.options or tuple(SourceConfig(s) for s in section.sources):
            read, trouble = _read(settings, source, fetched)
            found += read
            problems += trouble
        articles[section.key] = found
    when = datetime.now(ZoneInfo(settings.timezone))
    edition = editions.build_edition(
        edition_id=editions.edition_id_for(when),
        title=settings.title,
        number=next_number(settings.database),
        created=when,
        sections=settings.sections,
        articles=articles,
        summarizer=make_summarizer(summary_options(settings)),
        edition_words=settings.edition_words,
    )
    return edition, problems


def _read(
    settings: Settings, source: SourceConfig, fetched: Fetched | None
) -> tuple[list[Article], list[str]]:
    remote = "://" in source.url and not source.url.startswith("file://")
    if remote and fetched is not None and source in fetched:
        return fetched[source]
    read, trouble = read_sources(settings, [source])
    result = read, [f"{p.source}: {p.message}" for p in trouble]
    if remote and fetched is not None:
        fetched[source] = result
    return result


def next_number(database: Path) -> int:
    """The number the next edition would get; the database is only read."""
    with read_only(database) as db:
        try:
            return store.next_edition_number(db) if db is not None else 1
        except sqlite3.Error:
            return 1


@contextmanager
def read_only(database: Path) -> Iterator[sqlite3.Connection | None]:
    """The database opened read-only, or None when there is none yet."""
    db = None
    if database.is_file():
        try:
            db = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
            db.row_factory = sqlite3.Row
        except sqlite3.Error:
            db = None
    try:
        yield db
    finally:
        if db is not None:
            db.close()


def readers(settings: Settings) -> tuple[tuple[Reader, ...], list[str]]:
    """The sample reader and the first rows of the subscriber list, with the
    status and sections the database holds for them (as a send would see)."""
    found, problems = [sample_reader()], list[str]()
    if not settings.subscribers.is_file():
        return tuple(found), problems
    with read_only(settings.database) as db:
        for row in islice(unique_subscribers(settings.subscribers), PICKER_LIMIT):
            if isinstance(row, RowError):
                problems.append(str(row))
            else:
                found.append(_reader(_current(row, db)))
    return tuple(found), problems


def _current(row: Subscriber, db: sqlite3.Connection | None) -> Subscriber:
    if db is None:
        return row
    try:
        return current(row, db)
    except sqlite3.Error:  # a database from before preferences existed
        return row


def _reader(subscriber: Subscriber) -> Reader:
    chosen = ", ".join(sorted(subscriber.sections)) or "every section"
    status = "" if subscriber.active else f", {subscriber.status}"
    label = f"{subscriber.name or subscriber.email} <{subscriber.email}> ({chosen}{status})"
    return Reader(
        f"line-{subscriber.line}",
        label,
        subscriber.email,
        subscriber.name,
        subscriber.sections,
        subscriber.extra,
    )


def view_for(built: Built, key: str) -> View:
    """Compile (or take from the cache) the variant this reader gets, and fill it."""
    reader = next((r for r in built.readers if r.key == key), built.readers[0])
    if built.edition is None:
        return View(reader, None, "", "")
    known = {s.key for s in built.edition.sections} | {s.key for s in built.settings.sections}
    variant = editions.for_sections(built.edition, frozenset(reader.sections & known))
    if not editions.is_empty(variant):
        compiled = compile_edition(variant, built.settings)
    elif built.settings.empty_note:
        compiled = compile_note(built.edition, built.settings)
    else:
        return View(reader, None, "", "")
    html, text = personalize(compiled, personal_values(built.settings, reader))
    return View(reader, compiled, html, text, note=editions.is_empty(variant))


def personal_values(settings: Settings, reader: Reader) -> dict[str, str]:
    """What a real send would splice in, with placeholder tokens."""
    base = settings.base_url.rstrip("/")
    return {
        **field_values(reader.extra),
        "name": reader.name or "reader",
        "email": reader.email,
        "unsubscribe_url": f"{base}/unsubscribe?token=preview",
        "preferences_url": f"{base}/preferences?token=preview",
    }


def build(settings: Settings, edition_file: Path | None, fetched: Fetched | None = None) -> Built:
    """A whole preview build; what fails is reported on the page, not raised."""
    try:
        edition, problems = build_edition(settings, edition_file, fetched)
    except DigestError as e:
        return Built(settings, None, (sample_reader(),), (), str(e))
    try:
        found, trouble = readers(settings)
    except DigestError as e:
        found, trouble = (sample_reader(),), [str(e)]
    return Built(settings, edition, found, tuple(problems + trouble))
