"""The main job as a short list of phases: collect, build, render, deliver.

Each phase is a call into its own module; this file only wires them and
decides which edition a send is about (new, resumed or given).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from digest import edition as editions
from digest import store, store_ledger
from digest.config import Settings
from digest.delivery import DeliveryReport, Progress, deliver
from digest.errors import DigestError
from digest.mail import (
    MessageSkeleton,
    build_skeleton,
    dkim_sign,
    one_off_message_id,
    render_message,
)
from digest.model import Article, Edition, Subscriber, article_from_dict
from digest.notes import OrNote
from digest.plan import expected_total, policy_from
from digest.render import CompiledEmail, compile_edition
from digest.sources import Problem, collect, read_sources
from digest.subscribers import RowError, current, effective, find
from digest.summarize import make_summarizer, summary_options
from digest.transports import make_transport

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
    test_reply: str = ""


ProgressFn = Callable[[Progress], None]


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
    edition = replace(edition, id=free_edition_id(db, edition.id))
    record_edition(db, edition)
    return edition, collected.problems, False


def free_edition_id(db: sqlite3.Connection, wanted: str) -> str:
    """`wanted`, or `wanted-2`, `-3`... when an edition of that minute exists:
    a second send in the same minute is a new edition, not the first one
    again (which would mark its new articles sent and deliver them to nobody)."""
    candidate, n = wanted, 1
    while store.edition_body(db, candidate) is not None:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def record_edition(db: sqlite3.Connection, edition: Edition) -> None:
    if store.edition_body(db, edition.id) is None:
        store.save_edition(db, edition.id, edition.number, edition.title, editions.to_json(edition))
    store.mark_articles_sent(db, edition.id, edition.article_ids)


def skeleton_for(
    settings: Settings, db: sqlite3.Connection, edition: Edition
) -> tuple[MessageSkeleton, int]:
    compiled = compile_edition(edition, settings)
    skeleton = build_skeleton(
        compiled,
        settings.from_addr,
        settings.title,
        secret_for(settings, db),
        fixed_list_id=settings.list_id,
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
    settings: Settings,
    edition_file: Path | None = None,
    *,
    stop: threading.Event | None = None,
    retry_failed: bool = False,
    progress: ProgressFn | None = None,
) -> SendResult:
    """The main job: collect, build, render once, deliver to everyone not yet served.

    `retry_failed` sends nothing new: it retries the deferred and failed rows
    of the newest edition that has some. `stop` ends the send between
    messages (SIGTERM); `progress` hears about each recorded group.
    """
    db = store.connect(settings.database)
    try:
        problems: tuple[Problem, ...] = ()
        if retry_failed:
            edition, resumed = _edition_to_retry(db), True
        else:
            edition, problems, resumed = prepare_send(settings, db, edition_file)
        if edition is None:
            return SendResult(None, problems=problems)
        result = SendResult(edition, problems=problems, resumed=resumed)
        return deliver_edition(settings, db, result, stop, progress, retry_failed)
    finally:
        db.close()


def _edition_to_retry(db: sqlite3.Connection) -> Edition | None:
    edition_id = store_ledger.retry_edition(db)
    body = None if edition_id is None else store.edition_body(db, edition_id)
    return None if body is None else editions.from_json(json.loads(body), f"edition {edition_id}")


def deliver_edition(
    settings: Settings,
    db: sqlite3.Connection,
    result: SendResult,
    stop: threading.Event | None = None,
    progress: ProgressFn | None = None,
    retry_failed: bool = False,
    retry_only: bool = False,
) -> SendResult:
    """Deliver `result.edition` to every active subscriber not yet served;
    a retry (`retry_failed`, `retry_only`) only to those with a ledger row, so
    an old edition never reaches someone who subscribed after it went out."""
    edition = result.edition
    assert edition is not None
    warn_if_links_unreachable(settings)
    _, result.html_bytes = skeleton_for(settings, db, edition)
    transport = make_transport(settings)
    result.destination = transport.description
    policy = replace(
        policy_from(settings, db),
        retry_failed=retry_failed,
        retry_only=retry_only or retry_failed,
    )
    subscribers = effective(settings.subscribers, db, result.row_errors)
    variants = OrNote(Variants(settings, db, edition), settings, secret_for(settings, db), edition)
    total = expected_total(settings.subscribers, db, edition.id)
    result.report = deliver(
        edition.id,
        variants,
        subscribers,
        transport,
        db,
        settings.base_url,
        policy,
        stop=stop,
        progress=None if progress is None else lambda p: progress(replace(p, total=total)),
    )
    result.stopped = result.report.stopped
    return result


def warn_if_links_unreachable(settings: Settings) -> None:
    """Mail that leaves the machine needs unsubscribe links its readers can
    open: mailbox providers honour one-click unsubscribe only over https."""
    host = (urlsplit(settings.base_url).hostname or "").lower()
    local = host in ("localhost", "::1") or host.startswith("127.")
    if settings.smtp_host and (local or not settings.base_url.startswith("https://")):
        log.warning(
            "DIGEST_BASE_URL is %s: the unsubscribe, preferences and view-in-browser links"
            " in these messages %s; set it to the public https address of digest serve",
            settings.base_url,
            "point at this machine" if local else "are not https, so one-click is ignored",
        )


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
        policy = policy_from(settings, db)
        transport = make_transport(settings)
        message = test_copy(settings, db, edition, skeleton, address)
        if policy.dkim is not None:
            message = dkim_sign(message, policy.dkim)
        channel = transport.open()
        try:
            outcome = channel.send(skeleton.sender, address, message)
        finally:
            channel.close()
        result = SendResult(edition, transport.description, problems=problems, html_bytes=size)
        result.report.add(outcome.status)
        result.test_reply = outcome.reply
        return result
    finally:
        db.close()


def test_copy(
    settings: Settings,
    db: sqlite3.Connection,
    edition: Edition,
    full: MessageSkeleton,
    address: str,
) -> bytes:
    """The copy ADDRESS would get: as that subscriber (name, fields, sections)
    when the list has them, else the whole edition to an unnamed reader.
    Its Message-ID is a one-off, never the real message's."""
    try:
        member = find(settings.subscribers, address)
    except DigestError:  # an unreadable list must not stop a test send
        member = None
    if member is None:
        return render_message(full, settings.base_url, address, "", one_off_message_id(full))
    member = current(member, db)
    skeleton = Variants(settings, db, edition)(member) or full
    return render_message(
        skeleton,
        settings.base_url,
        address,
        member.name,
        one_off_message_id(skeleton),
        member.extra,
    )


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
