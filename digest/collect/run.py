"""Reading sources: every configured source at once, each new article stored
as its source's answer arrives.

All sources are read concurrently (HTTP ones through one client with per-host
limits); each result is stored as it arrives. A failing source is recorded
against its name and never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from digest.collect.fetch import fetcher
from digest.collect.identity import identity_keys
from digest.collect.outcome import Entry, Problem, SourceResult, in_language
from digest.collect.reader import IsNew, is_remote, read_local, read_remote
from digest.collect.remember import is_new, remember_all
from digest.config import Fetch, SectionConfig, SourceConfig
from digest.model import Article
from digest.store import articles as store_sources
from digest.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Collected:
    """What one collection run produced."""

    articles: tuple[tuple[str, Article], ...]  # (section key, article), new only
    problems: tuple[Problem, ...]


Planned = tuple[str, SourceConfig]  # (section key, source)
OnResult = Callable[[str, SourceResult], None]


async def read_all(
    settings: Fetch,
    plan: Sequence[Planned],
    on_result: OnResult,
    validators: Callable[[str], tuple[str, str]],
    new: Callable[[SourceConfig], IsNew],
) -> None:
    """Read every planned source; hand each result over as soon as it is in."""
    for section, spec in plan:
        if not is_remote(spec.url):
            on_result(section, in_language(read_local(spec)))
    remote = [(section, spec) for section, spec in plan if is_remote(spec.url)]
    if not remote:
        return
    async with fetcher(settings) as client:

        async def one(section: str, spec: SourceConfig) -> tuple[str, SourceResult]:
            result = await read_remote(client, spec, validators(spec.url), new(spec))
            return section, in_language(result)

        for done in asyncio.as_completed([one(s, spec) for s, spec in remote]):
            on_result(*await done)


class Transactions:
    """Groups writes into transactions of about half a second: a commit per
    source would cost more than storing its entries, and one transaction for
    the whole run would hold the write lock while waiting on the network. A
    timer on the event loop commits even when no further result arrives."""

    def __init__(self, db: Database, seconds: float = 0.5) -> None:
        self.db, self.seconds = db, seconds
        self.opened: float | None = None
        self.timer: asyncio.TimerHandle | None = None

    def write(self, work: Callable[[], None]) -> None:
        if self.opened is None:
            self.db.begin()
            self.opened = time.monotonic()
            self.timer = asyncio.get_running_loop().call_later(self.seconds, self.commit)
        work()
        if time.monotonic() - self.opened > self.seconds:
            self.commit()

    def commit(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.opened is not None:
            self.db.commit()
            self.opened = None

    def rollback(self) -> None:
        if self.opened is not None:
            self.db.rollback()
            self.opened = None


def collect(settings: Fetch, sections: Sequence[SectionConfig], db: Database) -> Collected:
    """Read every configured source and store the articles not seen before."""
    new: list[tuple[str, Article]] = []
    problems: list[Problem] = []
    transactions = Transactions(db)

    def store_result(section: str, result: SourceResult) -> None:
        found = _store_result(settings, db, section, result)
        new.extend((section, article) for article in found)
        problems.extend(_problems(settings, db, result))

    def on_result(section: str, result: SourceResult) -> None:
        transactions.write(lambda: store_result(section, result))

    plan = [(s.key, spec) for s in sections for spec in s.source_configs]
    try:
        asyncio.run(
            read_all(
                settings,
                plan,
                on_result,
                lambda url: store_sources.feed_state(db, url),
                lambda spec: lambda entry: is_new(db, spec, entry),
            )
        )
        transactions.commit()
    except BaseException:
        transactions.rollback()
        raise
    return Collected(tuple(new), tuple(problems))


def _store_result(
    settings: Fetch, db: Database, section: str, result: SourceResult
) -> list[Article]:
    """A source's new articles and its health record."""
    url = result.source.url
    if result.error:
        store_sources.record_source_failure(db, url, _reason(result))
        return []
    found = remember_all(db, settings, section, result.source, result.entries)
    store_sources.record_source_success(
        db, url, result.validators, len(result.entries), len(found), _warning(result)
    )
    return found


def _warning(result: SourceResult) -> str:
    """What part of a source could not be read this run, kept in its health record."""
    shown = [
        p.message if p.source == result.source.url else f"{p.source}: {p.message}"
        for p in result.problems[:3]
    ]
    more = len(result.problems) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def _problems(settings: Fetch, db: Database, result: SourceResult) -> list[Problem]:
    problems = list(result.problems)
    if result.error:
        state = store_sources.feed_failures(db, result.source.url)
        if state >= settings.failure_threshold:
            message = f"FAILING: {state} runs in a row. {_reason(result)}"
        else:
            message = _reason(result)
        log.info("%s: %s", result.source.url, message)
        problems.append(Problem(result.source.url, message))
    return problems


def _reason(result: SourceResult) -> str:
    """The error without the source's address in front: a Problem carries it."""
    return result.error.removeprefix(f"{result.source.url}: ")


def read_sources(
    settings: Fetch, sources: Sequence[str | SourceConfig]
) -> tuple[list[Article], list[Problem]]:
    """Every article these sources hold now, once each, touching no store."""
    results: list[SourceResult] = []
    plan = [("", s if isinstance(s, SourceConfig) else SourceConfig(s)) for s in sources]
    asyncio.run(
        read_all(
            settings,
            plan,
            lambda _section, result: results.append(result),
            lambda _url: ("", ""),
            lambda _spec: lambda _entry: True,
        )
    )
    seen: set[str] = set()
    articles: list[Article] = []
    problems: list[Problem] = []
    for result in results:
        problems.extend(result.problems)
        if result.error:
            problems.append(Problem(result.source.url, _reason(result)))
        for entry in result.entries:
            if _first_time(entry, result.source.url, seen):
                articles.append(entry.article)
    return articles, problems


def _first_time(entry: Entry, source: str, seen: set[str]) -> bool:
    keys = identity_keys(entry.article, source, entry.guid)
    if seen.intersection(keys):
        return False
    seen.update(keys)
    return True


def read_source(source: str, settings: Fetch | None = None) -> tuple[list[Article], list[Problem]]:
    """Every article one source holds right now, and what went wrong reading it."""
    return read_sources(settings or Fetch(), [source])
