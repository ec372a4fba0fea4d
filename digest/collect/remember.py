"""Deciding what is new: entries are matched against stored articles by GUID,
canonical URL and content hash, then stored, updated, or ignored. A source's
entries are decided together, with one lookup and one insert per batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from digest.collect.identity import identity_keys
from digest.collect.outcome import Entry
from digest.config import Fetch, SourceConfig
from digest.model import Article, article_to_dict
from digest.store import articles as store_sources
from digest.store.db import Database


@dataclass(frozen=True)
class Candidate:
    """An entry young enough to keep, with its identity worked out."""

    article: Article
    keys: list[str]
    digest: str
    expires: str


def is_new(db: Database, spec: SourceConfig, entry: Entry) -> bool:
    """True when no stored article matches the entry at all."""
    return (
        store_sources.find_article(db, identity_keys(entry.article, spec.url, entry.guid)) is None
    )


def candidates(settings: Fetch, spec: SourceConfig, entries: tuple[Entry, ...]) -> list[Candidate]:
    """The entries within the source's maximum age, with keys and content hash."""
    age = timedelta(days=spec.max_age_days or settings.max_age_days)
    now = datetime.now(UTC)
    kept = []
    for entry in entries:
        article = entry.article
        if article.published and article.published < now - age:
            continue
        expires = ((article.published or now) + age).isoformat(timespec="seconds")
        keys = identity_keys(article, spec.url, entry.guid)
        kept.append(Candidate(article, keys, keys[-1].removeprefix("hash:"), expires))
    return kept


def remember_all(
    db: Database,
    settings: Fetch,
    section: str,
    spec: SourceConfig,
    entries: tuple[Entry, ...],
) -> list[Article]:
    """Store the entries that are new articles (or edits that must be re-sent);
    return them. Known ones get any new keys; unsent edits replace the text."""
    batch = candidates(settings, spec, entries)
    known = store_sources.find_articles(db, (key for c in batch for key in c.keys))
    stored = store_sources.existing_articles(db, (c.article.id for c in batch))
    new: list[Candidate] = []
    for candidate in batch:
        match = next((known[k] for k in candidate.keys if k in known), None)
        fresh = _decide(db, settings, spec, candidate, match) if match else candidate
        if fresh is None or fresh.article.id in stored:
            store_sources.add_article_keys(
                db, match.id if match else candidate.article.id, candidate.keys
            )
            continue
        new.append(fresh)
        stored.add(fresh.article.id)
        claim = store_sources.KnownArticle(fresh.article.id, "", False, fresh.digest)
        known.update({key: claim for key in fresh.keys})
    store_sources.add_collected(db, [_row(section, spec, c) for c in new])
    store_sources.move_article_keys(db, [(key, c.article.id) for c in new for key in c.keys])
    return [c.article for c in new]


def _decide(
    db: Database,
    settings: Fetch,
    spec: SourceConfig,
    candidate: Candidate,
    match: store_sources.KnownArticle,
) -> Candidate | None:
    """A known article: nothing to do, an unsent edit to apply, or an edit to re-send."""
    if match.key.startswith("hash:") or match.content_hash in ("", candidate.digest):
        return None
    article = candidate.article
    if not match.sent:
        store_sources.replace_unsent_body(db, match.id, article.title, _body(article))
        store_sources.set_article_meta(db, match.id, spec.url, candidate.digest, candidate.expires)
        return None
    if not settings.resend_edited:
        return None
    edited_id = hashlib.sha256(f"{match.id} {candidate.digest}".encode()).hexdigest()[:16]
    return replace(candidate, article=replace(article, id=edited_id))


def _row(
    section: str, spec: SourceConfig, c: Candidate
) -> tuple[str, str, str, str, str, str, str, str | None]:
    a = c.article
    return (a.id, section, a.url, a.title, _body(a), spec.url, c.digest, c.expires)


def _body(article: Article) -> str:
    return json.dumps(article_to_dict(article), ensure_ascii=False)
