"""Deciding what is new: an entry is matched against stored articles by GUID,
canonical URL and content hash, then stored, updated, or ignored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta

from digest import store
from digest.config import Settings, SourceConfig
from digest.model import Article, article_to_dict
from digest.sources.identity import article_hash, identity_keys
from digest.sources.outcome import Entry


def max_age(spec: SourceConfig, settings: Settings) -> timedelta:
    return timedelta(days=spec.max_age_days or settings.max_age_days)


def is_new(db: sqlite3.Connection, spec: SourceConfig, entry: Entry) -> bool:
    """True when no stored article matches the entry at all."""
    return store.find_article(db, identity_keys(entry.article, spec.url, entry.guid)) is None


def remember(
    db: sqlite3.Connection, settings: Settings, section: str, spec: SourceConfig, entry: Entry
) -> Article | None:
    """Store the entry if it is a new article (or an edit that must be re-sent)
    and return it; None when it is known, too old, or an unsent edit (updated)."""
    article = entry.article
    age = max_age(spec, settings)
    now = datetime.now(UTC)
    if article.published and article.published < now - age:
        return None
    keys = identity_keys(article, spec.url, entry.guid)
    digest = article_hash(article)
    expires = ((article.published or now) + age).isoformat(timespec="seconds")
    known = store.find_article(db, keys)
    if known is None:
        return _insert(db, section, spec, article, digest, expires, keys)
    store.add_article_keys(db, known.id, keys)
    if known.key.startswith("hash:") or known.content_hash in ("", digest):
        return None
    if not known.sent:
        store.replace_unsent_body(db, known.id, article.title, _body(article))
        store.set_article_meta(db, known.id, spec.url, digest, expires)
        return None
    if not settings.resend_edited:
        return None
    edited_id = hashlib.sha256(f"{known.id} {digest}".encode()).hexdigest()[:16]
    edited = Article(**{**article.__dict__, "id": edited_id})
    return _insert(db, section, spec, edited, digest, expires, keys, replace_keys=True)


def _insert(
    db: sqlite3.Connection,
    section: str,
    spec: SourceConfig,
    article: Article,
    digest: str,
    expires: str,
    keys: list[str],
    replace_keys: bool = False,
) -> Article | None:
    added = store.add_article(db, article.id, section, article.url, article.title, _body(article))
    if added:
        store.set_article_meta(db, article.id, spec.url, digest, expires)
    # An article stored before identity keys existed is known by its id alone.
    store.add_article_keys(db, article.id, keys, replace=replace_keys)
    return article if added else None


def _body(article: Article) -> str:
    return json.dumps(article_to_dict(article), ensure_ascii=False)
