"""Collected articles and the sources they came from: identity keys, the
edition that claimed each article, feed state for conditional GET, and each
source's health.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from digest.store.db import Database, chunks, marks, now

UPSERT_META = (
    "INSERT INTO article_meta (id, source, content_hash, expires_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET source = excluded.source,"
    " content_hash = excluded.content_hash, expires_at = excluded.expires_at"
)
NEW_SOURCE = "INSERT INTO source_state (source) VALUES (?) ON CONFLICT (source) DO NOTHING"


@dataclass(frozen=True)
class KnownArticle:
    """A stored article an incoming one matched, and by which key."""

    id: str
    key: str
    sent: bool
    content_hash: str


@dataclass(frozen=True)
class SourceHealth:
    """How a source has been doing; `failing` once failures reach the threshold."""

    source: str
    last_attempt: str | None
    last_success: str | None
    last_error: str
    last_error_at: str | None
    failures: int
    items: int
    new_items: int
    total_new: int
    failing: bool
    warning: str = ""


def find_articles(db: Database, keys: Iterable[str]) -> dict[str, KnownArticle]:
    """The stored articles these identity keys lead to, by key (unknown keys absent)."""
    found: dict[str, KnownArticle] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        rows = db.all(
            "SELECT k.key, a.id, a.sent_edition, COALESCE(m.content_hash, '') AS hash"
            " FROM article_keys k JOIN articles a ON a.id = k.article_id"
            " LEFT JOIN article_meta m ON m.id = a.id"
            f" WHERE k.key IN ({marks(len(chunk))})",
            chunk,
        )
        for row in rows:
            sent = row["sent_edition"] is not None
            found[row["key"]] = KnownArticle(row["id"], row["key"], sent, row["hash"])
    return found


def find_article(db: Database, keys: Sequence[str]) -> KnownArticle | None:
    """The stored article matching the first of these identity keys that is known."""
    found = find_articles(db, keys)
    return next((found[key] for key in keys if key in found), None)


def existing_articles(db: Database, ids: Iterable[str]) -> set[str]:
    """Which of these article ids are stored already."""
    known: set[str] = set()
    for chunk in chunks(list(ids)):
        rows = db.all(f"SELECT id FROM articles WHERE id IN ({marks(len(chunk))})", chunk)
        known.update(str(row["id"]) for row in rows)
    return known


def add_collected(
    db: Database, rows: Sequence[tuple[str, str, str, str, str, str, str, str | None]]
) -> None:
    """New articles in one go: (id, section, url, title, body, source, hash, expires)."""
    stamp = now()
    db.executemany(
        "INSERT INTO articles (id, section, url, title, body, collected_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        [(r[0], r[1], r[2], r[3], r[4], stamp) for r in rows],
    )
    db.executemany(UPSERT_META, [(r[0], r[5], r[6], r[7]) for r in rows])


def add_article_keys(
    db: Database, article_id: str, keys: Iterable[str], replace: bool = False
) -> None:
    """Map identity keys to an article; `replace` moves known keys to it."""
    conflict = "DO UPDATE SET article_id = excluded.article_id" if replace else "DO NOTHING"
    db.executemany(
        f"INSERT INTO article_keys (key, article_id) VALUES (?, ?) ON CONFLICT (key) {conflict}",
        [(key, article_id) for key in keys],
    )


def move_article_keys(db: Database, pairs: Iterable[tuple[str, str]]) -> None:
    """Point each (key, article id) pair's key at its article, known or not."""
    db.executemany(
        "INSERT INTO article_keys (key, article_id) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET article_id = excluded.article_id",
        pairs,
    )


def set_article_meta(
    db: Database, article_id: str, source: str, content_hash: str, expires: str | None
) -> None:
    db.execute(UPSERT_META, (article_id, source, content_hash, expires))


def replace_unsent_body(db: Database, article_id: str, title: str, body: str) -> None:
    """An article edited before it was sent: keep the newer text."""
    db.execute(
        "UPDATE articles SET title = ?, body = ? WHERE id = ? AND sent_edition IS NULL",
        (title, body, article_id),
    )


def feed_state(db: Database, source: str) -> tuple[str, str]:
    """The ETag and Last-Modified last seen for a source, for a conditional GET."""
    row = db.one("SELECT etag, last_modified FROM source_state WHERE source = ?", (source,))
    return ("", "") if row is None else (str(row["etag"]), str(row["last_modified"]))


def record_source_success(
    db: Database,
    source: str,
    validators: tuple[str, str] | None,
    items: int,
    new: int,
    warning: str = "",
) -> None:
    """A source answered; `validators` None (a 304) keeps the stored ETag and date.
    A `warning` (part of it could not be read) is also kept as its last error,
    without counting as a failure; a clean run clears it."""
    stamp = now()
    db.execute(NEW_SOURCE, (source,))
    db.execute(
        "UPDATE source_state SET last_attempt = ?, last_success = ?, failures = 0,"
        " new_items = ?, total_new = total_new + ?, warning = ? WHERE source = ?",
        (stamp, stamp, new, new, warning, source),
    )
    if warning:
        db.execute(
            "UPDATE source_state SET last_error = ?, last_error_at = ? WHERE source = ?",
            (warning, stamp, source),
        )
    if validators is not None:
        db.execute(
            "UPDATE source_state SET etag = ?, last_modified = ?, items = ? WHERE source = ?",
            (*validators, items, source),
        )


def record_source_failure(db: Database, source: str, message: str) -> None:
    stamp = now()
    db.execute(NEW_SOURCE, (source,))
    db.execute(
        "UPDATE source_state SET last_attempt = ?, last_error = ?, last_error_at = ?,"
        " failures = failures + 1, new_items = 0 WHERE source = ?",
        (stamp, message, stamp, source),
    )


def source_health(db: Database, threshold: int = 3) -> list[SourceHealth]:
    """Every source collected so far, failing ones first."""
    rows = db.all("SELECT * FROM source_state ORDER BY failures DESC, source")
    return [
        SourceHealth(
            source=row["source"],
            last_attempt=row["last_attempt"],
            last_success=row["last_success"],
            last_error=row["last_error"],
            last_error_at=row["last_error_at"],
            failures=int(row["failures"]),
            items=int(row["items"]),
            new_items=int(row["new_items"]),
            total_new=int(row["total_new"]),
            failing=int(row["failures"]) >= threshold,
            warning=row["warning"],
        )
        for row in rows
    ]


def feed_failures(db: Database, source: str) -> int:
    row = db.one("SELECT failures FROM source_state WHERE source = ?", (source,))
    return 0 if row is None else int(row["failures"])


def never_collected(source: str) -> SourceHealth:
    """The health of a configured source that has not been read yet."""
    return SourceHealth(source, None, None, "", None, 0, 0, 0, 0, False)


def unsent_articles(db: Database, section: str, sources: Sequence[str]) -> list[str]:
    """Bodies of articles collected for a section from one of `sources` (the
    ones configured now), claimed by no edition, and not past their maximum
    age; oldest first."""
    if not sources:
        return []
    rows = db.all(
        "SELECT a.body FROM articles a JOIN article_meta m ON m.id = a.id"
        f" WHERE a.section = ? AND a.sent_edition IS NULL AND m.source IN ({marks(len(sources))})"
        " AND (m.expires_at IS NULL OR m.expires_at > ?) ORDER BY a.collected_at, a.id",
        (section, *sources, now()),
    )
    return [str(row["body"]) for row in rows]


def claim_articles(db: Database, edition_id: str, ids: Iterable[str]) -> None:
    """An edition takes its articles: they are never new again (unless it is cancelled)."""
    db.executemany(
        "UPDATE articles SET sent_edition = ? WHERE id = ? AND sent_edition IS NULL",
        [(edition_id, i) for i in ids],
    )


def release_articles(db: Database, edition_id: str, ids: Iterable[str]) -> int:
    """Give a cancelled edition's articles back to the pool of unsent ones."""
    return db.executemany(
        "UPDATE articles SET sent_edition = NULL WHERE id = ? AND sent_edition = ?",
        [(i, edition_id) for i in ids],
    )
