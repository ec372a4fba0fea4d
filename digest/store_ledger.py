"""The delivery ledger's SQL: claiming rows for a send, marking a group in
flight, recording the server's answers, and the queries behind --retry-failed,
`digest status` and the hourly rate limit. One row per (edition, subscriber).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from digest.store import (
    BOUNCED,
    DEFERRED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    now,
    transaction,
)


def ensure(db: sqlite3.Connection) -> None:
    """Ledgers made before rows knew when they were written get the column."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
    if "created_at" not in columns:
        db.execute("ALTER TABLE deliveries ADD COLUMN created_at TEXT")


def claim_deliveries(
    db: sqlite3.Connection,
    edition_id: str,
    entries: Iterable[tuple[str, str]],
    statuses: tuple[str, ...] = (PENDING, SENDING, DEFERRED),
    insert: bool = True,
) -> list[tuple[str, str]]:
    """Write pending rows for (email, message_id) pairs new to the ledger
    (unless `insert` is False: a retry) and return (email, message_id) of the
    rows in `statuses`: the ledger's Message-ID wins, so a repeated message
    carries the one first written."""
    batch = list(entries)
    stamp = now()
    with transaction(db):
        if insert:
            db.executemany(
                "INSERT OR IGNORE INTO deliveries (edition_id, email, status, message_id,"
                " updated_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(edition_id, email, PENDING, mid, stamp, stamp) for email, mid in batch],
            )
        found = _ledger_rows(db, edition_id, [email for email, _ in batch])
    return [(e, found[e][1]) for e, _ in batch if e in found and found[e][0] in statuses]


def _ledger_rows(
    db: sqlite3.Connection, edition_id: str, emails: list[str]
) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            "SELECT email, status, message_id FROM deliveries"
            f" WHERE edition_id = ? AND email IN ({marks})",
            (edition_id, *chunk),
        )
        found.update({r["email"]: (r["status"], r["message_id"]) for r in rows})
    return found


def ledger_states(db: sqlite3.Connection, edition_id: str, emails: list[str]) -> dict[str, str]:
    """The ledger state of each of these addresses that has a row."""
    return {e: row[0] for e, row in _ledger_rows(db, edition_id, emails).items()}


def record_results(
    db: sqlite3.Connection,
    edition_id: str,
    results: Iterable[tuple[str, str, str]],
    suppress: Iterable[tuple[str, str]],
) -> None:
    """Answers for a group of rows, and the addresses they suppress, in one commit."""
    stamp = now()
    with transaction(db):
        db.executemany(
            "UPDATE deliveries SET status = ?, last_reply = ?, updated_at = ?,"
            " attempts = attempts + 1 WHERE edition_id = ? AND email = ?",
            [(status, reply, stamp, edition_id, email) for email, status, reply in results],
        )
        db.executemany(
            "INSERT OR REPLACE INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)",
            [(email.lower(), reason, stamp) for email, reason in suppress],
        )


def mark_sending(db: sqlite3.Connection, edition_id: str, emails: Iterable[str]) -> None:
    """Before a group is handed to the pool: what a crash may leave in flight."""
    _set_status(db, edition_id, emails, SENDING)


def reset_pending(db: sqlite3.Connection, edition_id: str, emails: Iterable[str]) -> None:
    _set_status(db, edition_id, emails, PENDING)


def _set_status(db: sqlite3.Connection, edition_id: str, emails: Iterable[str], to: str) -> None:
    stamp = now()
    with transaction(db):
        db.executemany(
            "UPDATE deliveries SET status = ?, updated_at = ? WHERE edition_id = ? AND email = ?",
            [(to, stamp, edition_id, email) for email in emails],
        )


def reset_sending(db: sqlite3.Connection, edition_id: str) -> int:
    """Rows a killed run left in flight go back to pending (same Message-ID)."""
    cursor = db.execute(
        "UPDATE deliveries SET status = ? WHERE edition_id = ? AND status = ?",
        (PENDING, edition_id, SENDING),
    )
    return cursor.rowcount


def has_unfinished(db: sqlite3.Connection, edition_id: str) -> bool:
    """Whether any row of the edition is still pending or in flight."""
    row = db.execute(
        "SELECT 1 FROM deliveries WHERE edition_id = ? AND status IN (?, ?) LIMIT 1",
        (edition_id, PENDING, SENDING),
    ).fetchone()
    return row is not None


def suppressed_among(db: sqlite3.Connection, emails: list[str]) -> set[str]:
    """Which of these (lower-case) addresses are suppressed: one query per 500."""
    found: set[str] = set()
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(f"SELECT email FROM suppressions WHERE email IN ({marks})", chunk)
        found.update(str(r["email"]) for r in rows)
    return found


def retry_edition(db: sqlite3.Connection) -> str | None:
    """The newest edition with deferred or failed rows, for --retry-failed."""
    row = db.execute(
        "SELECT e.id FROM editions e JOIN deliveries d ON d.edition_id = e.id"
        " WHERE d.status IN (?, ?) ORDER BY e.number DESC LIMIT 1",
        (DEFERRED, FAILED),
    ).fetchone()
    return None if row is None else str(row["id"])


def deferred_edition(db: sqlite3.Connection, waited_since: str, made_since: str) -> str | None:
    """The newest edition made since `made_since` with a deferred row last
    tried before `waited_since` (ISO UTC times): due another round."""
    row = db.execute(
        "SELECT e.id FROM editions e WHERE e.created_at >= ? AND EXISTS (SELECT 1 FROM"
        " deliveries d WHERE d.edition_id = e.id AND d.status = ? AND d.updated_at <= ?)"
        " ORDER BY e.number DESC LIMIT 1",
        (made_since, DEFERRED, waited_since),
    ).fetchone()
    return None if row is None else str(row["id"])


def latest_problems(
    db: sqlite3.Connection, edition_id: str, limit: int = 5
) -> list[dict[str, str]]:
    """The newest deferred, bounced or failed rows with the server's last reply."""
    rows = db.execute(
        "SELECT email, status, last_reply, updated_at FROM deliveries WHERE edition_id = ?"
        " AND status IN (?, ?, ?) ORDER BY updated_at DESC, email LIMIT ?",
        (edition_id, DEFERRED, BOUNCED, FAILED, limit),
    )
    return [{k: str(row[k]) for k in row.keys()} for row in rows]  # noqa: SIM118


def sent_since(db: sqlite3.Connection, since: str) -> int:
    """Messages accepted since an ISO time, across editions (for the hourly limit)."""
    row = db.execute(
        "SELECT COUNT(*) AS n FROM deliveries WHERE status = ? AND updated_at >= ?",
        (SENT, since),
    ).fetchone()
    return int(row["n"])
