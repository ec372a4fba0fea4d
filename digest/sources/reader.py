"""Reading one source of any kind: a feed or page over HTTP (with full text
fetched for teaser entries), a local feed file, or local article files.
Nothing here raises for a bad source: failures come back in the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from digest.config import Settings, SourceConfig
from digest.errors import SourceError
from digest.sources import files, web
from digest.sources.feeds import FEED_SUFFIXES, is_html_page, is_json, parse_feed
from digest.sources.fetch import Fetcher
from digest.sources.identity import canonical_url
from digest.sources.outcome import Entry, Problem, SourceResult

# Decides whether an entry is new (and so worth fetching its full text for).
IsNew = Callable[[Entry], bool]


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


async def read_remote(
    fetcher: Fetcher, spec: SourceConfig, validators: tuple[str, str], is_new: IsNew
) -> SourceResult:
    """Fetch (conditionally) and interpret a feed or page URL."""
    fetched = await fetcher.get(spec.url, *validators)
    if fetched.error:
        return SourceResult(spec, error=f"{spec.url}: {fetched.error}")
    if fetched.not_modified:
        return SourceResult(spec, not_modified=True)
    try:
        entries = interpret(fetched.body, fetched.final_url, fetched.content_type, spec)
    except SourceError as e:
        return SourceResult(spec, error=str(e))
    entries, problems = await full_text(fetcher, spec, entries, is_new)
    return SourceResult(spec, entries, problems, validators=(fetched.etag, fetched.last_modified))


def interpret(body: bytes, url: str, content_type: str, spec: SourceConfig) -> tuple[Entry, ...]:
    """A fetched body as feed entries or as one page article, by kind and content."""
    page = spec.kind == "page" or (
        spec.kind == "auto" and not is_json(body, content_type) and is_html_page(body, "")
    )
    if not page:
        return tuple(parse_feed(body, url, content_type, spec.name))
    feed = web.advertised_feed(body)
    if spec.kind == "auto" and feed:
        raise SourceError(
            f"{url}: this is a web page, not a feed; its feed is at {feed}: use that"
            ' address, or set kind = "page" to read the page itself as an article'
        )
    return (Entry(web.read_page(body, url, spec.name)),)


def wants_full_text(entry: Entry, spec: SourceConfig, settings: Settings) -> bool:
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
    pages = await asyncio.gather(*(fetcher.get(e.article.url) for e in todo))
    fuller: dict[str, Entry] = {}
    problems: list[Problem] = []
    for entry, fetched in zip(todo, pages, strict=True):
        url = entry.article.url
        sections = () if fetched.error else web.main_sections(fetched.body)
        if fetched.error or not sections:
            reason = fetched.error or "no article text found on the page"
            problems.append(Problem(url, f"full text not fetched, teaser kept: {reason}"))
        elif len(" ".join(p for s in sections for p in s.paragraphs)) > len(entry.article.text):
            fuller[url] = Entry(replace(entry.article, sections=sections), entry.guid)
    return tuple(fuller.get(e.article.url, e) for e in entries), tuple(problems)


def read_local(spec: SourceConfig) -> SourceResult:
    """A local feed file, article file or folder of article files."""
    path = Path(spec.url.removeprefix("file://"))
    if path.is_file() and path.suffix.lower() in FEED_SUFFIXES:
        try:
            feed = tuple(parse_feed(path.read_bytes(), str(path), "", spec.name))
        except OSError as e:
            return SourceResult(spec, error=f"{path}: cannot be read ({e.strerror})")
        except SourceError as e:
            return SourceResult(spec, error=str(e))
        return SourceResult(spec, feed, validators=("", ""))
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
            problems.append(Problem(str(item), str(e)))
    return SourceResult(spec, tuple(entries), tuple(problems), validators=("", ""))
