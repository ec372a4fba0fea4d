"""Reading one source of any kind: a feed or page over HTTP (with full text
fetched for teaser entries), a local feed file, or local article files.
Nothing here raises for a bad source: failures come back in the result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from digest.collect import files, web
from digest.collect.feeds import FEED_SUFFIXES, is_html_page, is_json, read_feed
from digest.collect.fetch import Fetcher, is_public
from digest.collect.identity import canonical_url
from digest.collect.outcome import Entry, Problem, SourceResult
from digest.collect.parsing import parse
from digest.config import Fetch, SourceConfig
from digest.errors import SourceError
from digest.model import ArticleSection

log = logging.getLogger(__name__)

# Decides whether an entry is new (and so worth fetching its full text for).
IsNew = Callable[[Entry], bool]


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def unexpected(spec: SourceConfig, error: Exception) -> SourceResult:
    """A bug met on one source's content is that source's failure, not the run's."""
    log.exception("reading %s failed unexpectedly", spec.url)
    return SourceResult(
        spec,
        error=f"{spec.url}: unexpected {type(error).__name__}: {error}; the source was"
        " skipped (this is a bug in digest: please report it with the source's address)",
    )


async def read_remote(
    fetcher: Fetcher, spec: SourceConfig, validators: tuple[str, str], is_new: IsNew
) -> SourceResult:
    """Fetch (conditionally) and interpret a feed or page URL."""
    try:
        return await _read_remote(fetcher, spec, validators, is_new)
    except Exception as e:
        return unexpected(spec, e)


async def _read_remote(
    fetcher: Fetcher, spec: SourceConfig, validators: tuple[str, str], is_new: IsNew
) -> SourceResult:
    fetched = await fetcher.get(spec.url, *validators)
    if fetched.error:
        return SourceResult(spec, error=f"{spec.url}: {fetched.error}")
    if fetched.not_modified:
        return SourceResult(spec, not_modified=True)
    try:
        entries, warning = await parse(
            spec.url, interpret, fetched.body, fetched.final_url, fetched.content_type, spec
        )
    except SourceError as e:
        return SourceResult(spec, error=str(e))
    entries, problems = await full_text(fetcher, spec, entries, is_new)
    if warning:
        problems = (Problem(spec.url, warning), *problems)
    return SourceResult(spec, entries, problems, validators=(fetched.etag, fetched.last_modified))


def interpret(
    body: bytes, url: str, content_type: str, spec: SourceConfig
) -> tuple[tuple[Entry, ...], str]:
    """A fetched body as feed entries or as one page article, by kind and content;
    with a warning when a broken feed was read as well as could be."""
    page = spec.kind == "page" or (
        spec.kind == "auto" and not is_json(body, content_type) and is_html_page(body, "")
    )
    if not page:
        entries, warning = read_feed(body, url, content_type, spec.name)
        return tuple(entries), warning
    feed = web.advertised_feed(body)
    if spec.kind == "auto" and feed:
        raise SourceError(
            f"{url}: this is a web page, not a feed; its feed is at {feed}: use that"
            ' address, or set kind = "page" to read the page itself as an article'
        )
    return (Entry(web.read_page(body, url, spec.name)),), ""


def main_sections_of(bodies: list[bytes | None]) -> list[tuple[ArticleSection, ...]]:
    """Each page's article text (none for a page that could not be fetched)."""
    return [() if body is None else web.main_sections(body) for body in bodies]


def wants_full_text(entry: Entry, spec: SourceConfig, settings: Fetch) -> bool:
    text = len(entry.article.text)
    return bool(entry.article.url) and (spec.full_text or text < settings.full_text_min_chars)


async def full_text(
    fetcher: Fetcher, spec: SourceConfig, entries: tuple[Entry, ...], is_new: IsNew
) -> tuple[tuple[Entry, ...], tuple[Problem, ...]]:
    """Replace teasers of new entries by their page's main text; keep the teaser
    (and say why) when the page cannot be fetched or has no article text."""
    settings = fetcher.settings
    todo = [e for e in entries if wants_full_text(e, spec, settings) and is_new(e)]
    if not todo:
        return entries, ()
    # A feed on the public internet may not send us into the local network;
    # one on an intranet (or loopback) may link within it.
    public_only = await is_public(spec.url)
    pages = await asyncio.gather(
        *(fetcher.get(e.article.url, public_only=public_only) for e in todo)
    )
    bodies = [None if page.error else page.body for page in pages]
    try:
        found = await parse(spec.url, main_sections_of, bodies)
    except SourceError as e:
        return entries, (Problem(spec.url, f"full text not fetched, teasers kept: {e}"),)
    fuller: dict[str, Entry] = {}
    problems: list[Problem] = []
    for entry, fetched, sections in zip(todo, pages, found, strict=True):
        url = entry.article.url
        if fetched.error or not sections:
            reason = fetched.error or "no article text found on the page"
            problems.append(Problem(url, f"full text not fetched, teaser kept: {reason}"))
        elif len(" ".join(p for s in sections for p in s.paragraphs)) > len(entry.article.text):
            fuller[url] = Entry(replace(entry.article, sections=sections), entry.guid)
    return tuple(fuller.get(e.article.url, e) for e in entries), tuple(problems)


def read_local(spec: SourceConfig) -> SourceResult:
    """A local feed file, article file or folder of article files."""
    try:
        return _read_local(spec)
    except Exception as e:
        return unexpected(spec, e)


def _read_local(spec: SourceConfig) -> SourceResult:
    path = Path(spec.url.removeprefix("file://"))
    if path.is_file() and path.suffix.lower() in FEED_SUFFIXES:
        try:
            feed, warning = read_feed(path.read_bytes(), str(path), "", spec.name)
        except OSError as e:
            return SourceResult(spec, error=f"{path}: cannot be read ({e.strerror})")
        except SourceError as e:
            return SourceResult(spec, error=str(e))
        noted = (Problem(spec.url, warning),) if warning else ()
        return SourceResult(spec, tuple(feed), noted, validators=("", ""))
    try:
        paths = files.article_paths(path)
    except SourceError as e:
        return SourceResult(spec, error=str(e))
    entries: list[Entry] = []
    problems: list[Problem] = []
    for item in paths:
        try:
            article = files.read_article(item)
            entries.append(Entry(replace(article, url=canonical_url(article.url))))
        except SourceError as e:
            problems.append(Problem(str(item), str(e).removeprefix(f"{item}: ")))
    return SourceResult(spec, tuple(entries), tuple(problems), validators=("", ""))
