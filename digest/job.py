"""The main job as a short list of phases: collect, build, render, deliver.

Each phase is a call into its own module; this file only wires them and
decides which edition a send is about (new, resumed or given).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest import edition as editions
from digest import store
from digest.config import Settings
from digest.delivery import DeliveryReport, deliver, make_transport
from digest.mail import MessageSkeleton, build_skeleton
from digest.model import Article, Edition, Subscriber, article_from_dict
from digest.notes import OrNote
from digest.render import CompiledEmail, compile_edition
from digest.sources import Problem, collect, read_sources
from digest.subscribers import RowError, active_subscribers, effective
from digest.summarize import make_summarizer, summary_options

log = logging.getLogger(__name__)


@dataclass
class SendResult:
    """What a send did, for the CLI to print."""

    edition: Edition | None
    destination: str = ""
    report: DeliveryReport = field(default_factory=DeliveryReport)
    row_errors: list[RowError] = field(default_factory=list)
    problems: tuple[Problem, ...] = ()
    resumed: bool = False
    html_bytes: int = 0
    stopped: bool = False  # a stop signal cut the send short; the next send resumes


def secret_for(settings: Settings, db: sqlite3.Connection) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    return store.generated_secret(db)


def local_now(settings: Settings) -> datetime:
    return datetime.now(ZoneInfo(settings.timezone))


def unsent_by_section(settings: Settings, db: sqlite3.Connection) -> dict[str, list[Article]]:
    return {
        s.key: [article_from_dict(json.loads(b)) for b in store.unsent_articles(db, s.key)]
        for s in settings.sections
    }


def build_from_store(settings: Settings, db: sqlite3.Connection, when: datetime) -> Edition:
    """An edition of every collected, unsent article (up to each section's limit)."""
    return editions.build_edition(
        edition_id=editions.edition_id_for(when),
        title=settings.title,
        number=store.next_edition_number(db),
        created=when,
        sections=settings.sections,
        articles=unsent_by_section(settings, db),
        summarizer=make_summarizer(summary_options(settings)),
        edition_words=settings.edition_words,
    )


def build_from_sources(
    settings: Settings, sources: list[str], when: datetime
) -> tuple[Edition, list[Problem]]:
    """An edition of just these sources, in one section, touching no store."""
    from digest.config import SectionConfig

    articles, problems = read_sources(settings, sources)
    section = SectionConfig("articles", "Articles", tuple(sources), limit=max(len(articles), 1))
    edition = editions.build_edition(
        editions.edition_id_for(when),
        settings.title,
        1,
        when,
        [section],
        {"articles": articles},
        make_summarizer(summary_options(settings)),
        edition_words=settings.edition_words,
    )
    return edition, problems


def write_outputs(edition: Edition, compiled: CompiledEmail, out: Path) -> dict[str, Path]:
    """edition.json, digest.html and digest.txt, filled for a sample reader."""
    from digest.render import personalize

    out.mkdir(parents=True, exist_ok=True)
    sample = {
        "name": "reader",
        "email": "reader@example.org",
        "unsubscribe_url": "#",
        "preferences_url": "#",
    }
    html, text = personalize(compiled, sample)
    paths = {
        "edition": out / "edition.json",
        "html": out / "digest.html",
        "text": out / "digest.txt",
    }
    editions.save_edition(edition, paths["edition"])
    paths["html"].write_text(html, encoding="utf-8")
    paths["text"].write_text(text, encoding="utf-8")
    return paths


def prepare_send(
    settings: Settings, db: sqlite3.Connection, edition_file: Path | None
) -> tuple[Edition | None, tuple[Problem, ...], bool]:
    """Decide the edition: the given file, an unfinished one, or a new one."""
    if edition_file is not None:
        edition = editions.load_edition(edition_file)
        record_edition(db, edition)
        return edition, (), False
    unfinished = store.unfinished_edition(db)
    if unfinished is not None:
        body = store.edition_body(db, unfinished)
        assert body is not None
        return editions.from_json(json.loads(body), f"edition {unfinished}"), (), True
    collected = collect(settings, db)
    edition = build_from_store(settings, db, local_now(settings))
    if editions.is_empty(edition):
        return None, collected.problems, False
    record_edition(db, edition)
    return edition, collected.problems, False


def record_edition(db: sqlite3.Connection, edition: Edition) -> None:
    if store.edition_body(db, edition.id) is None:
        store.save_edition(db, edition.id, edition.number, edition.title, editions.to_json(edition))
    store.mark_articles_sent(db, edition.id, edition.article_ids)


def skeleton_for(
    settings: Settings, db: sqlite3.Connection, edition: Edition
) -> tuple[MessageSkeleton, int]:
    compiled = compile_edition(edition, settings)
    skeleton = build_skeleton(
        compiled, settings.from_addr, settings.title, secret_for(settings, db)
    )
    return skeleton, compiled.html_bytes


class Variants:
    """One compiled message per distinct section set, built on first use."""

    def __init__(self, settings: Settings, db: sqlite3.Connection, edition: Edition) -> None:
        self.settings, self.db, self.edition = settings, db, edition
        self.known = {s.key for s in edition.sections} | {s.key for s in settings.sections}
        self.cache: dict[frozenset[str], MessageSkeleton | None] = {}

    def __call__(self, subscriber: Subscriber) -> MessageSkeleton | None:
        # Unknown section names are ignored; nothing known left means "all".
        keys = frozenset(subscriber.sections & self.known)
        if keys not in self.cache:
            variant = editions.for_sections(self.edition, keys)
            empty = editions.is_empty(variant)
            self.cache[keys] = None if empty else skeleton_for(self.settings, self.db, variant)[0]
        return self.cache[keys]


def send(
    settings: Settings, edition_file: Path | None = None, *, stop: threading.Event | None = None
) -> SendResult:
    """The main job: collect, build, render once, deliver to everyone not yet served."""
    db = store.connect(settings.database)
    try:
        edition, problems, resumed = prepare_send(settings, db, edition_file)
        if edition is None:
            return SendResult(None, problems=problems)
        result = SendResult(edition, problems=problems, resumed=resumed)
        return deliver_edition(settings, db, result, stop)
    finally:
        db.close()


def deliver_edition(
    settings: Settings,
    db: sqlite3.Connection,
    result: SendResult,
    stop: threading.Event | None = None,
) -> SendResult:
    """Deliver `result.edition` to every active subscriber not yet served."""
    edition = result.edition
    assert edition is not None
    _, result.html_bytes = skeleton_for(settings, db, edition)
    transport = make_transport(settings)
    result.destination = transport.description
    subscribers = effective(settings.subscribers, db, result.row_errors)
    variants = OrNote(Variants(settings, db, edition), settings, secret_for(settings, db), edition)
    try:
        result.report = deliver(
            edition.id, variants, subscribers, transport, db, settings.base_url, stop=stop
        )
    finally:
        transport.close()
    result.stopped = stop is not None and stop.is_set()
    return result


def test_send(settings: Settings, address: str, edition_file: Path | None = None) -> SendResult:
    """Send one copy to ADDRESS; nothing is marked sent and no ledger row is written."""
    db = store.connect(settings.database)
    try:
        if edition_file is not None:
            edition = editions.load_edition(edition_file)
            problems: tuple[Problem, ...] = ()
        else:
            problems = collect(settings, db).problems
            edition = build_from_store(settings, db, local_now(settings))
        skeleton, size = skeleton_for(settings, db, edition)
        transport = make_transport(settings)
        from digest.mail import render_message

        try:
            outcome = transport.send(
                skeleton.sender, address, render_message(skeleton, settings.base_url, address, "")
            )
        finally:
            transport.close()
        result = SendResult(edition, transport.description, problems=problems, html_bytes=size)
        result.report.add(outcome.status)
        return result
    finally:
        db.close()


def dry_run(settings: Settings, edition_file: Path | None = None) -> dict[str, object]:
    """What a send would do now, without sending or marking anything."""
    db = store.connect(settings.database)
    try:
        errors: list[RowError] = []
        unfinished = store.unfinished_edition(db) if edition_file is None else None
        edition_id = (
            editions.load_edition(edition_file).id
            if edition_file
            else unfinished or "(new edition)"
        )
        counts = {"to_send": 0, "already_done": 0, "suppressed": 0}
        # A new edition has no ledger yet: everyone active and not suppressed is to send.
        samples: list[str] = []
        for sub in active_subscribers(settings.subscribers, errors):
            state = _dry_state(db, edition_id, sub)
            counts[state] += 1
            if state == "to_send" and len(samples) < 5:
                samples.append(sub.email)
        return {
            "edition": edition_id,
            "counts": counts,
            "samples": samples,
            "row_errors": [str(e) for e in errors],
            "destination": make_transport_description(settings),
        }
    finally:
        db.close()


def _dry_state(db: sqlite3.Connection, edition_id: str, sub: Subscriber) -> str:
    if store.is_suppressed(db, sub.email):
        return "suppressed"
    if store.ledger_status(db, edition_id, sub.email.lower()) in store.FINAL_STATES:
        return "already_done"
    return "to_send"


def make_transport_description(settings: Settings) -> str:
    if settings.smtp_host:
        return f"SMTP {settings.smtp_host}:{settings.effective_smtp_port}"
    return f"Maildir {settings.outbox}"


def collect_now(settings: Settings) -> tuple[int, tuple[Problem, ...]]:
    """Collect every configured source into the store; count what is new."""
    db = store.connect(settings.database)
    try:
        collected = collect(settings, db)
        return len(collected.articles), collected.problems
    finally:
        db.close()


@dataclass
class BuildResult:
    paths: dict[str, Path]
    problems: tuple[Problem, ...] | list[Problem]
    articles: int
    html_bytes: int


def build(
    settings: Settings, sources: list[str], edition_file: Path | None, out: Path
) -> BuildResult:
    """Build (or re-render) an edition into OUT without marking anything sent."""
    problems: tuple[Problem, ...] | list[Problem] = ()
    if edition_file is not None:
        edition = editions.load_edition(edition_file)
    elif sources:
        edition, problems = build_from_sources(settings, sources, local_now(settings))
    else:
        db = store.connect(settings.database)
        try:
            problems = collect(settings, db).problems
            edition = build_from_store(settings, db, local_now(settings))
        finally:
            db.close()
    compiled = compile_edition(edition, settings)
    paths = write_outputs(edition, compiled, out)
    return BuildResult(paths, problems, len(edition.article_ids), compiled.html_bytes)
