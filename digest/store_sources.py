"""The sources' tables in the one SQLite file: identity keys of collected
articles, feed state for conditional GET, and each source's health.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from digest.store import now


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


def find_articles(db: sqlite3.Connection, keys: Iterable[str]) -> dict[str, KnownArticle]:
    """The stored articles these identity keys lead to, by key (unknown keys absent)."""
    found: dict[str, KnownArticle] = {}
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
        chunk = wanted[start : start + 500]
        rows = db.execute(
            "SELECT k.key, a.id, a.sent_edition, COALESCE(m.content_hash, '') AS hash"
            " FROM article_keys k JOIN articles a ON a.id = k.article_id"
            " LEFT JOIN article_meta m ON m.id = a.id"
            f" WHERE k.key IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for row in rows:
            sent = row["sent_edition"] is not None
            found[row["key"]] = KnownArticle(row["id"], row["key"], sent, row["hash"])
    return found


def find_article(db: sqlite3.Connection, keys: Sequence[str]) -> KnownArticle | None:
    """The stored article matching the first of these identity keys that is known."""
    found = find_articles(db, keys)
    return next((found[key] for key in keys if key in found), None)


def existing_articles(db: sqlite3.Connection, ids: Iterable[str]) -> set[str]:
    """Which of these article ids are stored already."""
    wanted = list(ids)
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(f"SELECT id FROM articles WHERE id IN ({marks})", chunk)
        known.update(str(row["id"]) for row in rows)
    return known


def add_collected(
    db: sqlite3.Connection, rows: Sequence[tuple[str, str, str, str, str, str, str, str | None]]
) -> None:
    """New articles in one go: (id, section, url, title, body, source, hash, expires)."""
    stamp = now()
    db.executemany(
        "INSERT OR IGNORE INTO articles (id, section, url, title, body, collected_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(r[0], r[1], r[2], r[3], r[4], stamp) for r in rows],
    )
    db.executemany(
        "INSERT OR REPLACE INTO article_meta (id, source, content_hash, expires_at)"
        " VALUES (?, ?, ?, ?)",
        [(r[0], r[5], r[6], r[7]) for r in rows],
    )


def add_article_keys(
    db: sqlite3.Connection, article_id: str, keys: Iterable[str], replace: bool = False
) -> None:
    """Map identity keys to an article; `replace` moves known keys to it."""
    verb = "REPLACE" if replace else "IGNORE"
    db.executemany(
        f"INSERT OR {verb} INTO article_keys (key, article_id) VALUES (?, ?)",
        [(key, article_id) for key in keys],
    )


def move_article_keys(db: sqlite3.Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Point each (key, article id) pair's key at its article, known or not."""
    db.executemany("INSERT OR REPLACE INTO article_keys (key, article_id) VALUES (?, ?)", pairs)


def set_article_meta(
    db: sqlite3.Connection, article_id: str, source: str, content_hash: str, expires: str | None
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO article_meta (id, source, content_hash, expires_at)"
        " VALUES (?, ?, ?, ?)",
        (article_id, source, content_hash, expires),
    )


def replace_unsent_body(db: sqlite3.Connection, article_id: str, title: str, body: str) -> None:
    """An article edited before it was sent: keep the newer text."""
    db.execute(
        "UPDATE articles SET title = ?, body = ? WHERE id = ? AND sent_edition IS NULL",
        (title, body, article_id),
    )


def feed_state(db: sqlite3.Connection, source: str) -> tuple[str, str]:
    """The ETag and Last-Modified last seen for a source, for a conditional GET."""
    row = db.execute(
        "SELECT etag, last_modified FROM source_state WHERE source = ?", (source,)
    ).fetchone()
    return ("", "") if row is None else (str(row["etag"]), str(row["last_modified"]))


def record_source_success(
    db: sqlite3.Connection,
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
    db.execute("INSERT OR IGNORE INTO source_state (source) VALUES (?)", (source,))
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


def record_source_failure(db: sqlite3.Connection, source: str, message: str) -> None:
    stamp = now()
    db.execute("INSERT OR IGNORE INTO source_state (source) VALUES (?)", (source,))
    db.execute(
        "UPDATE source_state SET last_attempt = ?, last_error = ?, last_error_at = ?,"
        " failures = failures + 1, new_items = 0 WHERE source = ?",
        (stamp, message, stamp, source),
    )


def source_health(db: sqlite3.Connection, threshold: int = 3) -> list[SourceHealth]:
    """Every source collected so far, failing ones first."""
    rows = db.execute("SELECT * FROM source_state ORDER BY failures DESC, source")
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


def feed_failures(db: sqlite3.Connection, source: str) -> int:
    row = db.execute("SELECT failures FROM source_state WHERE source = ?", (source,)).fetchone()
    return 0 if row is None else int(row["failures"])


def never_collected(source: str) -> SourceHealth:
    """The health of a configured source that has not been read yet."""
    return SourceHealth(source, None, None, "", None, 0, 0, 0, 0, False)
