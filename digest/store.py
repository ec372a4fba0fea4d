"""The one SQLite file: collected articles, editions, the delivery ledger and
suppressions. Small functions with their SQL in them; no ORM.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from digest.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    section TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    sent_edition TEXT
);
CREATE INDEX IF NOT EXISTS articles_unsent ON articles(section, sent_edition);
CREATE TABLE IF NOT EXISTS editions (
    id TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    edition_id TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_reply TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (edition_id, email)
);
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries(edition_id, status);
CREATE TABLE IF NOT EXISTS suppressions (
    email TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS preferences (
    email TEXT PRIMARY KEY,
    sections TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

# Ledger states. 'sent', 'bounced' and 'failed' are final for an edition.
PENDING, SENDING, SENT, DEFERRED, BOUNCED, FAILED = (
    "pending",
    "sending",
    "sent",
    "deferred",
    "bounced",
    "failed",
)
FINAL_STATES = (SENT, BOUNCED, FAILED)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create or upgrade) the database; WAL so readers never block."""
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        _use_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        db.executescript(SOURCES_SCHEMA)
        _upgrade_sources(db)
    except (sqlite3.Error, OSError) as e:
        raise StoreError(f"cannot open the database {path}: {e}; check DIGEST_DATABASE") from e
    db.row_factory = sqlite3.Row
    return db


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch a new file to WAL. Two processes opening a new file at once can
    deadlock on the switch, and SQLite then fails one at once ("database is
    locked") instead of waiting: try again for a few seconds."""
    for attempt in range(100):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == 99:
                raise
            time.sleep(0.05)


def add_article(
    db: sqlite3.Connection, article_id: str, section: str, url: str, title: str, body: str
) -> bool:
    """Record a collected article; False when it was already known."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO articles (id, section, url, title, body, collected_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (article_id, section, url, title, body, now()),
    )
    return cursor.rowcount == 1


def known_article(db: sqlite3.Connection, article_id: str) -> bool:
    row = db.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone()
    return row is not None


def unsent_articles(db: sqlite3.Connection, section: str) -> list[str]:
    """Bodies of articles collected for a section, not yet in a sent edition,
    and not past their source's maximum age."""
    rows = db.execute(
        "SELECT a.body FROM articles a LEFT JOIN article_meta m ON m.id = a.id"
        " WHERE a.section = ? AND a.sent_edition IS NULL"
        " AND (m.expires_at IS NULL OR m.expires_at > ?) ORDER BY a.collected_at, a.id",
        (section, now()),
    )
    return [row["body"] for row in rows]


def mark_articles_sent(db: sqlite3.Connection, edition_id: str, ids: Iterable[str]) -> None:
    db.executemany(
        "UPDATE articles SET sent_edition = ? WHERE id = ? AND sent_edition IS NULL",
        [(edition_id, i) for i in ids],
    )


def save_edition(
    db: sqlite3.Connection, edition_id: str, number: int, title: str, body: str
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO editions (id, number, title, created_at, body)"
        " VALUES (?, ?, ?, ?, ?)",
        (edition_id, number, title, now(), body),
    )


def edition_body(db: sqlite3.Connection, edition_id: str) -> str | None:
    row = db.execute("SELECT body FROM editions WHERE id = ?", (edition_id,)).fetchone()
    return None if row is None else str(row["body"])


def next_edition_number(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM editions").fetchone()
    return int(row["n"])


def unfinished_edition(db: sqlite3.Connection) -> str | None:
    """The newest edition whose ledger still has rows to deliver, if any."""
    row = db.execute(
        "SELECT e.id FROM editions e JOIN deliveries d ON d.edition_id = e.id"
        " WHERE d.status IN (?, ?) ORDER BY e.number DESC LIMIT 1",
        (PENDING, SENDING),
    ).fetchone()
    return None if row is None else str(row["id"])


def recent_editions(db: sqlite3.Connection, limit: int = 10) -> list[sqlite3.Row]:
    return list(
        db.execute(
            "SELECT id, number, title, created_at FROM editions ORDER BY number DESC LIMIT ?",
            (limit,),
        )
    )


def ledger_counts(db: sqlite3.Connection, edition_id: str) -> dict[str, int]:
    rows = db.execute(
        "SELECT status, COUNT(*) AS n FROM deliveries WHERE edition_id = ? GROUP BY status",
        (edition_id,),
    )
    return {row["status"]: int(row["n"]) for row in rows}


def ledger_status(db: sqlite3.Connection, edition_id: str, email: str) -> str | None:
    row = db.execute(
        "SELECT status FROM deliveries WHERE edition_id = ? AND email = ?",
        (edition_id, email),
    ).fetchone()
    return None if row is None else str(row["status"])


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One commit for many statements: the connection is in autocommit mode."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def suppress(db: sqlite3.Connection, email: str, reason: str) -> None:
    db.execute(
        "INSERT OR REPLACE INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)",
        (email.lower(), reason, now()),
    )


def suppressed(db: sqlite3.Connection) -> Iterator[str]:
    for row in db.execute("SELECT email FROM suppressions"):
        yield str(row["email"])


def is_suppressed(db: sqlite3.Connection, email: str) -> bool:
    row = db.execute("SELECT 1 FROM suppressions WHERE email = ?", (email.lower(),)).fetchone()
    return row is not None


def generated_secret(db: sqlite3.Connection) -> bytes:
    """A random signing key kept in the database, for when none is configured."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
    if row is None:
        db.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (secrets.token_hex(32),))
        row = db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
    return bytes.fromhex(str(row["value"]))


def count_suppressed(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) AS n FROM suppressions").fetchone()["n"])


# Tables of digest/store_sources.py, created here so every connection has them.

SOURCES_SCHEMA = """
CREATE TABLE IF NOT EXISTS article_keys (
    key TEXT PRIMARY KEY,
    article_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS article_meta (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    expires_at TEXT
);
CREATE TABLE IF NOT EXISTS source_state (
    source TEXT PRIMARY KEY,
    etag TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '',
    last_attempt TEXT,
    last_success TEXT,
    last_error TEXT NOT NULL DEFAULT '',
    last_error_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    items INTEGER NOT NULL DEFAULT 0,
    new_items INTEGER NOT NULL DEFAULT 0,
    total_new INTEGER NOT NULL DEFAULT 0,
    warning TEXT NOT NULL DEFAULT ''
);
"""


def _upgrade_sources(db: sqlite3.Connection) -> None:
    """Databases made before a source's last-run warning was kept get the column."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(source_state)")}
    if "warning" not in columns:
        try:
            db.execute("ALTER TABLE source_state ADD COLUMN warning TEXT NOT NULL DEFAULT ''")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):  # another process just added it
                raise


# Subscribers: what they chose on the web. Sections are stored ';'-joined,
# empty meaning every section, like the CSV column.


def set_preferences(db: sqlite3.Connection, email: str, sections: Iterable[str]) -> None:
    db.execute(
        "INSERT OR REPLACE INTO preferences (email, sections, updated_at) VALUES (?, ?, ?)",
        (email.lower(), ";".join(sorted(set(sections))), now()),
    )


def subscriber_state(
    db: sqlite3.Connection, email: str
) -> tuple[str | None, frozenset[str] | None]:
    """(suppression reason or None, preferred sections or None) in one query."""
    key = email.lower()
    row = db.execute(
        "SELECT (SELECT reason FROM suppressions WHERE email = ?) AS reason,"
        " (SELECT sections FROM preferences WHERE email = ?) AS sections",
        (key, key),
    ).fetchone()
    sections = row["sections"]
    chosen = None if sections is None else frozenset(s for s in sections.split(";") if s)
    return row["reason"], chosen


def unsuppress(db: sqlite3.Connection, email: str, reason_prefix: str) -> bool:
    """Lift a suppression whose reason starts with reason_prefix; True if one was."""
    cursor = db.execute(
        "DELETE FROM suppressions WHERE email = ? AND substr(reason, 1, ?) = ?",
        (email.lower(), len(reason_prefix), reason_prefix),
    )
    return cursor.rowcount > 0


def editions_page(db: sqlite3.Connection, limit: int, offset: int) -> list[sqlite3.Row]:
    """Editions newest first, for the archive."""
    return list(
        db.execute(
            "SELECT id, number, title, created_at FROM editions"
            " ORDER BY number DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
    )


def edition_count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM editions").fetchone()[0])
