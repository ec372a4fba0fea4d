"""The schema, as numbered migrations that `connect` applies itself.

Version 1 is the schema of release 0.1 (whose files have no version table):
every statement in it is safe to run over such a file. Each later version
changes what an earlier one made and is recorded once it has run, in the
same transaction, so a crash never leaves half a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from digest.store.db import Database, now


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Database], None]


BASELINE = """
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
    total_new INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS slots (
    slot TEXT PRIMARY KEY,
    scheduled_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    edition_id TEXT,
    problems TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _baseline(db: Database) -> None:
    for statement in BASELINE.split(";"):
        if statement.strip():
            db.execute(statement)
    # Columns that files of the 0.1 series gained along the way.
    _add_column(db, "deliveries", "created_at", "TEXT")
    _add_column(db, "source_state", "warning", "TEXT NOT NULL DEFAULT ''")


def _lifecycle(db: Database) -> None:
    """Editions get a state; ledger rows carry what their copy needs.

    A 0.1 edition with rows still to deliver becomes `built` and its
    unfinished rows are dropped: the next send writes them again from the
    list, with the same Message-IDs. One with deferred rows is `sending`, so
    their retries go on. Rows already answered stay as they are.
    """
    _add_column(db, "editions", "state", "TEXT NOT NULL DEFAULT 'sent'")
    _add_column(db, "editions", "updated_at", "TEXT")
    for column, kind in (
        ("address", "TEXT NOT NULL DEFAULT ''"),
        ("name", "TEXT NOT NULL DEFAULT ''"),
        ("fields", "TEXT NOT NULL DEFAULT ''"),
        ("variant", "TEXT NOT NULL DEFAULT ''"),
        ("line", "INTEGER NOT NULL DEFAULT 0"),
    ):
        _add_column(db, "deliveries", column, kind)
    db.execute(
        "UPDATE editions SET state = 'built' WHERE id IN (SELECT edition_id FROM deliveries"
        " WHERE status IN ('pending', 'sending'))"
    )
    db.execute("DELETE FROM deliveries WHERE status IN ('pending', 'sending')")
    db.execute(
        "UPDATE editions SET state = 'sending' WHERE state = 'sent' AND id IN"
        " (SELECT edition_id FROM deliveries WHERE status = 'deferred')"
    )
    db.execute("UPDATE deliveries SET address = email WHERE address = ''")
    db.execute("UPDATE editions SET updated_at = created_at WHERE updated_at IS NULL")
    db.execute("DROP INDEX IF EXISTS deliveries_status")
    db.execute("CREATE INDEX deliveries_status ON deliveries(edition_id, status, email)")
    db.execute("CREATE INDEX IF NOT EXISTS editions_state ON editions(state, number)")
    db.execute("CREATE INDEX IF NOT EXISTS article_meta_source ON article_meta(source)")


def _signups(db: Database) -> None:
    """Readers who signed up on the web (double opt-in), and the request
    counts that rate-limit the form, shared by every `digest serve`."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS signups ("
        " email TEXT PRIMARY KEY, address TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',"
        " sections TEXT NOT NULL DEFAULT '',"
        " timezone TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,"
        " requested_at TEXT NOT NULL, confirmed_at TEXT, updated_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS signups_status ON signups(status, email)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS request_counts ("
        " key TEXT NOT NULL, period TEXT NOT NULL, hits INTEGER NOT NULL,"
        " PRIMARY KEY (key, period))"
    )


def _workers(db: Database) -> None:
    """Senders on several hosts: each edition keeps its compiled variants (so
    every sender sends the same bytes), a ledger row names the worker that
    claimed it, and each worker beats its heart in `workers`."""
    _add_column(db, "deliveries", "worker", "TEXT")
    db.execute(
        "CREATE TABLE IF NOT EXISTS edition_variants (edition_id TEXT NOT NULL,"
        " variant TEXT NOT NULL, skeleton TEXT NOT NULL, PRIMARY KEY (edition_id, variant))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, host TEXT NOT NULL,"
        " pid INTEGER NOT NULL, started_at TEXT NOT NULL, heartbeat DOUBLE PRECISION NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS deliveries_worker ON deliveries(worker, status)")


def _bounces(db: Database) -> None:
    """Bounces reported after the SMTP conversation: each report read once
    (by its identity), matched to its delivery by Message-ID."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS bounces ("
        " key TEXT PRIMARY KEY, edition_id TEXT NOT NULL DEFAULT '',"
        " email TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL, status TEXT NOT NULL DEFAULT '',"
        " reason TEXT NOT NULL DEFAULT '', received_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS deliveries_message_id ON deliveries(message_id)")
    db.execute("CREATE INDEX IF NOT EXISTS deliveries_email ON deliveries(email)")


def _waves(db: Database) -> None:
    """A ledger row carries when it is due (its reader's wave): '' is at once."""
    _add_column(db, "deliveries", "due_at", "TEXT NOT NULL DEFAULT ''")


def _mail_queue(db: Database) -> None:
    """Mail `digest serve` sends itself, kept until the server takes it."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS mail_queue ("
        " key TEXT PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,"
        " raw TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
        " last_error TEXT NOT NULL DEFAULT '', next_try TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS mail_queue_next_try ON mail_queue(next_try)")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "release 0.1 schema", _baseline),
    Migration(2, "edition lifecycle; ledger rows carry their copy", _lifecycle),
    Migration(3, "sign-ups with double opt-in; shared rate limits", _signups),
    Migration(4, "bounces reported later, matched to their delivery", _bounces),
    Migration(5, "ledger rows carry their wave's due time", _waves),
    Migration(6, "compiled variants per edition; workers", _workers),
    Migration(7, "a queue for the mail digest serve sends itself", _mail_queue),
)
LATEST = MIGRATIONS[-1].version


def _add_column(db: Database, table: str, column: str, kind: str) -> None:
    if column not in db.columns(table):
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def version(db: Database) -> int:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return int(db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version"))


def migrate(db: Database) -> list[int]:
    """Apply every migration newer than the file; return the versions applied.

    Each runs under the write lock, and the version is read again inside it,
    so two processes opening an old file at once apply each migration once.
    """
    applied: list[int] = []
    if version(db) >= LATEST:
        return applied
    for migration in MIGRATIONS:
        with db.transaction(immediate=True):
            if version(db) >= migration.version:
                continue
            migration.apply(db)
            db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now()),
            )
        applied.append(migration.version)
    return applied
