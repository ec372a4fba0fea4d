"""The jobs behind the commands, each a short list of phases: choose the
edition, compile, deliver, report. Every phase is a call into its stage;
each job opens the store, returns a value, and leaves printing to the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from digest import collect, edition
from digest.collect import Problem
from digest.config import SectionConfig, Settings, SummaryOptions
from digest.deliver import bounces, export, subscribers
from digest.deliver import preview as looking
from digest.deliver.listing import everyone
from digest.deliver.message import bounce_mailbox, sender_address
from digest.deliver.policy import DEFERRED_FOR
from digest.deliver.run import Delivered, deliver_edition
from digest.deliver.send import DeliveryReport, ProgressFn
from digest.deliver.subscribers import RowError
from digest.deliver.tokens import list_id
from digest.edition import lifecycle
from digest.errors import ConfigError, NothingNew, SourceError
from digest.model import Article, Edition, Summary
from digest.render import compile_edition, personalize
from digest.store import Database, editions, lease, ledger, meta, opened
from digest.summarize import make_summarizer


@dataclass
class SendResult:
    """What a send did, for the CLI to print."""

    edition: Edition | None
    delivered: Delivered = field(default_factory=Delivered)
    problems: tuple[Problem, ...] = ()
    resumed: bool = False
    test_reply: str = ""
    test_ok: bool = False

    @property
    def stopped(self) -> bool:
        return self.delivered.report.stopped

    @property
    def report(self) -> DeliveryReport:
        return self.delivered.report

    @property
    def row_errors(self) -> list[RowError]:
        return self.delivered.row_errors

    @property
    def destination(self) -> str:
        return self.delivered.destination

    @property
    def html_bytes(self) -> int:
        return self.delivered.html_bytes


def local_now(settings: Settings) -> datetime:
    return datetime.now(ZoneInfo(settings.timezone))


def next_edition(settings: Settings, db: Database) -> tuple[Edition | None, tuple[Problem, ...]]:
    """What the next send sends: the unfinished edition, or a candidate of
    what is new after collecting (not recorded); None when nothing is new."""
    unfinished = lifecycle.oldest_unfinished(db)
    if unfinished is not None:
        return unfinished, ()
    problems = collect.collect(settings.fetch, settings.sections, db).problems
    found = lifecycle.candidate(
        db, settings.title, settings.sections, settings.summary, local_now(settings)
    )
    return (None if edition.is_empty(found) else found), problems


def send(
    settings: Settings,
    edition_file: Path | None = None,
    *,
    stop: threading.Event | None = None,
    retry_failed: bool = False,
    progress: ProgressFn | None = None,
) -> SendResult:
    """The main job: finish an unfinished edition, or collect, build, record
    and deliver a new one; with `edition_file`, that edition. `retry_failed`
    sends nothing new: it retries the deferred and failed rows of the newest
    edition that has some."""
    with opened(settings.database) as db:
        expire_deferred(db)
        if retry_failed:
            return _retry(settings, db, stop, progress)
        chosen, problems, resumed = _choose(settings, db, edition_file)
        if chosen is None:
            return SendResult(None, problems=problems)
        done = deliver_edition(settings, db, chosen, stop, progress)
        return SendResult(chosen, done, problems, resumed)


def _choose(
    settings: Settings, db: Database, edition_file: Path | None
) -> tuple[Edition | None, tuple[Problem, ...], bool]:
    if edition_file is not None:
        return lifecycle.adopt(db, edition.load_edition(edition_file), str(edition_file)), (), False
    unfinished = lifecycle.oldest_unfinished(db)
    if unfinished is not None:
        return unfinished, (), True
    found, problems = next_edition(settings, db)
    return (None if found is None else lifecycle.record(db, found)), problems, False


def _retry(
    settings: Settings, db: Database, stop: threading.Event | None, progress: ProgressFn | None
) -> SendResult:
    edition_id = ledger.retry_edition(db)
    chosen = None if edition_id is None else lifecycle.load(db, edition_id)
    if chosen is None:
        return SendResult(None)
    statuses = (ledger.DEFERRED, ledger.FAILED)
    done = deliver_edition(settings, db, chosen, stop, progress, statuses)
    return SendResult(chosen, done, resumed=True)


def expire_deferred(db: Database) -> None:
    """Deferred rows of editions older than DEFERRED_FOR fail, so their
    editions can finish."""
    cutoff = (datetime.now(UTC) - DEFERRED_FOR).isoformat(timespec="seconds")
    for edition_id in ledger.expire_deferred(db, cutoff):
        lifecycle.finish_if_done(db, edition_id)


def _edition_to_look_at(
    settings: Settings, db: Database, edition_file: Path | None
) -> tuple[Edition, tuple[Problem, ...]]:
    if edition_file is not None:
        return edition.load_edition(edition_file), ()
    found, problems = next_edition(settings, db)
    if found is None:
        raise NothingNew("nothing new to send: no unfinished edition and no new articles")
    return found, problems


def test_send(settings: Settings, address: str, edition_file: Path | None = None) -> SendResult:
    """One copy to ADDRESS, as the list's subscriber of that address gets it
    (else the whole edition to an unnamed reader); nothing is recorded."""
    looking.valid_address(address)
    with opened(settings.database) as db:
        chosen, problems = _edition_to_look_at(settings, db, edition_file)
        outcome = looking.send_test_copy(settings, db, chosen, address)
    delivered = Delivered(settings.smtp.description)
    delivered.report.add(outcome.status)
    ok = outcome.status == ledger.SENT
    return SendResult(chosen, delivered, problems, test_reply=outcome.reply, test_ok=ok)


def dry_run(settings: Settings, edition_file: Path | None = None) -> dict[str, Any]:
    """What `digest send` would do now: counts per outcome, as the fan-out
    would write them. Collects like `digest collect`; sends and marks nothing."""
    with opened(settings.database) as db:
        chosen, problems = _edition_to_look_at(settings, db, edition_file)
        found = looking.dry_run(settings, db, chosen)
        report = found.as_dict(settings.smtp.description, ledger.counts(db, chosen.id))
    report["problems"] = [f"{p.source}: {p.message}" for p in problems]
    return report


@dataclass
class BuildResult:
    paths: dict[str, Path]
    problems: tuple[Problem, ...]
    articles: int
    html_bytes: int


def build(
    settings: Settings, sources: list[str], edition_file: Path | None, out: Path
) -> BuildResult:
    """Build (or re-render) an edition into OUT; nothing is recorded or marked.
    Everything is compiled before the first file is written, and each file
    is replaced whole, so a failed build leaves OUT as it was."""
    problems: tuple[Problem, ...] = ()
    if edition_file is not None:
        built = edition.load_edition(edition_file)
    elif sources:
        built, problems = _from_sources(settings, sources)
    else:
        with opened(settings.database) as db:
            built, problems = _edition_to_look_at(settings, db, None)
    if edition.is_empty(built) and edition_file is None:
        raise NothingNew("nothing new: no article to build an edition from; nothing was written")
    compiled = compile_edition(built, settings.look)
    html, text = personalize(compiled, SAMPLE_READER)
    paths = {
        "edition": out / "edition.json",
        "html": out / "digest.html",
        "text": out / "digest.txt",
    }
    if edition_file is None or edition_file.resolve() != paths["edition"].resolve():
        edition.save_edition(built, paths["edition"])
    edition.write_atomically(paths["html"], html)
    edition.write_atomically(paths["text"], text)
    return BuildResult(paths, problems, len(built.article_ids), compiled.html_bytes)


SAMPLE_READER = {
    "name": "reader",
    "email": "reader@example.org",
    "unsubscribe_url": "#",
    "preferences_url": "#",
}


def _from_sources(settings: Settings, sources: list[str]) -> tuple[Edition, tuple[Problem, ...]]:
    """An edition of just these sources, in one section, touching no store."""
    articles, problems = collect.read_sources(settings.fetch, sources)
    if not articles and problems:
        shown = "; ".join(f"{p.source}: {p.message}" for p in problems[:5])
        raise SourceError(f"no article could be read from the given sources ({shown})")
    section = SectionConfig("articles", "Articles", tuple(sources), limit=max(len(articles), 1))
    built = edition.build_edition(
        edition.edition_id_for(local_now(settings)),
        settings.title,
        1,
        local_now(settings),
        [section],
        {"articles": articles},
        make_summarizer(settings.summary),
        settings.edition_words,
    )
    return built, tuple(problems)


def collect_now(settings: Settings) -> tuple[int, tuple[Problem, ...]]:
    """Collect every configured source into the store; count what is new."""
    with opened(settings.database) as db:
        collected = collect.collect(settings.fetch, settings.sections, db)
    return len(collected.articles), collected.problems


def source_health(settings: Settings) -> list[dict[str, object]]:
    with opened(settings.database) as db:
        return collect.health_rows(settings.sections, db, settings.source_failure_threshold)


def edition_list(settings: Settings, limit: int = 20) -> list[dict[str, object]]:
    """The newest editions with their state and ledger counts."""
    with opened(settings.database) as db:
        return [
            {**row.__dict__, "deliveries": ledger.counts(db, row.id)}
            for row in editions.recent(db, limit)
        ]


def cancel(settings: Settings, edition_id: str) -> lifecycle.Cancelled:
    """Cancel an unfinished edition, under the lease so no send is running it."""
    with (
        opened(settings.database) as db,
        lease.exclusive(settings.database, db, "digest editions cancel"),
    ):
        return lifecycle.cancel(db, edition_id)


def export_subscribers(
    settings: Settings, out: Path | None, stream: TextIO, on_problem: Callable[[RowError], None]
) -> int:
    """The list with the database's statuses and sections, to OUT or `stream`."""
    with opened(settings.database) as db:
        rows = everyone(settings.subscribers, db, on_problem)
        if out is None:
            return export.export(settings.subscribers, db, stream, on_problem, rows)
        return export.export_to(settings.subscribers, db, out, on_problem, rows)


def unsubscribe(settings: Settings, items: Iterable[str]) -> list[str]:
    """Suppress addresses, or the addresses in unsubscribe tokens."""
    with opened(settings.database) as db:
        secret = meta.signing_key(db, settings.secret_key)
        name = list_id(settings.title, sender_address(settings.from_addr), settings.list_id)
        return subscribers.unsubscribe(db, secret, name, items)


@dataclass
class BounceRun:
    """What reading a bounce mailbox did."""

    source: str
    tally: bounces.Tally


def read_bounces(settings: Settings, spec: str = "") -> BounceRun:
    """Read the bounce reports not yet handled in SPEC (or DIGEST_BOUNCE_SOURCE),
    apply each to its delivery, and mark them handled in the mailbox."""
    spec = spec or settings.bounce_source
    if not spec:
        raise ConfigError(
            "no bounce mailbox: give one (a Maildir, an mbox file or imaps://user@host/INBOX) "
            "or set DIGEST_BOUNCE_SOURCE"
        )
    mailbox = bounce_mailbox(settings.sender)
    domain = sender_address(settings.from_addr).rsplit("@", 1)[1]
    source = bounces.open_source(spec, settings.bounces)
    try:
        with opened(settings.database) as db:
            tally = bounces.read_source(source, db, mailbox, domain, settings.bounces)
    finally:
        source.close()
    return BounceRun(source.description, tally)


def summarize_files(
    paths: Iterable[Path], options: SummaryOptions
) -> Iterator[tuple[Article, Summary]]:
    """Each article file (plain text or Markdown) with its summary."""
    summarizer = make_summarizer(options)
    for path in paths:
        article = collect.read_article(path)
        yield article, summarizer.summarize(article)
